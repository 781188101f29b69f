"""Which agents run on which host, replica by replica: the catalog as the agent role sees it.

Plain functions over plain data (unit-tested in tests/unit/test_fleet.py), exposed to
playbooks by the thin filter plugin plugins/filter/catalog.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.agentfactory.fleet.plugins.plugin_utils.catalog import (
    memory_bytes,
    normalise_agent,
    validate_catalog,
)
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.placement import resolve_hosts


def replica_name(agent: str, index: int) -> str:
    """Container name (docker) or unit instance (systemd) of one replica."""
    return f"{agent}-{index}"


def replica_overrides(replicas: Any) -> dict[str, int]:
    """``{agent: count}`` (the CLI's scale) checked: counts are integers >= 0, digits given as
    text (an extra var) are read. Raises ValueError naming the agent."""
    if replicas is None:
        return {}
    if not isinstance(replicas, Mapping):
        raise ValueError(f"replica overrides must be a mapping of agent to count, got {replicas!r}")
    result = {}
    for name, count in replicas.items():
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"agent {name}: replicas override must be an integer >= 0, got {count!r}")
        result[str(name)] = count
    return result


class FleetError(ValueError):
    """The catalog cannot be planned: every problem validate_catalog found, one per line."""


def plan(
    agents: Iterable[Mapping[str, Any]] | None,
    groups: Mapping[str, Sequence[str]],
    defaults: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
    replicas: Mapping[str, int] | None = None,
    images: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The fleet model: every agent of the catalog, validated, normalised and placed, in order.

    Each agent is :func:`catalog.normalise_agent`'s form plus what is derived from it:
    ``placed_hosts`` (the inventory hosts its ``hosts`` pattern matches, in inventory order),
    ``replica_list`` (per replica its ``index``, container or unit ``name`` and ``host_port``;
    replica i listens on host_port + i on every placed host) and ``memory_bytes`` (its memory
    limit in bytes, None without one). Every consumer (the agent role, agent_health, the gateway
    backends, the scrape targets, the alert thresholds, the firewall) reads this form.

    `only` keeps the named agents (the CLI's --agent); `replicas` overrides the replica count
    of the named agents (the CLI's scale), `images` their image (update --image).

    No secret values: `secrets` is replaced by `secret_names` (sorted), so the planned agents can
    be looped over, registered and shown without a decrypted value reaching an event. The
    values are read (never templated here) only by :func:`agent_secrets`, in the one no_log
    task that writes the secret files. Raises FleetError when the catalog is invalid.
    """
    overrides = replica_overrides(replicas)
    new_images = dict(images or {})
    # The run's overrides are part of what is checked: a scale must not make ports collide.
    agents = [_overridden(raw, overrides, new_images) for raw in agents or []]
    problems = validate_catalog(agents, groups, defaults=defaults, secret_values=False)
    if problems:
        lines = "\n  ".join(str(p) for p in problems)
        raise FleetError(f"the agent catalog has {len(problems)} problem(s):\n  {lines}")
    wanted = set(only or [])
    planned = []
    for raw in agents:
        names = sorted({str(k) for layer in (defaults, raw) for k in _secrets_of(layer)})
        agent = normalise_agent(_without_secrets(raw), _without_secrets(defaults))
        agent.pop("secrets", None)
        agent["secret_names"] = names
        name = agent["name"]
        if wanted and name not in wanted:
            continue
        agent["placed_hosts"], _complaints = resolve_hosts(agent["hosts"], groups)
        agent["replica_list"] = [
            {"index": i, "name": replica_name(name, i), "host_port": agent["host_port"] + i}
            for i in range(agent["replicas"])
        ]
        memory = agent["resources"].get("memory")
        agent["memory_bytes"] = memory_bytes(memory) if memory else None
        planned.append(agent)
    return planned


def _overridden(raw: Any, replicas: Mapping[str, int], images: Mapping[str, str]) -> Any:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if name not in replicas and name not in images:
        return raw
    changed = dict(raw)
    if name in replicas:
        changed["replicas"] = replicas[name]
    if name in images:
        changed["image"] = images[name]
    return changed


def agents_for_host(
    agents: Iterable[Mapping[str, Any]] | None,
    host: str,
    groups: Mapping[str, Sequence[str]],
    defaults: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
    replicas: Mapping[str, int] | None = None,
    images: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The planned agents (:func:`plan`) placed on `host`."""
    return [a for a in plan(agents, groups, defaults, only, replicas, images) if host in a["placed_hosts"]]


def _secrets_of(layer: Any) -> Mapping[str, Any]:
    secrets = layer.get("secrets") if isinstance(layer, Mapping) else None
    return secrets if isinstance(secrets, Mapping) else {}


def _without_secrets(layer: Any) -> Any:
    """The layer without its `secrets` (its values are not even looked at)."""
    return {k: v for k, v in layer.items() if k != "secrets"} if isinstance(layer, Mapping) else layer


def agent_secrets(
    agents: Iterable[Mapping[str, Any]] | None,
    name: str,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One agent's secrets, `{file name: value}`, merged over `defaults` as normalise_agent
    merges them. For the no_log task that writes the files, and nothing else."""
    for raw in agents or []:
        if isinstance(raw, Mapping) and raw.get("name") == name:
            return {**_secrets_of(defaults), **_secrets_of(raw)}
    return {}


def catalog_problems(
    agents: Any,
    groups: Mapping[str, Sequence[str]],
    defaults: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> list[str]:
    """Every catalog problem as one line each (empty when the catalog is valid)."""
    return [str(p) for p in validate_catalog(agents, groups, defaults=defaults, strict=strict)]


def unknown_agents(agents: Any, names: Iterable[str]) -> list[str]:
    """Names asked for (--agent) that the catalog does not have."""
    known = {a.get("name") for a in agents or [] if isinstance(a, Mapping)}
    return sorted(set(names) - known)


def health_spec(placed: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the agent_health module needs of each planned agent, and nothing more (no secrets)."""
    keys = ("name", "runtime", "replicas", "host_port", "health")
    return [{k: agent[k] for k in keys} for agent in placed]


def memory_promised(placed: Iterable[Mapping[str, Any]]) -> int:
    """Bytes the memory limits of the planned agents' replicas add up to (agents without a limit
    promise nothing): what the agent role checks against the host's memory."""
    return sum(agent["memory_bytes"] * agent["replicas"] for agent in placed if agent["memory_bytes"])


def with_tag(image: str, new: str) -> str:
    """`new` when it is a whole image reference, else `image` with its tag replaced by `new`."""
    if ":" in new or "/" in new:
        return new
    last = image.rsplit("/", 1)[-1]
    base = image[: len(image) - len(last)] + last.split(":", 1)[0].split("@", 1)[0]
    return f"{base}:{new}"


def env_dict(env: Iterable[str] | None) -> dict[str, str]:
    """Docker's Config.Env (["K=V", ...]) as a mapping."""
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in env or [])
