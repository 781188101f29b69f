"""The stoppable strategy on Mitogen: linear, modules run in a Python kept alive on each host,
and a Ctrl-C still lets the tasks in flight finish (plugins/plugin_utils/stoppable.py). The
project's ansible.cfg selects it; without Mitogen installed it runs as plain stoppable linear."""

from __future__ import annotations

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible.utils.display import Display
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.stoppable import StopBetweenTasks

DOCUMENTATION = r"""
name: stoppable_mitogen
short_description: Mitogen's linear strategy, stopped between tasks when asked
description:
  - Mitogen's C(mitogen_linear) (one Python per host for the whole run instead of one per
    task), stopped between tasks like C(agentfactory.fleet.stoppable) when the file named by
    C(AGENTFACTORY_STOP_FILE) exists.
  - Needs the C(mitogen) package (a dependency of agentfactory; requirements.txt for an
    execution environment). Without it the run goes on as C(agentfactory.fleet.stoppable),
    with a warning.
author: agentfactory
"""

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError:
    Display().warning("Mitogen is not installed (pip install 'mitogen>=0.3.54,<0.4'): "
                      "modules run one Python per task, about twice as slow")

    class StrategyModule(StopBetweenTasks, LinearStrategyModule):
        pass
else:
    # Mitogen's own way to find the linear strategy (its loaders wrap Ansible's).
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(StopBetweenTasks, ansible_mitogen.strategy.StrategyMixin, _Linear):
        pass
