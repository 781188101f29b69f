"""Filters over the agent catalog: thin shims over plugin_utils/fleet.py (tested there)."""

from __future__ import annotations

from ansible_collections.agentfactory.fleet.plugins.plugin_utils import fleet as _fleet
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.filtershim import filter_shim


def _shim(func):
    return filter_shim(func, ValueError)  # FleetError is one, and so is a bad override


class FilterModule:
    """agentfactory_* filters used by the agent role and the agents playbook."""

    def filters(self):
        return {
            # agents | agentfactory_agent_secrets(name, defaults) -> {file: value}; no_log tasks only
            "agentfactory_agent_secrets": _fleet.agent_secrets,
            # agents | agentfactory_agents_for_host(host, groups, defaults, only, replicas, images) -> placed
            # (with secret_names, never secret values)
            "agentfactory_agents_for_host": _shim(_fleet.agents_for_host),
            # agents | agentfactory_catalog_problems(groups, defaults, strict) -> ["agent 'x': ..."]
            "agentfactory_catalog_problems": _fleet.catalog_problems,
            # ["K=V", ...] | agentfactory_env_dict -> {K: V} (a container's recorded environment)
            "agentfactory_env_dict": _fleet.env_dict,
            # placed agents | agentfactory_memory_promised -> bytes their replicas' memory limits add up to
            "agentfactory_memory_promised": _fleet.memory_promised,
            # placed agents | agentfactory_health_spec -> the agent_health module's `agents` option
            "agentfactory_health_spec": _fleet.health_spec,
            # agents | agentfactory_unknown_agents(names) -> names not in the catalog
            "agentfactory_unknown_agents": _fleet.unknown_agents,
        }
