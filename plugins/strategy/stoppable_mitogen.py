"""The stoppable strategy on Mitogen: linear, modules run in a Python kept alive on each host,
and a Ctrl-C still lets the tasks in flight finish (plugins/plugin_utils/stoppable.py). The
project's ansible.cfg selects it; without Mitogen installed it runs as plain stoppable linear."""

from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure
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
    import ansible_mitogen.planner
    import ansible_mitogen.strategy
    import mitogen.core
    import mitogen.service
except ImportError:
    Display().warning("Mitogen is not installed (pip install 'mitogen>=0.3.54,<0.4'): "
                      "modules run one Python per task, about twice as slow")

    class StrategyModule(StopBetweenTasks, LinearStrategyModule):
        pass
else:
    # Mitogen's own way to find the linear strategy (its loaders wrap Ansible's).
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    # A host lost mid-run (powered off) must end up "unreachable", as on Ansible's own strategy:
    # the CLI's exit 3 and a --limit rerun rest on it. Mitogen 0.3.54 gets there when the host
    # drops during a call, but not when it dropped before the next module's files are pushed:
    # the multiplexer has no stream left for it and fails with an AttributeError on None, which
    # the task reports as an ordinary failure. Both halves change nothing while the host is there.
    _LOST = f"{mitogen.core.ChannelError.__module__}.{mitogen.core.ChannelError.__name__}:"
    _forward = mitogen.service.PushFileService._forward
    _propagate_deps = ansible_mitogen.planner._propagate_deps

    def _forward_to_live_host(self, context, path):
        """In the multiplexer (forked when the run starts, so it has this patch)."""
        if self.router.stream_by_id(context.context_id) is None:
            raise mitogen.core.ChannelError(mitogen.core.ChannelError.remote_msg)
        return _forward(self, context, path)

    def _propagate_deps_or_unreachable(invocation, planner, context):
        """In a worker: the multiplexer's ChannelError, as Ansible's connection failure."""
        try:
            _propagate_deps(invocation, planner, context)
        except mitogen.core.CallError as exc:
            if not str(exc).startswith(_LOST):
                raise
            raise AnsibleConnectionFailure("the connection to the host was lost") from None

    mitogen.service.PushFileService._forward = _forward_to_live_host
    ansible_mitogen.planner._propagate_deps = _propagate_deps_or_unreachable

    class StrategyModule(StopBetweenTasks, ansible_mitogen.strategy.StrategyMixin, _Linear):
        pass
