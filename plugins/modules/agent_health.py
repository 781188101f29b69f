#!/usr/bin/python
# Copyright: agentfactory contributors
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: agent_health
short_description: Report the state and health of the agentfactory agent replicas on a host
description:
  - Finds every replica of the agentfactory agents on the target host, Docker containers and
    systemd units alike, and reports its state, restarts, uptime, image, health and resource use.
  - A replica is healthy when it runs and its health endpoint
    C(http://<address>:<host_port + replica><health.path>) answers with a 2xx status. Any other
    status, a refused connection or a timeout is unhealthy.
  - "Docker replicas are the containers labelled C(agentfactory.agent=<name>) and
    C(agentfactory.replica=<i>) (named C(<name>-<i>)); systemd replicas are the units
    C(agentfactory-<name>@<i>.service)."
  - Read-only. It asks the Docker engine on its socket C(/var/run/docker.sock) with the Python
    standard library (no Docker SDK, no C(docker) command) and runs C(systemctl).
  - With O(wait_healthy=true) it polls until every desired replica is running and healthy and
    fails at O(timeout) with a message that names every replica still unhealthy and why.
version_added: 0.1.0
author:
  - agentfactory contributors
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The module never changes anything; it probes (and waits, with O(wait_healthy)) in check mode as well.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details:
      - This action does not modify state.
options:
  agents:
    description:
      - The entries of the agent catalog C(agentfactory_agents) placed on this host, as in the catalog.
      - When given, the desired number of replicas comes from here and replicas that do not exist
        are reported with RV(replicas[].state=missing). Replicas beyond O(agents[].replicas) are
        reported with RV(replicas[].desired=false) and do not count.
      - When omitted, every container labelled C(agentfactory.agent) and every unit
        C(agentfactory-*@*.service) is a desired replica. A discovered unit is probed on the port
        of C(--port N) in its C(ExecStart) or of C(AGENT_PORT) in its environment (or environment
        files), on the path of C(AGENT_HEALTH_PATH) (default C(/healthz)).
      - The catalog's other fields are accepted and ignored; C(secrets) is never logged.
    type: list
    elements: dict
    suboptions:
      name:
        description: The agent's name.
        type: str
        required: true
      runtime:
        description: How the agent runs; the catalog's default (V(docker)) when not given.
        type: str
        choices: [docker, systemd]
      replicas:
        description: Desired number of replicas; the catalog's default (1) when not given.
        type: int
      host_port:
        description:
          - First host port; replica I(i) listens on O(agents[].host_port) + I(i).
          - Without it a container's C(agentfactory.host-port) label or published port is probed.
        type: int
      port:
        description: Port inside the container (ignored; the probe uses the host port).
        type: int
      health:
        description: The health check of the agent.
        type: dict
        suboptions:
          path:
            description: HTTP path of the health endpoint; the catalog's default (V(/healthz)) when not given.
            type: str
          timeout:
            description:
              - Seconds one probe may take; the default of O(probe_timeout).
              - The catalog's default (5) when not given.
            type: float
          interval:
            description: Ignored here (used by Docker's HEALTHCHECK).
            type: float
          retries:
            description: Ignored here (used by Docker's HEALTHCHECK).
            type: int
      image:
        description: Ignored (the catalog's image).
        type: str
      image_source:
        description: Ignored (the catalog's image source).
        type: str
      image_archive:
        description: Ignored (the catalog's image archive).
        type: str
      command:
        description: Ignored (the catalog's command).
        type: list
        elements: str
      hosts:
        description: Ignored (the catalog's placement).
        type: raw
      env:
        description: Ignored (the catalog's environment).
        type: dict
      secrets:
        description: Ignored and never logged (the catalog's secrets).
        type: dict
      config:
        description: Ignored (the agent's config).
        type: dict
      metrics:
        description: Ignored (the catalog's metrics settings).
        type: dict
      resources:
        description: Ignored (the catalog's resource limits).
        type: dict
      capabilities:
        description: Ignored (the capabilities a container keeps).
        type: list
        elements: str
      update:
        description: Ignored (the catalog's update settings).
        type: dict
  names:
    description:
      - Only these agents. Names not on this host are ignored.
    type: list
    elements: str
  wait_healthy:
    description:
      - Poll until every desired replica is running and healthy.
      - Fails after O(timeout) seconds, naming each replica that is not and why.
    type: bool
    default: false
  timeout:
    description: Seconds to wait with O(wait_healthy=true).
    type: int
    default: 60
  interval:
    description: Seconds between two polls with O(wait_healthy=true).
    type: float
    default: 2
  probe_timeout:
    description:
      - Seconds one health probe may take.
      - Default the agent's O(agents[].health.timeout), or 5 seconds.
    type: float
  stats:
    description:
      - Report CPU % and memory per running replica. CPU % comes from two samples of the CPU
        time a quarter second apart, memory from the second (less the page cache, like C(docker
        stats)). A container's counters are read from its cgroup files (v1 or v2), or asked of
        the engine when those cannot be read; a unit's are C(CPUUsageNSec) and C(MemoryCurrent).
      - When systemd does not account a unit's CPU (C(CPUAccounting=no), common on cgroup v1
        hosts), its main process's CPU time from C(/proc) is sampled instead.
    type: bool
    default: true
notes:
  - Probes go to the address a replica is bound to on this host (the host IP of a container's
    published port, C(AGENT_HOST) or C(--host) of a unit; 127.0.0.1 for a replica bound to every
    address), without proxy and without following redirects.
  - Fails when an agent with runtime C(docker) is requested and the Docker engine's socket is
    missing or the engine does not answer.
seealso:
  - name: The agentfactory design
    description: The agent catalog and the labels the agent role puts on containers.
    link: https://example.invalid/agentfactory
"""

EXAMPLES = r"""
- name: Report every agent replica on the host
  agentfactory.fleet.agent_health:
  register: __health

- name: Check the catalog's agents on this host, without resource statistics
  agentfactory.fleet.agent_health:
    agents: "{{ agentfactory_agents | selectattr('name', 'in', __my_agents) }}"
    stats: false

- name: Wait up to two minutes for support-bot to be healthy after an update
  agentfactory.fleet.agent_health:
    agents: "{{ agentfactory_agents }}"
    names: [support-bot]
    wait_healthy: true
    timeout: 120
    interval: 3

- name: Show the unhealthy replicas
  ansible.builtin.debug:
    msg: "{{ __health.unhealthy }}"
  when: not __health.healthy
"""

RETURN = r"""
healthy:
  description: Whether every desired replica is running and healthy.
  returned: always
  type: bool
  sample: false
unhealthy:
  description: Names of the desired replicas that are not running and healthy.
  returned: always
  type: list
  elements: str
  sample: [support-bot-1, support-bot-2]
agents:
  description: Per agent, the count of desired, running and healthy replicas.
  returned: always
  type: dict
  sample:
    support-bot:
      runtime: docker
      desired: 3
      running: 2
      healthy: 1
      replicas: [support-bot-0, support-bot-1, support-bot-2]
      unhealthy: [support-bot-1, support-bot-2]
      extra: []
  contains:
    runtime:
      description: docker or systemd.
      type: str
      sample: docker
    desired:
      description: Number of desired replicas.
      type: int
      sample: 3
    running:
      description: Desired replicas that are running.
      type: int
      sample: 2
    healthy:
      description: Desired replicas that are running and healthy.
      type: int
      sample: 1
    replicas:
      description: Names of the desired replicas.
      type: list
      elements: str
      sample: [support-bot-0, support-bot-1, support-bot-2]
    unhealthy:
      description: Names of the desired replicas that are not running and healthy.
      type: list
      elements: str
      sample: [support-bot-1, support-bot-2]
    extra:
      description: Names of replicas found beyond the desired count (they do not count).
      type: list
      elements: str
      sample: []
replicas:
  description: One record per replica, desired ones first within each agent.
  returned: always
  type: list
  elements: dict
  contains:
    agent:
      description: The agent's name.
      type: str
      sample: support-bot
    replica:
      description: The replica's index (0-based).
      type: int
      sample: 1
    name:
      description: The container name or the unit name.
      type: str
      sample: support-bot-1
    runtime:
      description: docker or systemd.
      type: str
      sample: docker
    desired:
      description: False for a replica beyond the desired count of O(agents).
      type: bool
      sample: true
    state:
      description:
        - Docker's status (running, restarting, exited, created, paused, dead) or systemd's
          ActiveState (active, activating, failed, inactive...); missing when it does not exist.
      type: str
      sample: running
    sub_state:
      description: systemd's SubState (running, auto-restart, dead...); null for containers.
      type: str
      sample: null
    running:
      description: Whether the replica runs (Docker status running; systemd active or reloading).
      type: bool
      sample: true
    restarts:
      description: Docker's RestartCount or systemd's NRestarts; null when missing.
      type: int
      sample: 0
    exit_code:
      description: Last exit code of a replica that exited, crash-loops or failed.
      type: int
      sample: null
    started_at:
      description: When the replica (last) started, ISO 8601 in UTC.
      type: str
      sample: "2025-01-31T09:12:44+00:00"
    uptime_seconds:
      description: Seconds since it started, while it runs.
      type: int
      sample: 3605
    image:
      description: The container's image reference; null for units.
      type: str
      sample: registry.lab:5000/agents/sample:1.0
    config_hash:
      description: >-
        The fingerprint of what the replica runs: the container's agentfactory.config-hash
        label, or the unit's AGENT_CONFIG_HASH environment variable.
      type: str
      sample: 6c1f0e...
    host_port:
      description: The host port the replica listens on.
      type: int
      sample: 18081
    url:
      description: The health endpoint probed; null when no host port is known.
      type: str
      sample: http://127.0.0.1:18081/healthz
    health:
      description: healthy or unhealthy from the probe; unknown when the replica does not run or cannot be probed.
      type: str
      sample: unhealthy
    http_status:
      description: HTTP status of the probe; null when nothing answered.
      type: int
      sample: 503
    latency_ms:
      description: Milliseconds the probe took, when it got an answer.
      type: float
      sample: 2.4
    error:
      description:
        - Why the replica is not healthy, in short; null when healthy.
        - C(HTTP 503), C(connection refused), C(timed out after 5s), C(missing), C(exited (exit code 3)),
          C(restarting (4 restarts))...
      type: str
      sample: HTTP 503
    docker_health:
      description: Status of the container's own Docker HEALTHCHECK (starting, healthy, unhealthy); null without one.
      type: str
      sample: healthy
    cpu_percent:
      description: CPU use in percent of one core (may exceed 100); null when not running or O(stats=false).
      type: float
      sample: 1.25
    memory_bytes:
      description: Memory in use, in bytes; null when not running or O(stats=false).
      type: int
      sample: 41943040
"""

import os  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import datetime  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.agentfactory.fleet.plugins.module_utils import agent_health as _ah  # noqa: E402
from ansible_collections.agentfactory.fleet.plugins.module_utils import docker_api  # noqa: E402

# The clock and the pause of the module, replaced by the unit tests.
_clock = time.monotonic
_sleep = time.sleep

# Between the two CPU time samples of a replica: the cgroup and systemd counters are exact to the
# microsecond, so a quarter second gives a true figure for that window and keeps status quick.
_MIN_CPU_SAMPLE_SECONDS = 0.25
_MAX_PROBE_THREADS = 16


def _argument_spec():
    ignored = dict(
        image=dict(type="str"),
        image_source=dict(type="str"),
        image_archive=dict(type="str"),
        command=dict(type="list", elements="str"),
        hosts=dict(type="raw"),
        env=dict(type="dict"),
        secrets=dict(type="dict", no_log=True),
        config=dict(type="dict"),
        metrics=dict(type="dict"),
        resources=dict(type="dict"),
        capabilities=dict(type="list", elements="str"),
        update=dict(type="dict"),
    )
    agent = dict(
        name=dict(type="str", required=True),
        # No defaults here: module_utils applies the catalog's (module_utils/agent_defaults.py).
        runtime=dict(type="str", choices=["docker", "systemd"]),
        replicas=dict(type="int"),
        host_port=dict(type="int"),
        port=dict(type="int"),
        health=dict(
            type="dict",
            options=dict(
                path=dict(type="str"),
                timeout=dict(type="float"),
                interval=dict(type="float"),
                retries=dict(type="int"),
            ),
        ),
        **ignored,
    )
    return dict(
        agents=dict(type="list", elements="dict", options=agent),
        names=dict(type="list", elements="str"),
        wait_healthy=dict(type="bool", default=False),
        timeout=dict(type="int", default=60),
        interval=dict(type="float", default=2.0),
        probe_timeout=dict(type="float"),
        stats=dict(type="bool", default=True),
    )


def _read_text(path):
    """A small kernel file's text (/proc, /sys/fs/cgroup); None when it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read(65536)
    except OSError:
        return None


def _process_cpu_nsec(pid):
    """CPU time of a unit's main process, when systemd does not account the unit's CPU."""
    text = _read_text(f"/proc/{pid}/stat") if pid else None
    if text is None:
        return None
    try:
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return _ah._proc_cpu_nsec(text, ticks)


class _Host:
    """What the module asks the host (the Docker engine, systemctl); the answers are read in _ah."""

    def __init__(self, module, specs):
        self.module = module
        self.engine = docker_api.Engine()
        self.docker = self.engine.available()
        self.systemctl = module.get_bin_path("systemctl")
        discover = self.discover = specs is None
        docker_agents = [s["name"] for s in specs or [] if s["runtime"] == "docker"]
        systemd_agents = [s["name"] for s in specs or [] if s["runtime"] == "systemd"]
        needed = [s["name"] for s in specs or [] if s["runtime"] == "docker" and s["replicas"] > 0]
        if needed and not self.docker:
            module.fail_json(
                msg=f"the Docker engine is not running on this host (no socket {self.engine.socket_path}), "
                f"but {_ah._agents_phrase(needed, 'use')} runtime docker"
            )
        needed = [s["name"] for s in specs or [] if s["runtime"] == "systemd" and s["replicas"] > 0]
        if needed and not self.systemctl:
            module.fail_json(
                msg=f"systemctl is not available on this host, but {_ah._agents_phrase(needed, 'use')} runtime systemd"
            )
        self.use_docker = bool(self.docker) and (discover or bool(docker_agents))
        self.use_systemd = bool(self.systemctl) and (discover or bool(systemd_agents))
        self.units_sampled_at = None
        self.container_samples = {}  # container ID -> CPU nanoseconds at the first sample
        self.containers_sampled_at = None

    def _run(self, argv, what):
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            self.module.fail_json(msg=f"{what} failed (rc {rc}): {(err or out).strip()}", rc=rc, cmd=argv)
        return out

    # -- docker -------------------------------------------------------------------------------

    def containers(self, sample=False):
        """Every agent container, inspected; with `sample`, the running ones' CPU time too."""
        if not self.use_docker:
            return []
        try:
            found = self.engine.containers(_ah._LABEL_AGENT)
            # A container removed between the listing and its inspection is left out.
            items = [item for item in (self.engine.inspect(c.get("Id", "")) for c in found) if item]
        except docker_api.EngineError as exc:
            self.module.fail_json(msg=f"listing the agent containers failed: {exc}")
        containers = _ah._docker_containers(items)
        if sample:
            running = [(c["id"], c["main_pid"]) for c in containers if c["running"]]
            self.container_samples = {ident: usage[0] for ident, usage in self.container_usage(running).items()}
            self.containers_sampled_at = _clock()
        return containers

    def container_usage(self, containers):
        """{container ID: (CPU nanoseconds, memory bytes)} of [(ID, main PID)]: read from the
        container's cgroup files, which is instant; else one stats sample from the engine, which
        can wait up to a second for the engine's collector."""
        usages, ask = {}, []
        for ident, pid in containers:
            usage = _ah._cgroup_usage(_read_text(f"/proc/{pid}/cgroup"), _read_text) if pid else (None, None)
            if usage[0] is None:
                ask.append(ident)
            else:
                usages[ident] = usage

        def sample(ident):
            try:
                return _ah._container_usage(self.engine.stats(ident))
            except docker_api.EngineError:
                return None  # stopped or removed since the listing

        if ask:
            with ThreadPoolExecutor(max_workers=min(_MAX_PROBE_THREADS, len(ask))) as pool:
                usages.update((i, u) for i, u in zip(ask, pool.map(sample, ask), strict=True) if u)
        return usages

    # -- systemd ------------------------------------------------------------------------------

    def unit_names(self):
        if not self.use_systemd:
            return []
        found = set()
        for listing in (
            ["list-units", "--all", "--plain", "--no-legend", "--no-pager", "--full", "--type=service"],
            ["list-unit-files", "--no-legend", "--no-pager", "--full", "--type=service"],
        ):
            rc, out, _err = self.module.run_command([self.systemctl, *listing, _ah._UNIT_GLOB])
            if rc == 0:  # list-* exits 1 when nothing matches
                found.update(_ah._parse_unit_list(out))
        return found

    def units(self, names):
        if not names:
            return []
        names = sorted(names, key=_ah._unit_sort_key)
        out = self._run(
            [self.systemctl, "show", "--no-pager", "-p", ",".join(_ah._UNIT_PROPERTIES), *names],
            "systemctl show",
        )
        # systemd's *TimestampMonotonic are CLOCK_MONOTONIC microseconds, like time.monotonic().
        now_monotonic, now = time.monotonic(), datetime.now(_ah._UTC)
        self.units_sampled_at = _clock()
        units = []
        for props in _ah._parse_systemctl_show(out):
            files = {}  # where the replica listens (AGENT_HOST; a discovered unit's port too)
            for path in _ah._environment_files(props.get("EnvironmentFiles")):
                try:
                    with open(path.lstrip("-"), encoding="utf-8", errors="replace") as handle:
                        files[path] = handle.read(65536)
                except OSError:
                    pass
            unit = _ah._systemd_unit(props, now_monotonic, now, files)
            if unit["cpu_nsec"] is None and unit["running"]:
                unit["cpu_nsec"] = _process_cpu_nsec(unit["main_pid"])
            units.append(unit)
        return units

    def unit_stats(self, names):
        if not names or self.units_sampled_at is None:
            return {}, None
        wait = _MIN_CPU_SAMPLE_SECONDS - (_clock() - self.units_sampled_at)
        if wait > 0:
            _sleep(wait)
        rc, out, err = self.module.run_command(
            [self.systemctl, "show", "--no-pager", "-p", ",".join(_ah._UNIT_STATS_PROPERTIES), *names]
        )
        elapsed = _clock() - self.units_sampled_at
        if rc != 0:
            self.module.warn(f"systemctl show failed, no unit statistics: {err.strip()}")
            return {}, None
        return {props.get("Id"): props for props in _ah._parse_systemctl_show(out)}, elapsed


def _observe(module, host, specs, sample=False):
    """One look at every replica: state from the engine and systemctl, then the health probes."""
    params = module.params
    containers = host.containers(sample)
    unit_names = set()
    if host.use_systemd:
        unit_names = host.unit_names()
        for spec in specs or []:
            if spec["runtime"] == "systemd":
                unit_names.update(_ah._unit_name(spec["name"], i) for i in range(spec["replicas"]))
        if specs is not None:  # only the units of the catalog's systemd agents
            mine = {s["name"] for s in specs if s["runtime"] == "systemd"}
            unit_names = {u for u in unit_names if _ah._unit_sort_key(u)[0] in mine}
    units = host.units(unit_names)
    records = _ah._build_records(specs, containers, units, params["names"], params["probe_timeout"])

    to_probe = [r for r in records if r["running"] and r["url"]]
    results = {}
    if to_probe:
        workers = min(_MAX_PROBE_THREADS, len(to_probe))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {id(r): pool.submit(_ah._probe, r["url"], r["_timeout"]) for r in to_probe}
            results = {key: future.result() for key, future in futures.items()}
    for record in records:
        _ah._judge(record, results.get(id(record)))
    return records


def _add_stats(host, records):
    running = [r for r in records if r["running"]]
    containers = [r for r in running if r["runtime"] == "docker"]
    if containers and host.containers_sampled_at is not None:
        wait = _MIN_CPU_SAMPLE_SECONDS - (_clock() - host.containers_sampled_at)
        if wait > 0:
            _sleep(wait)
        usages = host.container_usage([(r["_id"], r["_main_pid"]) for r in containers])
        elapsed = _clock() - host.containers_sampled_at
        for record in containers:
            if record["_id"] in usages:
                after, record["memory_bytes"] = usages[record["_id"]]
                record["cpu_percent"] = _ah._cpu_percent(host.container_samples.get(record["_id"]), after, elapsed)
    units = [r for r in running if r["runtime"] == "systemd"]
    if units and host.use_systemd:
        samples, elapsed = host.unit_stats([r["name"] for r in units])
        for record in units:
            props = samples.get(record["name"])
            if props is None:
                record["memory_bytes"] = record["_memory_bytes"]
                continue
            after = _ah._uint(props.get("CPUUsageNSec"))
            pid = _ah._uint(props.get("MainPID"))
            if after is None and pid and pid == record["_main_pid"]:
                after = _process_cpu_nsec(pid)
            record["cpu_percent"] = _ah._cpu_percent(record["_cpu_nsec"], after, elapsed)
            memory = _ah._uint(props.get("MemoryCurrent"))
            record["memory_bytes"] = memory if memory is not None else record["_memory_bytes"]


def main():
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    params = module.params

    problems = []
    if params["timeout"] < 0:
        problems.append("timeout must be >= 0 seconds")
    if params["interval"] <= 0:
        problems.append("interval must be > 0 seconds")
    if params["probe_timeout"] is not None and params["probe_timeout"] <= 0:
        problems.append("probe_timeout must be > 0 seconds")
    specs = None
    if params["agents"] is not None:
        try:
            specs = _ah._agent_specs(params["agents"], params["names"], params["probe_timeout"])
        except _ah._AgentHealthError as exc:
            problems.append(str(exc))
    if problems:
        module.fail_json(msg="; ".join(problems))

    host = _Host(module, specs)
    deadline = _clock() + params["timeout"]
    timed_out = False
    while True:
        records = _observe(module, host, specs, sample=params["stats"])
        agents, healthy, unhealthy = _ah._summarise(records, specs)
        if not params["wait_healthy"] or healthy:
            break
        remaining = deadline - _clock()
        if remaining <= 0:
            timed_out = True
            break
        _sleep(min(params["interval"], remaining))

    if params["stats"]:
        _add_stats(host, records)

    result = dict(
        changed=False,
        healthy=healthy,
        unhealthy=unhealthy,
        agents=agents,
        replicas=[_ah._public(r) for r in records],
    )
    if timed_out:
        module.fail_json(msg=_ah._failure_message(records, params["timeout"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
