"""Prometheus scrape targets built from the inventory and the agent catalog.

Plain functions over plain data, so they can be unit-tested without Ansible. The filter plugin
`plugins/filter/targets.py` exposes them to the `prometheus` role, which writes the results as
`file_sd` target files (a list of target groups, rendered with `to_nice_json`).

Addresses: Prometheus reaches a host at `agentfactory_host_address` when the inventory sets it
(useful when `ansible_host` is a loopback port forward, as in the lab), else at `ansible_host`,
else at the inventory name.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Inventory variable that overrides the address Prometheus uses for a host.
ADDRESS_VAR = "agentfactory_host_address"
DEFAULT_METRICS_PATH = "/metrics"
DEFAULT_AGENT_HOSTS = "agent_hosts"

_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)


class TargetError(ValueError):
    """The catalog or inventory cannot be turned into targets; the message names the culprit."""


def _split_pattern(pattern: str | Sequence[str]) -> list[str]:
    """Split an Ansible host pattern into terms (`a:b`, `a,b`, `a:!b`, `a:&b`)."""
    if isinstance(pattern, str):
        text = pattern.strip()
        parts = text.split(",") if "," in text else text.split(":")
    else:
        parts = []
        for item in pattern:
            parts.extend(_split_pattern(str(item)))
    return [p.strip() for p in parts if p.strip()]


def _match_term(term: str, groups: Mapping[str, Sequence[str]], all_hosts: Sequence[str]) -> list[str]:
    """Hosts one pattern term selects: a group, a host, `all`/`*`, a wildcard or a `~regex`."""
    if term in ("all", "*"):
        return list(all_hosts)
    if term in groups:
        return list(groups[term])
    if term in all_hosts:
        return [term]
    if term.startswith("~"):
        regex = re.compile(term[1:])
        def matches(name: str) -> bool:
            return regex.match(name) is not None
    elif any(ch in term for ch in "*?["):
        def matches(name: str) -> bool:
            return fnmatch.fnmatchcase(name, term)
    else:
        return []
    found: list[str] = []
    for name, members in groups.items():
        if name != "all" and matches(name):
            found.extend(members)
    found.extend(h for h in all_hosts if matches(h))
    return found


def resolve_hosts(pattern: str | Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Inventory hosts an Ansible-style pattern selects, in inventory order, without duplicates.

    Supports what catalogs use: group and host names, `all`, unions (`a:b`, `a,b`), intersections
    (`a:&b`), exclusions (`a:!b`), shell wildcards (`web*`) and regexes (`~web[0-9]+`). Ansible
    applies unions first, then intersections, then exclusions; so does this.
    """
    all_hosts = list(groups.get("all", []))
    union: list[str] = []
    intersections: list[set[str]] = []
    exclusions: set[str] = set()
    for term in _split_pattern(pattern):
        if term.startswith("!"):
            exclusions.update(_match_term(term[1:], groups, all_hosts))
        elif term.startswith("&"):
            intersections.append(set(_match_term(term[1:], groups, all_hosts)))
        else:
            union.extend(_match_term(term, groups, all_hosts))
    if not union and intersections:
        union = list(all_hosts)
    selected = set(union)
    for keep in intersections:
        selected &= keep
    selected -= exclusions
    order = {h: i for i, h in enumerate(all_hosts)}
    ordered = sorted(selected, key=lambda h: (order.get(h, len(order)), h))
    return ordered


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


def agent_targets(
    agents: Iterable[Mapping[str, Any]] | None,
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One target group per agent replica: replica i on each of the agent's hosts is host_port + i.

    Labels: `agent`, `host` (inventory name), `replica` (index as a string) and
    `__metrics_path__` (the agent's `metrics.path`, default /metrics). An empty or missing
    catalog gives an empty list, which Prometheus reads as "no targets".
    """
    result: list[dict[str, Any]] = []
    for index, agent in enumerate(agents or []):
        if not isinstance(agent, Mapping):
            raise TargetError(f"agentfactory_agents[{index}] must be a mapping, got {type(agent).__name__}")
        name = agent.get("name")
        if not name:
            raise TargetError(f"agentfactory_agents[{index}] has no name")
        replicas = agent.get("replicas", 1)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise TargetError(f"agent {name}: replicas must be an integer >= 0, got {replicas!r}")
        if replicas == 0:
            continue
        if "host_port" not in agent:
            raise TargetError(f"agent {name}: host_port is required")
        first = _port(agent["host_port"], f"agent {name}: host_port")
        _port(first + replicas - 1, f"agent {name}: host_port + replicas - 1")
        metrics = agent.get("metrics") or {}
        path = str(metrics.get("path") or DEFAULT_METRICS_PATH)
        if not path.startswith("/"):
            raise TargetError(f"agent {name}: metrics.path must start with /, got {path!r}")
        pattern = agent.get("hosts", DEFAULT_AGENT_HOSTS)
        for host in resolve_hosts(pattern, groups):
            address = host_address(host, hostvars)
            for replica in range(replicas):
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


def agent_memory_limits(agents: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """`[{name, bytes}]` for each catalog agent that sets `resources.memory`, in catalog order."""
    limits = []
    for agent in agents or []:
        memory = (agent.get("resources") or {}).get("memory")
        if memory not in (None, ""):
            try:
                limits.append({"name": str(agent["name"]), "bytes": memory_bytes(memory)})
            except TargetError as exc:
                raise TargetError(f"agent {agent.get('name')}: resources.memory: {exc}") from None
    return limits
