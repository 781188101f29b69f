"""Filters for the host firewall: thin shims over agentfactory_cli.firewall (tested there)."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from agentfactory_cli import firewall as _firewall
    from agentfactory_cli.filtershim import filter_shim
except ImportError:  # running from a checkout where the package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from agentfactory_cli import firewall as _firewall
    from agentfactory_cli.filtershim import filter_shim


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
