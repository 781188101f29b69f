"""Filters for Prometheus targets: thin shims over plugin_utils/targets.py (tested there)."""

from __future__ import annotations

from ansible_collections.agentfactory.fleet.plugins.plugin_utils import targets as _targets
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.filtershim import filter_shim


def _shim(func):
    return filter_shim(func, _targets.TargetError)


class FilterModule:
    """agentfactory_* filters used by the prometheus role."""

    def filters(self):
        return {
            # groups | agentfactory_node_targets(hostvars, port, pattern) -> file_sd target groups
            "agentfactory_node_targets": _shim(_targets.node_targets),
            # agents | agentfactory_agent_targets(groups, hostvars, defaults, replicas) -> file_sd target groups
            "agentfactory_agent_targets": _shim(_targets.agent_targets),
            # agents | agentfactory_agent_limits(groups, defaults) -> [{name, memory_bytes, cpus}]
            "agentfactory_agent_limits": _shim(_targets.agent_limits),
        }
