"""The stoppable strategy on Mitogen: linear, modules run in a Python kept alive on each host,
and a Ctrl-C still lets the tasks in flight finish (plugins/plugin_utils/stoppable.py)."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.stoppable import StopBetweenTasks

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError as exc:
    raise AnsibleError(
        "the strategy agentfactory.fleet.stoppable_mitogen needs Mitogen: pip install 'agentfactory[mitogen]'"
    ) from exc

DOCUMENTATION = r"""
name: stoppable_mitogen
short_description: Mitogen's linear strategy, stopped between tasks when asked
description:
  - Mitogen's C(mitogen_linear) (one Python per host for the whole run instead of one per
    task), stopped between tasks like C(agentfactory.fleet.stoppable) when the file named by
    C(AGENTFACTORY_STOP_FILE) exists.
  - Needs the C(mitogen) package (the C(mitogen) extra of agentfactory). The CLI selects it
    with the setting C(mitogen) (C(AGENTFACTORY_MITOGEN=1)).
author: agentfactory
"""

# Mitogen's own way to find the linear strategy (its loaders wrap Ansible's).
_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(StopBetweenTasks, ansible_mitogen.strategy.StrategyMixin, _Linear):
    pass
