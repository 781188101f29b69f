"""Prometheus scrape targets built from the inventory and the agent catalog.

Plain functions over plain data, so they can be unit-tested without Ansible. The filter plugin
`plugins/filter/targets.py` exposes them to the `prometheus` role, which writes the results as
`file_sd` target files (a list of target groups, rendered with `to_nice_json`).

Addresses: Prometheus reaches a host at `agentfactory_host_address` when the inventory sets it
(useful when `ansible_host` is a loopback port forward, as in the lab), else at `ansible_host`,
else at the inventory name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import plan
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.placement import resolve_hosts

# Inventory variable that overrides the address Prometheus uses for a host.
ADDRESS_VAR = "agentfactory_host_address"


class TargetError(ValueError):
    """The catalog or inventory cannot be turned into targets; the message names the culprit."""


def host_address(host: str, hostvars: Mapping[str, Mapping[str, Any]] | None) -> str:
    """The address Prometheus uses to reach an inventory host (see the module docstring)."""
    hv = (hostvars or {}).get(host) or {}
    for var in (ADDRESS_VAR, "ansible_host"):
        value = hv.get(var)
        if value:
            return str(value)
    return host


def _hostport(address: str, port: int) -> str:
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"  # IPv6 literal
    return f"{address}:{port}"


def node_targets(
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
    port: int = 9100,
    pattern: str = "all",
) -> list[dict[str, Any]]:
    """One target group per host running node_exporter, labelled with its inventory name."""
    port = _port(port, "exporter port")
    return [
        {"targets": [_hostport(host_address(h, hostvars), port)], "labels": {"host": h}}
        for h in resolve_hosts(pattern, groups)[0]
    ]


def _port(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TargetError(f"{what} must be an integer, got {value!r}")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise TargetError(f"{what} must be an integer, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise TargetError(f"{what} must be within 1-65535, got {port}")
    return port


def agent_targets(
    agents: Iterable[Mapping[str, Any]] | None,
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    replicas: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One target group per agent replica on each of its hosts (the fleet model, :func:`fleet.plan`).

    Labels: `agent`, `host` (inventory name), `replica` (index as a string) and
    `__metrics_path__` (the agent's `metrics.path`). An empty or missing catalog gives an empty
    list, which Prometheus reads as "no targets". `replicas` (`{agent: count}`) overrides the
    catalog's replica count of the named agents for this run (`agentfactory scale`).
    """
    result: list[dict[str, Any]] = []
    for agent in _plan(agents, groups, defaults, replicas):
        for host in agent["placed_hosts"]:
            address = host_address(host, hostvars)
            for replica in agent["replica_list"]:
                result.append({
                    "targets": [_hostport(address, replica["host_port"])],
                    "labels": {"agent": agent["name"], "host": host, "replica": str(replica["index"]),
                               "__metrics_path__": agent["metrics"]["path"]},
                })
    return result


def agent_limits(agents: Iterable[Mapping[str, Any]] | None, groups: Mapping[str, Sequence[str]],
                 defaults: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """`[{name, memory_bytes, cpus}]` per catalog agent from its `resources` (None where unset).

    The prometheus role turns these into per-agent alert thresholds (a share of the limit).
    """
    return [{"name": agent["name"], "memory_bytes": agent["memory_bytes"],
             "cpus": agent["resources"].get("cpus")}
            for agent in _plan(agents, groups, defaults, None)]


def _plan(agents, groups, defaults, replicas) -> list[dict[str, Any]]:
    try:
        return plan(agents, groups, defaults, replicas=replicas)
    except ValueError as exc:  # FleetError, or a bad override (fleet.replica_overrides)
        raise TargetError(str(exc)) from None
