"""Filters for the host firewall: thin shims over plugin_utils/firewall.py (tested there)."""

from __future__ import annotations

from ansible_collections.agentfactory.fleet.plugins.plugin_utils import firewall as _firewall
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.filtershim import filter_shim


def _shim(func):
    return filter_shim(func, _firewall.FirewallError)


class FilterModule:
    """agentfactory_firewall_* filters used by the firewall role."""

    def filters(self):
        return {
            # hosts | agentfactory_firewall_host_addresses(hostvars) -> [address or name], each once
            "agentfactory_firewall_host_addresses": _shim(_firewall.host_addresses),
            # entries | agentfactory_firewall_source_families(resolved) -> {"v4": [net], "v6": [net]}
            "agentfactory_firewall_source_families": _shim(_firewall.source_families),
        }
