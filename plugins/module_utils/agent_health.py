# Copyright: agentfactory contributors
# Apache License 2.0 (see galaxy.yml)
"""Pure helpers of the agentfactory.fleet.agent_health module.

Everything here is a plain function over text or dicts (read the Docker engine's container
and stats answers and ``systemctl show`` output, build one record per replica, decide health,
word the failure), so it can be unit tested without a host. The one exception is ``_probe``: a
single HTTP GET to the address and port a replica of this host listens on. The module itself
asks the engine and systemctl, and runs the loop.
"""

from __future__ import annotations

import http.client
import re
import shlex
import socket
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from ansible_collections.agentfactory.fleet.plugins.module_utils.agent_defaults import BUILTIN_DEFAULTS, LABELS

# The contract with the agent role: container labels, unit names, defaults of the catalog.
_LABEL_AGENT = LABELS["agent"]
_LABEL_REPLICA = LABELS["replica"]
_LABEL_CONFIG_HASH = LABELS["config_hash"]
_LABEL_IMAGE = LABELS["image"]
_LABEL_HOST_PORT = LABELS["host_port"]
_LABEL_HEALTH_PATH = LABELS["health_path"]

_RUNTIMES = ("docker", "systemd")
_DEFAULT_REPLICAS = BUILTIN_DEFAULTS["replicas"]
_DEFAULT_RUNTIME = BUILTIN_DEFAULTS["runtime"]
_DEFAULT_HEALTH_PATH = BUILTIN_DEFAULTS["health"]["path"]
# A replica listening on every address is probed on loopback.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
_DEFAULT_PROBE_TIMEOUT = float(BUILTIN_DEFAULTS["health"]["timeout"])

_UNIT_GLOB = "agentfactory-*@*.service"
_UNIT_RE = re.compile(r"^agentfactory-(?P<agent>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)@(?P<replica>[0-9]+)\.service$")
# `systemctl show -p ...`: one call for every unit of the host.
_UNIT_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "ExecMainStartTimestampMonotonic",
    "ActiveEnterTimestampMonotonic",
    "ExecMainStatus",
    "MainPID",
    "CPUUsageNSec",
    "MemoryCurrent",
    "Environment",
    "EnvironmentFiles",
    "ExecStart",
)
_UNIT_STATS_PROPERTIES = ("Id", "MainPID", "CPUUsageNSec", "MemoryCurrent")
_UINT64_MAX = 2**64 - 1  # systemd's "not available" for counters

_RUNNING_DOCKER = ("running",)
_RUNNING_SYSTEMD = ("active", "reloading")

# Keys of one replica record, in the order the module documents them.
_RECORD_KEYS = (
    "agent",
    "replica",
    "name",
    "runtime",
    "desired",
    "state",
    "sub_state",
    "running",
    "restarts",
    "exit_code",
    "started_at",
    "uptime_seconds",
    "image",
    "config_hash",
    "host_port",
    "url",
    "health",
    "http_status",
    "latency_ms",
    "error",
    "docker_health",
    "cpu_percent",
    "memory_bytes",
)

_TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?$")


_UTC = timezone.utc  # noqa: UP017 - the module also runs on hosts with Python < 3.11


class _AgentHealthError(Exception):
    """Arguments or host output that the module cannot work with; the message is for the user."""


# --------------------------------------------------------------------------------------------
# Small conversions


def _int(value):
    """An int from an int or a decimal string; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^\s*-?[0-9]+\s*$", value):
        return int(value)
    return None


def _uint(value):
    """A systemd counter: None when unset ('[not set]', '', or UINT64_MAX)."""
    number = _int(value)
    if number is None or number < 0 or number >= _UINT64_MAX:
        return None
    return number


def _parse_time(text):
    """An aware UTC datetime from Docker's RFC 3339 time (nanoseconds allowed); None for the zero time."""
    if not text:
        return None
    match = _TIME_RE.match(str(text).strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if year <= 1:  # Go's zero time: never started
        return None
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    offset = match.group(8) or "Z"
    if offset == "Z":
        tz = _UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).astimezone(_UTC)


def _iso(moment):
    return moment.astimezone(_UTC).isoformat(timespec="seconds") if moment else None


def _seconds_between(start, now):
    if start is None or now is None:
        return None
    return max(0, int((now - start).total_seconds()))


def _cpu_percent(before_nsec, after_nsec, elapsed_seconds):
    """CPU % of one core between two CPUUsageNSec samples (like `docker stats`: may exceed 100)."""
    if before_nsec is None or after_nsec is None or not elapsed_seconds or elapsed_seconds <= 0:
        return None
    if after_nsec < before_nsec:  # the unit restarted between the samples
        return None
    return round((after_nsec - before_nsec) / (elapsed_seconds * 1e9) * 100.0, 2)


def _proc_cpu_nsec(stat_text, ticks_per_second):
    """CPU time (user + system, ns) of a process from /proc/<pid>/stat; None if unreadable.

    The fallback for units when systemd's CPU accounting is off (CPUUsageNSec not set).
    """
    if not stat_text or not ticks_per_second:
        return None
    fields = stat_text.rpartition(")")[2].split()  # after "pid (comm)", comm may hold spaces
    if len(fields) < 13:
        return None
    utime, stime = _int(fields[11]), _int(fields[12])
    if utime is None or stime is None:
        return None
    return (utime + stime) * 1_000_000_000 // ticks_per_second


def _unit_name(agent, replica):
    return f"agentfactory-{agent}@{replica}.service"


def _container_name(agent, replica):
    return f"{agent}-{replica}"


def _probe_url(host_port, path, address=None):
    """The health URL of a replica listening on `address` (an IP of this host; a wildcard or
    nothing means loopback) and `host_port`."""
    if not host_port:
        return None
    path = path or _DEFAULT_HEALTH_PATH
    if not path.startswith("/"):
        path = "/" + path
    address = _WILDCARDS.get(address or "", address)
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{host_port}{path}"


# --------------------------------------------------------------------------------------------
# Arguments


def _agent_specs(agents, names=None, probe_timeout=None):
    """What to look for, from the catalog entries placed on this host (filtered by ``names``).

    One dict per agent: name, runtime, replicas, host_port, health_path, probe_timeout.
    Raises _AgentHealthError with every problem found.
    """
    wanted = set(names) if names else None
    specs, seen, problems = [], set(), []
    for position, entry in enumerate(agents or [], start=1):
        if not isinstance(entry, dict):
            problems.append(f"agents[{position}] must be a mapping")
            continue
        name = entry.get("name")
        if not name or not isinstance(name, str):
            problems.append(f"agents[{position}] has no name")
            continue
        if name in seen:
            problems.append(f"agent '{name}' is listed twice")
            continue
        seen.add(name)
        runtime = entry.get("runtime") or _DEFAULT_RUNTIME
        replicas = entry.get("replicas")
        replicas = _DEFAULT_REPLICAS if replicas is None else _int(replicas)
        host_port = entry.get("host_port")
        host_port = None if host_port is None else _int(host_port)
        health = entry.get("health") or {}
        path = health.get("path") or _DEFAULT_HEALTH_PATH
        timeout = probe_timeout if probe_timeout is not None else health.get("timeout")
        timeout = _DEFAULT_PROBE_TIMEOUT if timeout is None else timeout
        if runtime not in _RUNTIMES:
            problems.append(f"agent '{name}': runtime must be docker or systemd, not {runtime!r}")
        if replicas is None or replicas < 0:
            problems.append(f"agent '{name}': replicas must be an integer >= 0")
        elif host_port is not None and not (host_port >= 1 and host_port + max(replicas, 1) - 1 <= 65535):
            problems.append(f"agent '{name}': host_port {host_port} (+ replicas) must stay within 1-65535")
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(f"agent '{name}': health.path must start with '/'")
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            timeout = -1.0
        if timeout <= 0:
            problems.append(f"agent '{name}': health.timeout must be a number of seconds > 0")
        if wanted is not None and name not in wanted:
            continue
        specs.append(
            {
                "name": name,
                "runtime": runtime,
                "replicas": replicas,
                "host_port": host_port,
                "health_path": path,
                "probe_timeout": timeout,
            }
        )
    if problems:
        raise _AgentHealthError("; ".join(problems))
    return specs


# --------------------------------------------------------------------------------------------
# Docker


def _parse_lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _docker_containers(items, now=None):
    """The containers of the engine's inspect answers (GET /containers/{id}/json), each flat."""
    now = now or datetime.now(_UTC)
    return [_docker_container(item, now) for item in items or [] if isinstance(item, dict)]


def _published(container):
    """(host address, host port) of the first port a container publishes (running:
    NetworkSettings; else HostConfig); (None, None) when it publishes none."""
    for ports in (
        (container.get("NetworkSettings") or {}).get("Ports"),
        (container.get("HostConfig") or {}).get("PortBindings"),
    ):
        for key in sorted(ports or {}):
            for binding in ports[key] or []:
                port = _int((binding or {}).get("HostPort"))
                if port:
                    return (binding.get("HostIp") or None), port
    return None, None


def _docker_container(item, now):
    config = item.get("Config") or {}
    labels = config.get("Labels") or {}
    state = item.get("State") or {}
    name = (item.get("Name") or "").lstrip("/")
    agent = labels.get(_LABEL_AGENT)
    replica = _int(labels.get(_LABEL_REPLICA))
    if replica is None and agent and name.startswith(agent + "-"):
        replica = _int(name[len(agent) + 1 :])
    status = state.get("Status") or "unknown"
    running = status in _RUNNING_DOCKER
    started = _parse_time(state.get("StartedAt"))
    exit_code = None
    if status in ("exited", "dead", "restarting"):
        exit_code = _int(state.get("ExitCode"))
    published_address, published_port = _published(item)
    return {
        "id": item.get("Id"),
        "name": name,
        "agent": agent,
        "replica": replica,
        "state": status,
        "running": running,
        "restarts": _int(item.get("RestartCount")) or 0,
        "exit_code": exit_code,
        "started_at": _iso(started),
        "uptime_seconds": _seconds_between(started, now) if running else None,
        "image": config.get("Image") or labels.get(_LABEL_IMAGE),
        "config_hash": labels.get(_LABEL_CONFIG_HASH),
        "host_port": _int(labels.get(_LABEL_HOST_PORT)) or published_port,
        "address": published_address,
        "health_path": labels.get(_LABEL_HEALTH_PATH),
        "docker_health": (state.get("Health") or {}).get("Status"),
        "state_error": state.get("Error") or None,
        "main_pid": _int(state.get("Pid")) or None,
    }


def _cgroup_usage(proc_cgroup, read, root="/sys/fs/cgroup"):
    """(CPU nanoseconds so far, memory bytes) of a process's cgroup, from its counter files.

    `proc_cgroup`: the text of /proc/<pid>/cgroup; `read(path)`: a file's text, or None. cgroup
    v1 (cpuacct and memory controllers) and v2 (the unified hierarchy) alike; memory less the
    inactive page cache, like `docker stats`. (None, None) when the files cannot be read.
    """
    paths = {}
    for line in (proc_cgroup or "").splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    if "cpuacct" in paths and "memory" in paths:
        cpu = _int(read(f"{root}/cpuacct{paths['cpuacct']}/cpuacct.usage"))
        memory_dir, usage_file, cache_key = (
            f"{root}/memory{paths['memory']}",
            "memory.usage_in_bytes",
            "total_inactive_file",
        )
    elif "" in paths:
        base = f"{root}{paths['']}"
        usec = _int(_stat_value(read(f"{base}/cpu.stat"), "usage_usec"))
        cpu = usec * 1000 if usec is not None else None
        memory_dir, usage_file, cache_key = base, "memory.current", "inactive_file"
    else:
        return None, None
    memory = _uint(read(f"{memory_dir}/{usage_file}"))
    cache = _uint(_stat_value(read(f"{memory_dir}/memory.stat"), cache_key))
    if memory is not None and cache is not None and cache < memory:
        memory -= cache
    return (cpu if cpu is not None and cpu >= 0 else None), memory


def _stat_value(text, key):
    """The value of `key` in a cgroup stat file ("key value" lines), as text; None if absent."""
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return value.strip()
    return None


def _container_usage(sample):
    """(CPU nanoseconds so far, memory bytes) of one stats sample (GET /containers/{id}/stats).

    Memory as `docker stats` shows it: the cgroup's usage less its inactive page cache
    (``inactive_file`` on cgroup v2, ``total_inactive_file`` on v1).
    """
    sample = sample if isinstance(sample, dict) else {}
    cpu = _uint(((sample.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage"))
    memory_stats = sample.get("memory_stats") or {}
    memory = _uint(memory_stats.get("usage"))
    if memory is not None:
        counters = memory_stats.get("stats") or {}
        cache = _uint(counters.get("inactive_file", counters.get("total_inactive_file")))
        if cache is not None and cache < memory:
            memory -= cache
    return cpu, memory


# --------------------------------------------------------------------------------------------
# systemd


def _parse_unit_list(text):
    """Unit names from `systemctl list-units --plain --no-legend` (or list-unit-files) output."""
    units = set()
    for line in _parse_lines(text):
        for token in line.split():
            if _UNIT_RE.match(token):
                units.add(token)
                break
    return sorted(units, key=_unit_sort_key)


def _unit_sort_key(unit):
    match = _UNIT_RE.match(unit)
    return (match.group("agent"), int(match.group("replica"))) if match else (unit, -1)


def _parse_systemctl_show(text):
    """`systemctl show -p ... UNIT...`: one dict per unit (blank-line separated blocks).

    A property printed on several lines (EnvironmentFiles, ExecStart) keeps every value, joined
    with newlines.
    """
    units, current = [], {}
    for line in (text or "").splitlines():
        if not line.strip():
            if current:
                units.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        current[key] = current[key] + "\n" + value if key in current else value
    if current:
        units.append(current)
    return units


def _parse_environment(text):
    """systemd's Environment property ('A=1 "B=two words"') as a dict."""
    env = {}
    for line in (text or "").splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        for word in words:
            key, sep, value = word.partition("=")
            if sep and key:
                env[key] = value
    return env


def _parse_env_file(text):
    """An EnvironmentFile= (KEY=VALUE lines, # comments, optional quotes) as a dict."""
    env = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if sep and key.strip():
            env[key.strip()] = value
    return env


def _environment_files(text):
    """Paths of the EnvironmentFiles property ('/etc/x.env (ignore_errors=no)', one per line)."""
    paths = []
    for line in (text or "").splitlines():
        path = re.sub(r"\s*\(ignore_errors=\w+\)\s*$", "", line.strip())
        if path:
            paths.append(path)
    return paths


def _exec_start_argv(text):
    """The argv of the first ExecStart= ('{ path=... ; argv[]=/usr/bin/x --port 1 ; ... }')."""
    match = re.search(r"argv\[\]=(.*?)\s;", text or "")
    return match.group(1).split() if match else []


def _flag_value(argv, flag):
    for index, word in enumerate(argv):
        if word == flag and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(flag + "="):
            return word[len(flag) + 1 :]
    return None


def _unit_hints(props, env_files=None):
    """(address, port, health path) a discovered unit's agent listens on, from its ExecStart and
    environment.

    A unit tells its port through `--port N` in ExecStart, or AGENT_PORT in Environment= or an
    EnvironmentFile= (the reference agent's contract), its address through `--host` or
    AGENT_HOST, the health path through AGENT_HEALTH_PATH.
    """
    env = _parse_environment(props.get("Environment"))
    for path in _environment_files(props.get("EnvironmentFiles")):
        env.update(_parse_env_file((env_files or {}).get(path)))
    argv = _exec_start_argv(props.get("ExecStart"))
    port = _int(_flag_value(argv, "--port")) or _int(env.get("AGENT_PORT"))
    address = _flag_value(argv, "--host") or env.get("AGENT_HOST") or None
    return address, port, env.get("AGENT_HEALTH_PATH") or None


def _systemd_unit(props, now_monotonic, now, env_files=None):
    """One unit of `systemctl show` as a flat dict (timestamps from the monotonic clock)."""
    unit = props.get("Id") or ""
    match = _UNIT_RE.match(unit)
    load = props.get("LoadState") or ""
    active = props.get("ActiveState") or "unknown"
    if load == "not-found":
        state = "missing"
    elif load in ("masked", "bad-setting", "error"):
        state = load
    else:
        state = active
    running = state in _RUNNING_SYSTEMD
    started = None
    start_usec = _uint(props.get("ExecMainStartTimestampMonotonic")) or _uint(
        props.get("ActiveEnterTimestampMonotonic")
    )
    if start_usec and now_monotonic is not None and now is not None:
        started = now - timedelta(seconds=max(0.0, now_monotonic - start_usec / 1e6))
    sub_state = props.get("SubState") or None
    exit_code = None
    if state == "failed" or (state == "activating" and sub_state == "auto-restart"):
        exit_code = _int(props.get("ExecMainStatus"))
    address, port, health_path = _unit_hints(props, env_files)
    return {
        # The agent role names each replica's release in its drop-in (Environment=).
        "config_hash": _parse_environment(props.get("Environment")).get("AGENT_CONFIG_HASH") or None,
        "id": unit,
        "name": unit,
        "agent": match.group("agent") if match else None,
        "replica": int(match.group("replica")) if match else None,
        "state": state,
        "sub_state": sub_state,
        "running": running,
        "restarts": _uint(props.get("NRestarts")) or 0,
        "exit_code": exit_code,
        "started_at": _iso(started),
        "uptime_seconds": _seconds_between(started, now) if running else None,
        "host_port": port,
        "address": address,
        "health_path": health_path,
        "result": props.get("Result") or None,
        "cpu_nsec": _uint(props.get("CPUUsageNSec")),
        "main_pid": _uint(props.get("MainPID")) or None,
        "memory_bytes": _uint(props.get("MemoryCurrent")),
    }


# --------------------------------------------------------------------------------------------
# Records: one per replica


def _empty_record(agent, replica, runtime, name, desired=True):
    record = dict.fromkeys(_RECORD_KEYS)
    record.update(
        agent=agent,
        replica=replica,
        name=name,
        runtime=runtime,
        desired=desired,
        state="missing",
        running=False,
        health="unknown",
    )
    return record


def _record_from(found, runtime, desired, spec=None, probe_timeout=None):
    """A replica record from a parsed container or unit (plus private keys the module uses)."""
    record = _empty_record(found["agent"], found["replica"], runtime, found["name"], desired)
    for key in (
        "state",
        "sub_state",
        "running",
        "restarts",
        "exit_code",
        "started_at",
        "uptime_seconds",
        "image",
        "config_hash",
        "docker_health",
    ):
        if key in found:
            record[key] = found[key]
    host_port, path = found.get("host_port"), found.get("health_path")
    timeout = probe_timeout
    if spec is not None:
        if spec["host_port"] and found["replica"] is not None:
            host_port = spec["host_port"] + found["replica"]
        path = spec["health_path"]
        timeout = spec["probe_timeout"]
    record["host_port"] = host_port
    record["url"] = _probe_url(host_port, path, found.get("address"))
    record["_id"] = found.get("id")
    record["_timeout"] = timeout if timeout is not None else _DEFAULT_PROBE_TIMEOUT
    record["_cpu_nsec"] = found.get("cpu_nsec")
    record["_main_pid"] = found.get("main_pid")
    record["_memory_bytes"] = found.get("memory_bytes")
    record["_state_error"] = found.get("state_error") or found.get("result")
    return record


def _missing_record(spec, replica):
    runtime = spec["runtime"]
    name = _unit_name(spec["name"], replica) if runtime == "systemd" else _container_name(spec["name"], replica)
    record = _empty_record(spec["name"], replica, runtime, name)
    if spec["host_port"]:
        record["host_port"] = spec["host_port"] + replica
    record["_timeout"] = spec["probe_timeout"]
    return record


def _pick(candidates, preferred_name):
    """The container/unit that is replica i, and the others (duplicates of the same replica)."""
    ordered = sorted(
        candidates,
        key=lambda c: (c["name"] != preferred_name, not c["running"], c["name"]),
    )
    return ordered[0], ordered[1:]


def _build_records(specs, containers, units, names=None, probe_timeout=None):
    """One record per replica.

    With ``specs`` (the catalog), every desired replica gets a record (``missing`` when absent)
    and other replicas found for those agents are ``desired: false``. Without, every container
    and unit found is a desired replica (``names`` filters the agents).
    """
    records = []
    found_by_runtime = {
        "docker": [c for c in containers if c.get("agent")],
        "systemd": [u for u in units if u.get("agent")],
    }
    if specs is None:
        wanted = set(names) if names else None
        for runtime, items in found_by_runtime.items():
            for item in items:
                if wanted is None or item["agent"] in wanted:
                    records.append(_record_from(item, runtime, True, probe_timeout=probe_timeout))
        records.sort(key=lambda r: (r["agent"], r["replica"] if r["replica"] is not None else -1, r["name"]))
        return records

    for spec in specs:
        runtime = spec["runtime"]
        mine = [item for item in found_by_runtime[runtime] if item["agent"] == spec["name"]]
        used = set()
        for replica in range(spec["replicas"]):
            candidates = [item for item in mine if item["replica"] == replica]
            if not candidates:
                records.append(_missing_record(spec, replica))
                continue
            preferred = (_unit_name if runtime == "systemd" else _container_name)(spec["name"], replica)
            chosen, _others = _pick(candidates, preferred)
            used.add(id(chosen))
            if runtime == "systemd" and chosen["state"] == "missing":
                records.append(_missing_record(spec, replica))
            else:
                records.append(_record_from(chosen, runtime, True, spec))
        for item in sorted(mine, key=lambda i: (i["replica"] if i["replica"] is not None else -1, i["name"])):
            if id(item) in used or (runtime == "systemd" and item["state"] == "missing"):
                continue
            records.append(_record_from(item, runtime, False, spec))
    return records


def _state_text(record):
    """Why a replica that is not running is not healthy: 'missing', 'exited (exit code 3)'..."""
    state = record["state"]
    if state == "missing":
        return "missing"
    details = []
    if record.get("sub_state") and record["sub_state"] not in (state, "dead"):
        details.append(record["sub_state"])
    if record.get("exit_code") is not None and state not in ("created",):
        details.append(f"exit code {record['exit_code']}")
    if record.get("restarts"):
        restarts = record["restarts"]
        details.append(f"{restarts} restart{'' if restarts == 1 else 's'}")
    if state == "created":
        details.insert(0, "never started")
    if record.get("_state_error") and record["_state_error"] not in ("success", "exit-code"):
        details.append(str(record["_state_error"])[:120])
    return f"{state} ({', '.join(details)})" if details else state


def _judge(record, probe=None):
    """Fill health, http_status, latency_ms and error from the state and the probe's answer."""
    record["http_status"] = None
    record["latency_ms"] = None
    if not record["running"]:
        record["health"] = "unknown"
        record["error"] = _state_text(record)
    elif not record.get("url"):
        record["health"] = "unknown"
        record["error"] = "no host port known to probe"
    elif probe is None:
        record["health"] = "unknown"
        record["error"] = "not probed"
    else:
        record["http_status"] = probe.get("http_status")
        record["latency_ms"] = probe.get("latency_ms")
        record["health"] = "healthy" if probe.get("ok") else "unhealthy"
        record["error"] = None if probe.get("ok") else probe.get("error") or "unhealthy"
    return record


def _problem(record):
    """The phrase that follows the replica's name in the failure message."""
    if record["running"] and record["health"] == "unhealthy":
        return f"unhealthy ({record['error']})"
    if record["running"]:
        return f"health unknown ({record['error']})"
    return record["error"] or _state_text(record)


def _summarise(records, specs=None):
    """(agents summary, every desired replica running and healthy, names of the others)."""
    agents = {}

    def entry(name, runtime):
        return agents.setdefault(
            name,
            {
                "runtime": runtime,
                "desired": 0,
                "running": 0,
                "healthy": 0,
                "replicas": [],
                "unhealthy": [],
                "extra": [],
            },
        )

    for spec in specs or []:
        entry(spec["name"], spec["runtime"])
    unhealthy = []
    for record in records:
        summary = entry(record["agent"], record["runtime"])
        if not record["desired"]:
            summary["extra"].append(record["name"])
            continue
        summary["desired"] += 1
        summary["replicas"].append(record["name"])
        if record["running"]:
            summary["running"] += 1
        if record["running"] and record["health"] == "healthy":
            summary["healthy"] += 1
        else:
            summary["unhealthy"].append(record["name"])
            unhealthy.append(record["name"])
    return agents, not unhealthy, unhealthy


def _failure_message(records, timeout):
    """The message of a failed wait, one clause per agent.

    "agent 'a' not healthy after 60s: a-1 unhealthy (HTTP 503), a-2 missing; agent 'b' ..."
    """
    problems = {}
    for record in records:
        if record["desired"] and not (record["running"] and record["health"] == "healthy"):
            problems.setdefault(record["agent"], []).append(f"{record['name']} {_problem(record)}")
    if not problems:
        return ""
    return "; ".join(
        f"agent '{agent}' not healthy after {timeout}s: {', '.join(items)}" for agent, items in problems.items()
    )


def _public(record):
    """The record without the module's private keys."""
    return {key: record.get(key) for key in _RECORD_KEYS}


# --------------------------------------------------------------------------------------------
# The HTTP probe (the one piece of I/O here): GET http://127.0.0.1:<port><path>, with the
# standard library's http.client: nothing between the probe and the agent (no proxy from the
# environment, no redirect), and the latency is the request's own.


def _reason_text(reason, timeout):
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, http.client.RemoteDisconnected):  # before ConnectionResetError, its base
        return "connection closed without a response"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    if isinstance(reason, http.client.HTTPException):
        return f"bad HTTP answer ({type(reason).__name__})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    text = str(reason).strip()
    if "timed out" in text:
        return f"timed out after {timeout:g}s"
    return (text or type(reason).__name__)[:120]


def _probe(url, timeout):
    """GET ``url`` (plain HTTP, no proxy, no redirects): {ok, http_status, latency_ms, error}. 2xx is ok."""
    parts = urlsplit(url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    started = time.monotonic()
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", target, headers={"User-Agent": "agentfactory-agent_health", "Connection": "close"})
        response = connection.getresponse()
        status = response.status
        response.read(65536)
    except (http.client.HTTPException, OSError) as exc:
        return {"ok": False, "http_status": None, "latency_ms": None, "error": _reason_text(exc, timeout)}
    finally:
        connection.close()
    latency = round((time.monotonic() - started) * 1000.0, 1)
    ok = 200 <= status < 300
    return {"ok": ok, "http_status": status, "latency_ms": latency, "error": None if ok else f"HTTP {status}"}


def _agents_phrase(names, verb):
    """Names with a verb that agrees (given in the plural): agent 'a' uses / agents 'a', 'b' use."""
    quoted = ", ".join(f"'{name}'" for name in names)
    if len(names) == 1:
        return f"agent {quoted} {verb}s"
    return f"agents {quoted} {verb}"
