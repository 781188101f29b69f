"""Prometheus scrape targets built from the inventory and the agent catalog.

Plain functions over plain data, so they can be unit-tested without Ansible. The filter plugin
`plugins/filter/targets.py` exposes them to the `prometheus` role, which writes the results as
`file_sd` target files (a list of target groups, rendered with `to_nice_json`).

Addresses: Prometheus reaches a host at `agentfactory_host_address` when the inventory sets it
(useful when `ansible_host` is a loopback port forward, as in the lab), else at `ansible_host`,
else at the inventory name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.agentfactory.fleet.plugins.plugin_utils.catalog import normalise_agent
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.catalog import resolve_hosts as _catalog_resolve_hosts
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import replica_overrides

# Inventory variable that overrides the address Prometheus uses for a host.
ADDRESS_VAR = "agentfactory_host_address"
DEFAULT_METRICS_PATH = "/metrics"
DEFAULT_AGENT_HOSTS = "agent_hosts"

_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)


class TargetError(ValueError):
    """The catalog or inventory cannot be turned into targets; the message names the culprit."""


def resolve_hosts(pattern: str | Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Inventory hosts an Ansible-style pattern selects, in inventory order.

    The pattern rules are the catalog validator's (`catalog.resolve_hosts`),
    so placement means the same thing everywhere; names that match nothing select no host here
    (the validator reports them before any run).
    """
    hosts, _complaints = _catalog_resolve_hosts(pattern, groups)
    return hosts


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
    port = _port(port, "node exporter port")
    return [
        {"targets": [_hostport(host_address(h, hostvars), port)], "labels": {"host": h}}
        for h in resolve_hosts(pattern, groups)
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


def _normalised(agents: Iterable[Mapping[str, Any]] | None,
                defaults: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The catalog with every optional field filled in, as the agent role sees it."""
    result = []
    for index, agent in enumerate(agents or []):
        if not isinstance(agent, Mapping):
            raise TargetError(f"agentfactory_agents[{index}] must be a mapping, got {type(agent).__name__}")
        result.append(normalise_agent(agent, defaults or {}))
    return result


def agent_targets(
    agents: Iterable[Mapping[str, Any]] | None,
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    replicas: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One target group per agent replica: replica i on each of the agent's hosts is host_port + i.

    Agents are first completed like the agent role does (`catalog.normalise_agent` with
    `agentfactory_agent_defaults` as `defaults`: replicas 1, host_port = port, hosts
    agent_hosts, metrics.path /metrics unless set). Labels: `agent`, `host` (inventory name),
    `replica` (index as a string) and `__metrics_path__` (the agent's `metrics.path`). An empty
    or missing catalog gives an empty list, which Prometheus reads as "no targets".

    `replicas` (`{agent: count}`) overrides the catalog's replica count of the named agents for
    this run, as the agent role's `agent_replicas_override` does (`agentfactory scale`).
    """
    try:
        overrides = replica_overrides(replicas)
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    result: list[dict[str, Any]] = []
    for index, agent in enumerate(_normalised(agents, defaults)):
        name = agent.get("name")
        if not name:
            raise TargetError(f"agentfactory_agents[{index}] has no name")
        count = overrides.get(name, agent.get("replicas", 1))
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise TargetError(f"agent {name}: replicas must be an integer >= 0, got {count!r}")
        if count == 0:
            continue
        if "host_port" not in agent:
            raise TargetError(f"agent {name}: host_port is required")
        first = _port(agent["host_port"], f"agent {name}: host_port")
        _port(first + count - 1, f"agent {name}: host_port + replicas - 1")
        metrics = agent.get("metrics") or {}
        path = str(metrics.get("path") or DEFAULT_METRICS_PATH)
        if not path.startswith("/"):
            raise TargetError(f"agent {name}: metrics.path must start with /, got {path!r}")
        pattern = agent.get("hosts", DEFAULT_AGENT_HOSTS)
        for host in resolve_hosts(pattern, groups):
            address = host_address(host, hostvars)
            for replica in range(count):
                result.append({
                    "targets": [_hostport(address, first + replica)],
                    "labels": {
                        "agent": str(name),
                        "host": host,
                        "replica": str(replica),
                        "__metrics_path__": path,
                    },
                })
    return result


def memory_bytes(value: Any) -> int:
    """Docker-style memory size (`512m`, `2g`, `1.5g`, `1048576`) in bytes (binary units)."""
    if isinstance(value, bool):
        raise TargetError(f"memory size must look like 512m or 2g, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = _MEMORY_RE.match(str(value))
    if not match:
        raise TargetError(f"memory size must look like 512m or 2g, got {value!r}")
    number, unit = match.groups()
    return int(float(number) * _MEMORY_UNITS[unit.lower()])


def agent_limits(agents: Iterable[Mapping[str, Any]] | None,
                 defaults: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """`[{name, memory_bytes, cpus}]` per catalog agent from `resources` (None where unset).

    `resources` as the agent role sees it (merged over `agentfactory_agent_defaults`). The
    prometheus role turns these into per-agent alert thresholds (a share of the limit).
    """
    limits = []
    for agent in _normalised(agents, defaults):
        name = str(agent.get("name"))
        resources = agent.get("resources") or {}
        memory = resources.get("memory")
        cpus = resources.get("cpus")
        try:
            memory_b = memory_bytes(memory) if memory not in (None, "") else None
        except TargetError as exc:
            raise TargetError(f"agent {name}: resources.memory: {exc}") from None
        if cpus not in (None, ""):
            try:
                cpus = float(cpus)
            except (TypeError, ValueError):
                raise TargetError(f"agent {name}: resources.cpus must be a number, got {cpus!r}") from None
            if isinstance(resources.get("cpus"), bool) or cpus <= 0:
                raise TargetError(f"agent {name}: resources.cpus must be > 0, got {resources.get('cpus')!r}")
        else:
            cpus = None
        limits.append({"name": name, "memory_bytes": memory_b, "cpus": cpus})
    return limits
