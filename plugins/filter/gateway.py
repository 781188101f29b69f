"""Filters for the HAProxy gateway: thin shims over plugin_utils/gateway.py (tested there)."""

from __future__ import annotations

from ansible_collections.agentfactory.fleet.plugins.plugin_utils import gateway as _gateway
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.filtershim import filter_shim


def _shim(func):
    return filter_shim(func, _gateway.GatewayError)


class FilterModule:
    """agentfactory_gateway_* filters used by the gateway role."""

    def filters(self):
        return {
            # agents | agentfactory_gateway_backends(groups, hostvars, defaults, replicas) -> frontends/backends/servers
            "agentfactory_gateway_backends": _shim(_gateway.backends),
            # backends | agentfactory_gateway_port_problems(host, reserved) -> [msg]
            "agentfactory_gateway_port_problems": _shim(_gateway.port_problems),
            # host | agentfactory_gateway_server_name(replica) -> "<host>_<replica>"
            "agentfactory_gateway_server_name": _shim(_gateway.server_name),
            # gateway_clients | agentfactory_gateway_client_problems(agents, min_key_length) -> [msg] (never a key)
            "agentfactory_gateway_client_problems": _shim(_gateway.client_problems),
            # gateway_clients | agentfactory_gateway_clients(rate_limit, agents)
            #   -> [{name, digests, agents, rate_limit}]
            "agentfactory_gateway_clients": _shim(_gateway.clients),
            # clients | agentfactory_gateway_allowed_clients(agent) -> [name]
            "agentfactory_gateway_allowed_clients": _shim(_gateway.allowed_clients),
        }
