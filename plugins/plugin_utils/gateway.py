"""The HAProxy gateway's view of the catalog: frontends, backends and their servers.

Plain functions over plain data (unit-tested in tests/unit/test_gateway.py), exposed to the
`gateway` role by the thin filter plugin plugins/filter/gateway.py.

Every agent with ``gateway.port`` gets one frontend on that port and one backend named after
the agent. The backend lists every replica on every host the agent is placed on (placement and
replicas as the agent role sees them: :func:`fleet.plan`, including
a run's replica overrides, e.g. ``agentfactory scale``), reached at the host's inter-host address
(:func:`targets.host_address`) and the replica's host port.

Server names are ``<inventory host>_<replica>``, the replica being ``<agent>-<index>``:
``af-lab-2_reference-1`` is replica 1 of ``reference`` on ``af-lab-2``. Agent names are DNS
labels (no ``_``), so the last ``_`` always separates host and replica. Characters HAProxy does
not allow in a name (anything but letters, digits, ``-``, ``_``, ``.`` and ``:``) are replaced
by ``-`` in the host part. The runtime API addresses a server as ``<agent>/<server name>``
(``set server reference/af-lab-2_reference-1 state drain``).

API clients (``gateway_clients``): each has a ``name``, a ``key``, the ``agents`` it may call
(names, or ``"*"`` for all) and optionally a ``rate_limit``. :func:`client_problems` says what is
wrong with the list (naming the client, never showing a key); :func:`clients` turns it into
what HAProxy is given: the SHA-256 digest of each key instead of the key, the agents, the rate
limit. :func:`allowed_clients` lists the clients admitted to one agent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import plan
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.targets import host_address

__all__ = [
    "GatewayError",
    "allowed_clients",
    "backends",
    "client_problems",
    "clients",
    "frontend_name",
    "port_problems",
    "server_name",
]

SERVER_SEPARATOR = "_"
# Frontend names get a prefix with a "_", which agent names (DNS labels) cannot contain, so no
# frontend shares its name with a backend or with another agent's proxy.
FRONTEND_PREFIX = "fe_"

_HAPROXY_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")

# Client names go into map files, ACLs, a stick table (len 64) and a request header.
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Keys are sent in a header (Bearer token or X-API-Key): printable ASCII, no spaces.
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")
MIN_KEY_LENGTH = 16
ALL_AGENTS = "*"


class GatewayError(ValueError):
    """The catalog or inventory cannot be turned into a gateway configuration."""


def server_name(host: str, replica: str) -> str:
    """The HAProxy server name of one replica: ``<host>_<replica>`` (see the module docstring)."""
    host = _HAPROXY_NAME_UNSAFE.sub("-", str(host))
    replica = str(replica)
    if not host or not replica or _HAPROXY_NAME_UNSAFE.search(replica):
        raise GatewayError(f"cannot name a gateway server after host {host!r} and replica {replica!r}")
    return f"{host}{SERVER_SEPARATOR}{replica}"


def frontend_name(agent: str) -> str:
    """The HAProxy frontend of an agent; its backend carries the agent's own name."""
    return f"{FRONTEND_PREFIX}{agent}"


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return f"{host}:{port}"


def _plan(agents, groups, defaults, replicas) -> list[dict[str, Any]]:
    try:
        return plan(agents, groups, defaults, replicas=replicas)
    except ValueError as exc:  # FleetError, or a bad override (fleet.replica_overrides)
        raise GatewayError(str(exc)) from None


def backends(
    agents: Iterable[Mapping[str, Any]] | None,
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    replicas: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One entry per agent with ``gateway.port``, in catalog order (the fleet model, :func:`fleet.plan`).

    Each entry: ``name`` (the agent, also the backend's name), ``frontend`` (the frontend's
    name), ``port`` (the gateway port), ``health`` (``path``, ``inter_ms``, ``timeout_ms``,
    ``fall`` from the agent's health settings) and ``servers``: one per replica per host, in
    inventory order then replica order, each ``{name, host, replica, index, address}``.
    ``replicas`` (``{agent: count}``) overrides the catalog's replica count of the named agents
    for this run (``agentfactory scale``). An agent with no replicas anywhere has an empty server
    list (HAProxy answers 503). An empty or missing catalog gives an empty list.
    """
    result: list[dict[str, Any]] = []
    for agent in _plan(agents, groups, defaults, replicas):
        port = (agent.get("gateway") or {}).get("port")
        if port is None:
            continue
        health = agent["health"]
        servers = [
            {"name": server_name(host, replica["name"]), "host": host, "replica": replica["name"],
             "index": replica["index"], "address": _address(host_address(host, hostvars), replica["host_port"])}
            for host in agent["placed_hosts"] for replica in agent["replica_list"]
        ]
        names = [s["name"] for s in servers]
        collisions = sorted({n for n in names if names.count(n) > 1})
        if collisions:  # host names that differ only in characters HAProxy does not allow
            raise GatewayError(f"agent {agent['name']}: gateway server names collide: {', '.join(collisions)}")
        result.append({
            "name": agent["name"],
            "frontend": frontend_name(agent["name"]),
            "port": port,
            # HAProxy counts in milliseconds; the catalog in seconds.
            "health": {"path": health["path"], "inter_ms": max(1, round(health["interval"] * 1000)),
                       "timeout_ms": max(1, round(health["timeout"] * 1000)), "fall": health["retries"]},
            "servers": servers,
        })
    return result


def port_problems(gateway_backends: Iterable[Mapping[str, Any]], host: str,
                  reserved: Mapping[Any, str] | None = None) -> list[str]:
    """Agent frontend ports that the gateway on ``host`` uses itself (``reserved``,
    ``{port: what uses it}``, e.g. the metrics frontend), one message each. HAProxy's own check
    (``haproxy -c``) does not bind, so these would only fail at reload time. A replica's host
    port on a gateway host is the catalog's check (:func:`catalog.validate_catalog`)."""
    taken = {int(port): str(what) for port, what in (reserved or {}).items()}
    return [f"agent {backend['name']}: gateway.port {backend['port']} on {host} is already used by "
            f"{taken[int(backend['port'])]}"
            for backend in gateway_backends if int(backend["port"]) in taken]


def _client_label(index: int, client: Any) -> str:
    name = client.get("name") if isinstance(client, Mapping) else None
    return f"gateway client {name!r}" if isinstance(name, str) and name else f"gateway client #{index + 1}"


def _key_problems(label: str, what: str, key: Any, min_key_length: int, digests: dict[str, str]) -> list[str]:
    """What is wrong with one key of a client (never showing it); records its digest in `digests`."""
    if not isinstance(key, str) or not key:
        return [f"{label}: {what} is empty (set it from vault)"]
    if len(key) < min_key_length:
        return [f"{label}: {what} is too short ({len(key)} characters, at least {min_key_length})"]
    if not _KEY_CHARS.match(key):
        return [f"{label}: {what} must be printable ASCII without spaces"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    if digest in digests:
        return [f"{label}: {what} is the same as a key of {digests[digest]}"]
    digests[digest] = label
    return []


def client_problems(
    gateway_clients: Iterable[Any] | None,
    agents: Iterable[Mapping[str, Any]] | None = None,
    min_key_length: int = MIN_KEY_LENGTH,
) -> list[str]:
    """What is wrong with the API clients, one message each, naming the client (never its key).

    A client is a mapping with ``name`` (letters, digits, ``_ . -``, at most 64), ``key`` (at
    least ``min_key_length`` printable characters, no spaces, not another client's), optionally
    ``previous_keys`` (keys being rotated out, still admitted; the same rules), ``agents``
    (a list of agent names of the catalog ``agents``, or ``"*"`` for all) and optionally
    ``rate_limit`` (an integer >= 1). Names must be unique.
    """
    if gateway_clients is None:
        return []
    if isinstance(gateway_clients, (str, bytes, Mapping)) or not isinstance(gateway_clients, Iterable):
        return [f"gateway_clients must be a list of clients, got {type(gateway_clients).__name__}"]
    catalog = {str(a.get("name")) for a in (agents or []) if isinstance(a, Mapping) and a.get("name")}
    problems: list[str] = []
    names: dict[str, int] = {}
    digests: dict[str, str] = {}
    for index, client in enumerate(gateway_clients):
        label = _client_label(index, client)
        if not isinstance(client, Mapping):
            problems.append(f"{label}: must be a mapping with name, key and agents")
            continue
        unknown = sorted(set(client) - {"name", "key", "previous_keys", "agents", "rate_limit"})
        if unknown:
            problems.append(f"{label}: unknown field(s) {', '.join(map(str, unknown))} "
                            "(a client has name, key, previous_keys, agents, rate_limit)")
        name = client.get("name")
        if not isinstance(name, str) or not _CLIENT_NAME.match(name):
            problems.append(f"{label}: name must be 1-64 letters, digits, '_', '.' or '-' "
                            f"(starting with a letter or digit), got {name!r}")
        elif name in names:
            problems.append(f"{label}: the name is used by more than one client")
        else:
            names[name] = index
        previous = client.get("previous_keys", [])
        if not isinstance(previous, list):
            problems.append(f"{label}: previous_keys must be a list of keys, got {type(previous).__name__}")
            previous = []
        for what, key in [("key", client.get("key"))] + [("a previous key", k) for k in previous]:
            problems.extend(_key_problems(label, what, key, min_key_length, digests))
        allowed = client.get("agents")
        if allowed == ALL_AGENTS:
            allowed = [ALL_AGENTS]
        if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
            problems.append(f"{label}: agents must be a list of agent names, or [\"*\"] for all, got {allowed!r}")
        else:
            missing = sorted({a for a in allowed if a != ALL_AGENTS and a not in catalog})
            if missing:
                problems.append(f"{label}: agent(s) {', '.join(missing)} not in the catalog")
        rate = client.get("rate_limit")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
            problems.append(f"{label}: rate_limit must be an integer >= 1, got {rate!r}")
    return problems


def clients(gateway_clients: Iterable[Any] | None, default_rate_limit: int,
            agents: Iterable[Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The clients as HAProxy gets them, without their keys: ``name``, ``digests`` (hex SHA-256 of
    the key, then of each previous key: all admitted as this client), ``agents`` (sorted names,
    ``["*"]`` for all) and ``rate_limit`` (the client's own, else ``default_rate_limit``), sorted
    by name. Raises :class:`GatewayError` with the first
    problem of :func:`client_problems` (``agents``, the catalog, is checked only when given)."""
    problems = client_problems(gateway_clients, agents)
    if agents is None:
        problems = [p for p in problems if not p.endswith("not in the catalog")]
    if problems:
        raise GatewayError(problems[0])
    if isinstance(default_rate_limit, bool) or int(default_rate_limit) < 1:
        raise GatewayError(f"gateway_rate_limit must be an integer >= 1, got {default_rate_limit!r}")
    result = []
    for client in gateway_clients or []:
        allowed = client.get("agents")
        allowed = [ALL_AGENTS] if allowed == ALL_AGENTS or ALL_AGENTS in allowed else sorted(set(allowed))
        rate = client.get("rate_limit")
        result.append({
            "name": client["name"],
            "digests": [hashlib.sha256(key.encode()).hexdigest()
                        for key in [client["key"], *client.get("previous_keys", [])]],
            "agents": allowed,
            "rate_limit": int(default_rate_limit) if rate is None else rate,
        })
    return sorted(result, key=lambda c: c["name"])


def allowed_clients(gateway_clients: Iterable[Mapping[str, Any]], agent: str) -> list[str]:
    """Names of the clients (as :func:`clients` returns them) admitted to ``agent``."""
    return [c["name"] for c in gateway_clients if ALL_AGENTS in c["agents"] or agent in c["agents"]]
