"""Who may reach a host through the firewall role: the addresses of inventory hosts, split by
address family once they are resolved on the host.

Plain functions over plain data (unit-tested in tests/unit/test_firewall.py), exposed to the
firewall role by the thin filter plugin plugins/filter/firewall.py. The address of a host is the
one Prometheus and the gateway use to reach it (:func:`targets.host_address`):
the address its own connections to the other hosts come from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.agentfactory.fleet.plugins.plugin_utils.targets import host_address


class FirewallError(ValueError):
    """A source cannot be turned into addresses; the message names it."""


def host_addresses(hosts: Iterable[str] | None, hostvars: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """The addresses (names or IP literals) of `hosts`, in order, each once."""
    result: list[str] = []
    for host in hosts or []:
        address = host_address(str(host), hostvars)
        if address not in result:
            result.append(address)
    return result


def source_families(
    entries: Iterable[str] | None, resolved: Mapping[str, Sequence[str]] | None,
) -> dict[str, list[str]]:
    """`{"v4": [...], "v6": [...]}`: the networks of `entries` (host names, IP literals, CIDRs),
    names replaced by what `resolved` (`{entry: [address or network]}`, from the resolver run
    on the host) gives for them. Sorted, each once; a host address becomes a /32 or /128.
    Raises FirewallError for an entry that was not resolved or is not an address."""
    found: dict[str, set[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {"v4": set(), "v6": set()}
    table = resolved or {}
    for entry in entries or []:
        entry = str(entry)
        values = table.get(entry)
        if values is None:
            values = [entry]
        for value in values:
            try:
                network = ipaddress.ip_network(str(value).split("%", 1)[0], strict=False)
            except ValueError:
                raise FirewallError(
                    f"firewall source {entry!r}: not an IP address or network and not resolved on the host"
                ) from None
            found["v4" if network.version == 4 else "v6"].add(network)
    return {family: [str(n) for n in sorted(nets)] for family, nets in found.items()}
