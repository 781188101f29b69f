"""The agent_health module: its pure helpers (module_utils) and main() with a fake host.

main() runs with a fake Docker engine and a patched run_command (the engine's and systemctl's
answers from the fixtures below), a patched probe, and exit_json / fail_json that raise. The
real probe is tested against a small HTTP server on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[2]


def _collections_dir() -> Path:
    """A directory holding ansible_collections/agentfactory/fleet -> the project root."""
    linked = ROOT / ".ansible" / "collections"
    if (linked / "ansible_collections" / "agentfactory" / "fleet" / "plugins" / "modules").is_dir():
        return linked
    tmp = Path(tempfile.mkdtemp(prefix="af-collections-"))
    (tmp / "ansible_collections" / "agentfactory").mkdir(parents=True)
    (tmp / "ansible_collections" / "agentfactory" / "fleet").symlink_to(ROOT)
    return tmp


sys.path.insert(0, str(_collections_dir()))

from ansible_collections.agentfactory.fleet.plugins.module_utils import agent_health as ah  # noqa: E402
from ansible_collections.agentfactory.fleet.plugins.module_utils import docker_api  # noqa: E402
from ansible_collections.agentfactory.fleet.plugins.modules import agent_health as mod  # noqa: E402

_REAL_EXIT_JSON = basic.AnsibleModule.exit_json
_REAL_FAIL_JSON = basic.AnsibleModule.fail_json

UTC = timezone.utc  # noqa: UP017 - the same spelling as the module
NOW = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Fixtures: what the Docker engine answers and systemctl prints


def container(
    name,
    agent,
    replica,
    status="running",
    *,
    port=None,
    restarts=0,
    exit_code=0,
    started=None,
    health=None,
    labels=None,
    published=None,
    bound="0.0.0.0",
):
    """A container as the engine describes it (GET /containers/{id}/json), following the agent
    role's contract."""
    all_labels = {
        "agentfactory.agent": agent,
        "agentfactory.replica": str(replica),
        "agentfactory.config-hash": "c0ffee" * 10 + "beef",
        "agentfactory.image": "agentfactory/reference-agent:1.0.0",
        "agentfactory.health-path": "/healthz",
    }
    if port is not None:
        all_labels["agentfactory.host-port"] = str(port)
    all_labels.update(labels or {})
    state = {
        "Status": status,
        "Running": status in ("running", "restarting", "paused"),
        "Restarting": status == "restarting",
        "ExitCode": exit_code,
        "Error": "",
        "StartedAt": started or "2025-01-31T11:00:00.123456789Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    ports = {"8080/tcp": [{"HostIp": bound, "HostPort": str(published)}]} if published else {}
    return {
        "Id": (name.replace("-", "") + "0" * 64)[:64],
        "Name": "/" + name,
        "RestartCount": restarts,
        "State": state,
        "Config": {"Image": "agentfactory/reference-agent:1.0.0", "Labels": all_labels},
        "HostConfig": {"PortBindings": ports},
        "NetworkSettings": {"Ports": ports if status == "running" else {}},
    }


FLEET = [
    container("good-0", "good", 0, port=18080, health="healthy"),
    container("good-1", "good", 1, port=18081),
    container("sick-0", "sick", 0, port=18090),
    container("stopped-0", "stopped", 0, "exited", port=18100, started="2025-01-31T10:00:00Z"),
    container("crashy-0", "crashy", 0, "restarting", port=18110, restarts=7, exit_code=3),
]


def sample(cpu_nsec, usage, inactive_file=0):
    """One stats sample (GET /containers/{id}/stats?one-shot=true) with the fields read."""
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": cpu_nsec}},
        "memory_stats": {"usage": usage, "stats": {"inactive_file": inactive_file}},
    }


# Two samples per running container, a quarter second apart: CPU % = the CPU time between them.
STATS = {
    FLEET[0]["Id"]: [sample(10_000_000_000, 24 * 1024**2), sample(10_002_500_000, 24 * 1024**2, 4 * 1024**2)],
    FLEET[1]["Id"]: [sample(1_000_000, int(1.5 * 1024**3)), sample(7_250_000, int(1.5 * 1024**3))],
    FLEET[2]["Id"]: [sample(5, 800_000), sample(5, 800_000)],
}


def unit_show(
    unit,
    *,
    load="loaded",
    active="active",
    sub="running",
    restarts=0,
    start_usec=1_000_000_000,
    cpu="5000000000",
    memory="41943040",
    environment="",
    env_files="",
    exec_start="",
    status=0,
    result="success",
):
    return "\n".join(
        [
            f"Id={unit}",
            f"LoadState={load}",
            f"ActiveState={active}",
            f"SubState={sub}",
            f"Result={result}",
            f"NRestarts={restarts}",
            f"ExecMainStartTimestampMonotonic={start_usec}",
            f"ActiveEnterTimestampMonotonic={start_usec}",
            f"ExecMainStatus={status}",
            f"CPUUsageNSec={cpu}",
            f"MemoryCurrent={memory}",
            f"Environment={environment}",
            f"EnvironmentFiles={env_files}",
            f"ExecStart={exec_start}",
        ]
    )


SYSAGENT_EXEC = (
    "{ path=/usr/bin/python3 ; argv[]=/usr/bin/python3 /opt/agentfactory/sysagent/agent.py --port 19100 ; "
    "ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
)


# --------------------------------------------------------------------------------------------
# Counters and times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T11:00:00.123456789Z", datetime(2025, 1, 31, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2025-01-31T11:00:00Z", datetime(2025, 1, 31, 11, 0, 0, tzinfo=UTC)),
        ("2025-01-31T13:00:00.5+02:00", datetime(2025, 1, 31, 11, 0, 0, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_parse_time(text, expected):
    assert ah._parse_time(text) == expected


def test_cpu_percent_from_two_samples():
    assert ah._cpu_percent(1_000_000_000, 1_500_000_000, 1.0) == 50.0
    assert ah._cpu_percent(0, 3_000_000_000, 1.0) == 300.0  # three cores busy
    assert ah._cpu_percent(None, 5, 1.0) is None
    assert ah._cpu_percent(10, 5, 1.0) is None  # restarted between the samples
    assert ah._cpu_percent(1, 5, 0) is None


# --------------------------------------------------------------------------------------------
# docker


def test_docker_containers_follow_the_contract():
    parsed = {c["name"]: c for c in ah._docker_containers(FLEET, now=NOW)}
    good = parsed["good-0"]
    assert good["agent"] == "good"
    assert good["replica"] == 0
    assert good["state"] == "running"
    assert good["running"] is True
    assert good["started_at"] == "2025-01-31T11:00:00+00:00"
    assert good["uptime_seconds"] == 3599  # 11:00:00.12 to 12:00:00
    assert good["host_port"] == 18080
    assert good["health_path"] == "/healthz"
    assert good["image"] == "agentfactory/reference-agent:1.0.0"
    assert good["config_hash"].startswith("c0ffee")
    assert good["docker_health"] == "healthy"
    assert good["exit_code"] is None

    stopped = parsed["stopped-0"]
    assert (stopped["state"], stopped["running"], stopped["exit_code"]) == ("exited", False, 0)
    assert stopped["uptime_seconds"] is None
    assert stopped["started_at"] == "2025-01-31T10:00:00+00:00"

    crashy = parsed["crashy-0"]
    assert (crashy["state"], crashy["running"], crashy["restarts"], crashy["exit_code"]) == ("restarting", False, 7, 3)


def test_docker_containers_fall_back_to_name_and_published_port():
    item = container("legacy-3", "legacy", 3, published=28080)
    del item["Config"]["Labels"]["agentfactory.replica"]
    (parsed,) = ah._docker_containers([item], now=NOW)
    assert parsed["replica"] == 3
    assert (parsed["address"], parsed["host_port"]) == ("0.0.0.0", 28080)


def test_replicas_are_probed_where_they_are_bound():
    # The agent role publishes a replica on the host's fleet address only: the probe goes there.
    specs = ah._agent_specs([{"name": "bound", "host_port": 28080}])
    items = [
        container("bound-0", "bound", 0, published=28080, bound="10.0.0.5"),
        container("bound-1", "bound", 1, published=28081, bound="fd00::5"),
    ]
    containers = ah._docker_containers(items, now=NOW)
    records = ah._build_records(specs, containers, [])
    assert [r["url"] for r in records] == ["http://10.0.0.5:28080/healthz", "http://[fd00::5]:28081/healthz"]
    assert ah._probe_url(18080, "healthz", "::") == "http://[::1]:18080/healthz"


V1_CGROUP = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n"
V2_CGROUP = "0::/system.slice/docker-abc.scope\n"
CGROUP_FILES = {
    "/sys/fs/cgroup/cpuacct/docker/abc/cpuacct.usage": "11936521448\n",
    "/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": "20000000\n",
    "/sys/fs/cgroup/memory/docker/abc/memory.stat": "cache 9\ninactive_file 7\ntotal_inactive_file 3500000\n",
    "/sys/fs/cgroup/system.slice/docker-abc.scope/cpu.stat": "usage_usec 2500\nuser_usec 2000\n",
    "/sys/fs/cgroup/system.slice/docker-abc.scope/memory.current": "30000000\n",
    "/sys/fs/cgroup/system.slice/docker-abc.scope/memory.stat": "anon 1\ninactive_file 10000000\n",
}


def test_cgroup_usage_v1_and_v2():
    assert ah._cgroup_usage(V1_CGROUP, CGROUP_FILES.get) == (11_936_521_448, 16_500_000)
    assert ah._cgroup_usage(V2_CGROUP, CGROUP_FILES.get) == (2_500_000, 20_000_000)


def test_cgroup_usage_without_readable_files():
    assert ah._cgroup_usage(V2_CGROUP, lambda path: None) == (None, None)
    assert ah._cgroup_usage(None, CGROUP_FILES.get) == (None, None)
    assert ah._cgroup_usage("garbage", CGROUP_FILES.get) == (None, None)


def test_docker_containers_skip_what_is_not_a_container():
    assert ah._docker_containers([None, "x", 3]) == []
    assert ah._docker_containers(None) == []


def test_container_usage_leaves_out_the_page_cache():
    assert ah._container_usage(sample(42, 30 * 1024**2, 10 * 1024**2)) == (42, 20 * 1024**2)
    # cgroup v1 names it total_inactive_file
    v1 = {
        "cpu_stats": {"cpu_usage": {"total_usage": 7}},
        "memory_stats": {"usage": 1000, "stats": {"total_inactive_file": 400}},
    }
    assert ah._container_usage(v1) == (7, 600)
    # a stopped container's sample has no counters
    assert ah._container_usage({"cpu_stats": {}, "memory_stats": {}}) == (None, None)
    assert ah._container_usage(None) == (None, None)


# --------------------------------------------------------------------------------------------
# systemd


def test_parse_unit_list_skips_bullets_and_other_units():
    text = (
        "agentfactory-sysagent@0.service loaded active running agent sysagent 0\n"
        "● agentfactory-sysagent@1.service loaded failed failed agent sysagent 1\n"
        "agentfactory-sysagent@.service  enabled enabled\n"
        "agentfactory-other@10.service loaded inactive dead x\n"
        "ssh.service loaded active running OpenBSD Secure Shell server\n"
    )
    assert ah._parse_unit_list(text) == [
        "agentfactory-other@10.service",
        "agentfactory-sysagent@0.service",
        "agentfactory-sysagent@1.service",
    ]


def test_parse_systemctl_show_blocks_and_repeated_keys():
    text = (
        unit_show("agentfactory-a@0.service", env_files="/etc/a/0.env (ignore_errors=no)")
        + "\nEnvironmentFiles=-/etc/a/common.env (ignore_errors=yes)\n\n"
        + unit_show("agentfactory-a@1.service", load="not-found", active="inactive", sub="dead")
        + "\n"
    )
    first, second = ah._parse_systemctl_show(text)
    assert first["Id"] == "agentfactory-a@0.service"
    assert ah._environment_files(first["EnvironmentFiles"]) == ["/etc/a/0.env", "-/etc/a/common.env"]
    assert second["LoadState"] == "not-found"


def test_systemd_unit_running_with_times_and_counters():
    props = ah._parse_systemctl_show(
        unit_show("agentfactory-sysagent@0.service", restarts=2, start_usec=1_000_000_000, exec_start=SYSAGENT_EXEC)
    )[0]
    unit = ah._systemd_unit(props, now_monotonic=1_060.0, now=NOW)  # 60 s after the start
    assert unit["agent"] == "sysagent"
    assert unit["replica"] == 0
    assert (unit["state"], unit["sub_state"], unit["running"]) == ("active", "running", True)
    assert unit["restarts"] == 2
    assert unit["started_at"] == "2025-01-31T11:59:00+00:00"
    assert unit["uptime_seconds"] == 60
    assert unit["cpu_nsec"] == 5_000_000_000
    assert unit["memory_bytes"] == 41_943_040
    assert unit["host_port"] == 19100  # from --port in ExecStart
    assert unit["exit_code"] is None
    assert unit["config_hash"] is None  # no release drop-in


def test_systemd_unit_config_hash_from_its_release():
    props = ah._parse_systemctl_show(
        unit_show("agentfactory-sysagent@1.service", environment="AGENT_CONFIG_HASH=c0ffee12 LOG=debug")
    )[0]
    assert ah._systemd_unit(props, 1_060.0, NOW)["config_hash"] == "c0ffee12"


def test_systemd_unit_missing_unset_and_crash_looping():
    missing = ah._systemd_unit(
        {"Id": "agentfactory-x@0.service", "LoadState": "not-found", "ActiveState": "inactive"}, 5.0, NOW
    )
    assert (missing["state"], missing["running"], missing["started_at"]) == ("missing", False, None)

    props = ah._parse_systemctl_show(
        unit_show(
            "agentfactory-x@1.service",
            active="activating",
            sub="auto-restart",
            restarts=5,
            status=3,
            cpu="[not set]",
            memory=str(2**64 - 1),
            result="exit-code",
        )
    )[0]
    looping = ah._systemd_unit(props, 2_000.0, NOW)
    assert (looping["state"], looping["running"], looping["exit_code"]) == ("activating", False, 3)
    assert looping["cpu_nsec"] is None
    assert looping["memory_bytes"] is None
    assert looping["uptime_seconds"] is None


def test_proc_cpu_nsec():
    stat = "4242 (python3 agent (x)) S 1 4242 4242 0 -1 4194560 2100 0 0 0 150 50 0 0 20 0 3 0 12345 0 0"
    assert ah._proc_cpu_nsec(stat, 100) == 2_000_000_000  # (150 + 50) ticks at 100 per second
    assert ah._proc_cpu_nsec("4242 (x) S 1", 100) is None
    assert ah._proc_cpu_nsec("", 100) is None


def test_unit_hints_from_environment_and_files():
    props = {
        "Environment": 'AGENT_NAME=sysagent "AGENT_HEALTH_PATH=/health z" AGENT_PORT=1',
        "EnvironmentFiles": "/etc/agentfactory/sysagent/replica-0.env (ignore_errors=no)",
    }
    files = {"/etc/agentfactory/sysagent/replica-0.env": "# port of replica 0\nexport AGENT_PORT='19100'\n"}
    assert ah._unit_hints(props, files) == (None, 19100, "/health z")  # the file wins over Environment=
    assert ah._unit_hints({"Environment": "AGENT_PORT=19101 AGENT_HOST=10.0.0.5"}) == ("10.0.0.5", 19101, None)
    assert ah._unit_hints({"ExecStart": "{ path=/x ; argv[]=/x --host 10.0.0.6 ; }"})[0] == "10.0.0.6"
    assert ah._unit_hints({}) == (None, None, None)


def test_parse_env_file():
    text = 'A=1\n# comment\n; also a comment\nexport B="two words"\n\nC = 3 \nbroken line\n'
    assert ah._parse_env_file(text) == {"A": "1", "B": "two words", "C": "3"}


# --------------------------------------------------------------------------------------------
# The catalog, the records and the decision


def test_agent_specs_defaults_and_names():
    specs = ah._agent_specs(
        [
            {"name": "support-bot", "replicas": 3, "host_port": 18080, "health": {"path": "/ready", "timeout": 2}},
            {"name": "worker", "runtime": "systemd"},
            {"name": "other", "replicas": 0},
        ],
        names=["support-bot", "worker", "ghost"],
    )
    assert specs == [
        {
            "name": "support-bot",
            "runtime": "docker",
            "replicas": 3,
            "host_port": 18080,
            "health_path": "/ready",
            "probe_timeout": 2.0,
        },
        {
            "name": "worker",
            "runtime": "systemd",
            "replicas": 1,
            "host_port": None,
            "health_path": "/healthz",
            "probe_timeout": 5.0,
        },
    ]
    # probe_timeout wins over health.timeout
    assert ah._agent_specs([{"name": "a", "health": {"timeout": 9}}], probe_timeout=0.5)[0]["probe_timeout"] == 0.5


def test_agent_specs_reports_every_problem():
    with pytest.raises(ah._AgentHealthError) as info:
        ah._agent_specs(
            [
                {"name": "a", "runtime": "k8s"},
                {"name": "a"},
                {"replicas": 1},
                {"name": "b", "replicas": -1},
                {"name": "c", "host_port": 65535, "replicas": 2},
                {"name": "d", "health": {"path": "healthz", "timeout": 0}},
            ]
        )
    message = str(info.value)
    for part in (
        "agent 'a': runtime must be docker or systemd",
        "agent 'a' is listed twice",
        "agents[3] has no name",
        "agent 'b': replicas must be an integer >= 0",
        "agent 'c': host_port 65535 (+ replicas) must stay within 1-65535",
        "agent 'd': health.path must start with '/'",
        "agent 'd': health.timeout must be a number of seconds > 0",
    ):
        assert part in message


def _containers():
    return ah._docker_containers(FLEET, now=NOW)


def test_build_records_from_the_catalog_marks_missing_and_extra():
    specs = ah._agent_specs(
        [
            {"name": "good", "replicas": 3, "host_port": 18080},
            {"name": "sick", "replicas": 0, "host_port": 18090},
            {"name": "ghost", "runtime": "systemd", "replicas": 1, "host_port": 19200},
        ]
    )
    units = [ah._systemd_unit({"Id": "agentfactory-ghost@0.service", "LoadState": "not-found"}, 1.0, NOW)]
    records = ah._build_records(specs, _containers(), units)
    by_name = {r["name"]: r for r in records}
    assert [r["name"] for r in records] == [
        "good-0",
        "good-1",
        "good-2",
        "sick-0",
        "agentfactory-ghost@0.service",
    ]
    assert by_name["good-1"]["url"] == "http://127.0.0.1:18081/healthz"
    assert by_name["good-2"]["state"] == "missing"
    assert by_name["good-2"]["host_port"] == 18082
    assert by_name["sick-0"]["desired"] is False  # scaled to 0, still there
    assert by_name["agentfactory-ghost@0.service"]["state"] == "missing"
    assert by_name["agentfactory-ghost@0.service"]["runtime"] == "systemd"


def test_build_records_prefers_the_contract_name_for_duplicates():
    items = ah._docker_containers(
        [container("good-0-old", "good", 0, "exited"), container("good-0", "good", 0)], now=NOW
    )
    specs = ah._agent_specs([{"name": "good", "replicas": 1, "host_port": 18080}])
    records = ah._build_records(specs, items, [])
    assert [(r["name"], r["desired"]) for r in records] == [("good-0", True), ("good-0-old", False)]


def test_build_records_discovers_and_filters_by_name():
    records = ah._build_records(None, _containers(), [], names=["good", "crashy"])
    assert [r["name"] for r in records] == ["crashy-0", "good-0", "good-1"]
    assert all(r["desired"] for r in records)
    assert records[1]["url"] == "http://127.0.0.1:18080/healthz"  # from the labels


def _judged(names_and_probes):
    records = {r["name"]: r for r in ah._build_records(None, _containers(), [])}
    for name, probe in names_and_probes.items():
        ah._judge(records[name], probe)
    return records


OK = {"ok": True, "http_status": 200, "latency_ms": 1.5, "error": None}
SICK = {"ok": False, "http_status": 503, "latency_ms": 2.0, "error": "HTTP 503"}
REFUSED = {"ok": False, "http_status": None, "latency_ms": None, "error": "connection refused"}


def test_judge_sets_health_and_error():
    records = _judged({"good-0": OK, "good-1": REFUSED, "sick-0": SICK, "stopped-0": None, "crashy-0": None})
    assert (records["good-0"]["health"], records["good-0"]["error"], records["good-0"]["http_status"]) == (
        "healthy",
        None,
        200,
    )
    assert (records["good-1"]["health"], records["good-1"]["error"]) == ("unhealthy", "connection refused")
    assert (records["sick-0"]["health"], records["sick-0"]["http_status"]) == ("unhealthy", 503)
    assert (records["stopped-0"]["health"], records["stopped-0"]["error"]) == ("unknown", "exited (exit code 0)")
    assert records["crashy-0"]["error"] == "restarting (exit code 3, 7 restarts)"


def test_state_text_for_units_and_created_containers():
    record = ah._empty_record("w", 0, "systemd", "agentfactory-w@0.service")
    record.update(state="failed", sub_state="failed", exit_code=1, restarts=1, _state_error="exit-code")
    assert ah._state_text(record) == "failed (exit code 1, 1 restart)"
    record.update(state="inactive", sub_state="dead", exit_code=None, restarts=0, _state_error="success")
    assert ah._state_text(record) == "inactive"
    record.update(state="failed", sub_state="failed", _state_error="oom-kill")
    assert ah._state_text(record) == "failed (oom-kill)"
    created = ah._empty_record("c", 0, "docker", "c-0")
    created.update(state="created", exit_code=0)
    assert ah._state_text(created) == "created (never started)"


def test_judge_running_without_a_port_is_unknown():
    record = ah._empty_record("w", 0, "systemd", "agentfactory-w@0.service")
    record.update(state="active", running=True)
    ah._judge(record, None)
    assert (record["health"], record["error"]) == ("unknown", "no host port known to probe")
    assert ah._problem(record) == "health unknown (no host port known to probe)"


def test_summarise_counts_desired_replicas_only():
    specs = ah._agent_specs([{"name": "good", "replicas": 1}, {"name": "idle", "replicas": 0}])
    records = ah._build_records(specs, _containers(), [])
    for record in records:
        ah._judge(record, OK)
    agents, healthy, unhealthy = ah._summarise(records, specs)
    assert agents["good"] == {
        "runtime": "docker",
        "desired": 1,
        "running": 1,
        "healthy": 1,
        "replicas": ["good-0"],
        "unhealthy": [],
        "extra": ["good-1"],
    }
    assert agents["idle"]["desired"] == 0
    assert (healthy, unhealthy) == (True, [])


def test_summarise_and_failure_message():
    records = _judged({"good-0": OK, "good-1": OK, "sick-0": SICK, "stopped-0": None, "crashy-0": None})
    agents, healthy, unhealthy = ah._summarise(list(records.values()))
    assert healthy is False
    assert unhealthy == ["crashy-0", "sick-0", "stopped-0"]  # discovered: by agent name
    assert (agents["good"]["running"], agents["good"]["healthy"]) == (2, 2)
    assert (agents["sick"]["running"], agents["sick"]["healthy"]) == (1, 0)
    assert (agents["crashy"]["running"], agents["crashy"]["healthy"]) == (0, 0)
    assert ah._failure_message(list(records.values()), 30) == (
        "agent 'crashy' not healthy after 30s: crashy-0 restarting (exit code 3, 7 restarts); "
        "agent 'sick' not healthy after 30s: sick-0 unhealthy (HTTP 503); "
        "agent 'stopped' not healthy after 30s: stopped-0 exited (exit code 0)"
    )


def test_failure_message_in_the_documented_words():
    specs = ah._agent_specs([{"name": "support-bot", "replicas": 3, "host_port": 18080}])
    items = ah._docker_containers(
        [container("support-bot-0", "support-bot", 0), container("support-bot-1", "support-bot", 1)], now=NOW
    )
    records = ah._build_records(specs, items, [])
    ah._judge(records[0], OK)
    ah._judge(records[1], SICK)
    ah._judge(records[2], None)
    assert ah._failure_message(records, 60) == (
        "agent 'support-bot' not healthy after 60s: support-bot-1 unhealthy (HTTP 503), support-bot-2 missing"
    )
    assert ah._failure_message(records[:1], 60) == ""


def test_public_record_has_every_documented_key_and_nothing_private():
    record = ah._build_records(None, _containers(), [])[0]
    public = ah._public(record)
    assert list(public) == list(ah._RECORD_KEYS)
    assert not [key for key in public if key.startswith("_")]
    documented = mod.RETURN.split("replicas:\n", 1)[1]
    for key in ah._RECORD_KEYS:
        assert f"\n    {key}:\n" in documented, key


# --------------------------------------------------------------------------------------------
# The real probe, against 127.0.0.1 only


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1.0)
        code = {"/healthz": 200, "/sick": 503, "/moved": 302, "/slow": 200}.get(self.path, 404)
        body = b'{"status": "ok"}'
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/healthz")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the probe of /slow gave up first: expected
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_healthy(http_port):
    result = ah._probe(f"http://127.0.0.1:{http_port}/healthz", 2)
    assert result["ok"] is True
    assert result["http_status"] == 200
    assert result["error"] is None
    assert result["latency_ms"] >= 0


@pytest.mark.parametrize(("path", "status"), [("/sick", 503), ("/moved", 302), ("/nothing", 404)])
def test_probe_non_2xx_is_unhealthy_and_redirects_are_not_followed(http_port, path, status):
    result = ah._probe(f"http://127.0.0.1:{http_port}{path}", 2)
    assert (result["ok"], result["http_status"], result["error"]) == (False, status, f"HTTP {status}")


def test_probe_connection_closed_without_an_answer():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def hang_up():
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        result = ah._probe(f"http://127.0.0.1:{listener.getsockname()[1]}/healthz", 2)
        thread.join(5)
    assert (result["ok"], result["http_status"]) == (False, None)
    assert result["error"] == "connection closed without a response"


def test_probe_refused_and_timeout(http_port):
    refused = ah._probe(f"http://127.0.0.1:{_free_port()}/healthz", 2)
    assert (refused["ok"], refused["http_status"], refused["error"]) == (False, None, "connection refused")
    slow = ah._probe(f"http://127.0.0.1:{http_port}/slow", 0.2)
    assert (slow["ok"], slow["error"]) == (False, "timed out after 0.2s")


# --------------------------------------------------------------------------------------------
# main() with a fake host (STYLE.md item 12)


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


class FakeHost:
    """Answers what agent_health asks the engine and systemctl, and records it."""

    def __init__(self, containers=(), stats=STATS, units=(), unit_list="", engine_down=False):
        self.containers = list(containers)
        self.stats = {ident: list(samples) for ident, samples in stats.items()}
        self.units = {u.split("\n", 1)[0][len("Id=") :]: u for u in units}
        self.unit_list = unit_list
        self.engine_down = engine_down
        self.calls = []

    # the engine (docker_api.Engine)
    def engine_call(self, what, ident=None):
        self.calls.append(["engine", what, *([ident] if ident else [])])
        if self.engine_down:
            raise docker_api.EngineError(
                "cannot reach the Docker engine at /var/run/docker.sock: [Errno 111] Connection refused"
            )
        if what == "containers":
            return [{"Id": c["Id"], "Names": [c["Name"]]} for c in self.containers]
        if what == "inspect":
            return next((c for c in self.containers if c["Id"] == ident), None)
        samples = self.stats.get(ident)
        if not samples:
            raise docker_api.EngineError("No such container", 404)
        return samples.pop(0) if len(samples) > 1 else samples[0]

    # systemctl (run_command)
    def __call__(self, module, args, **kwargs):
        self.calls.append(list(args))
        tool, verb = Path(args[0]).name, args[1]
        if tool == "systemctl" and verb == "list-units":
            return (0, self.unit_list, "") if self.unit_list else (1, "", "")
        if tool == "systemctl" and verb == "list-unit-files":
            return 1, "", ""
        if tool == "systemctl" and verb == "show":
            blocks = []
            for unit in args[5:]:
                blocks.append(self.units.get(unit) or f"Id={unit}\nLoadState=not-found\nActiveState=inactive")
            return 0, "\n\n".join(blocks) + "\n", ""
        raise AssertionError(f"unexpected command {args}")

    def commands(self, tool, verb):
        return [c for c in self.calls if Path(c[0]).name == tool and c[1] == verb]


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def host(monkeypatch):
    """A host with a Docker engine and systemd; set .fake to change what they answer,
    .engine to False for a host without the engine's socket."""
    state = {
        "fake": FakeHost(FLEET),
        "engine": True,
        "bins": {"systemctl": "/usr/bin/systemctl"},
        "probes": {},
        "probed": [],
    }

    def run_command(self, args, **kwargs):
        return state["fake"](self, args, **kwargs)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return state["bins"].get(name)

    def probe(url, timeout):
        state["probed"].append((url, timeout))
        answers = state["probes"].get(url, OK)
        if isinstance(answers, list):
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return answers

    class FakeEngine:
        socket_path = docker_api.DEFAULT_SOCKET

        def available(self):
            return state["engine"]

        def containers(self, label):
            assert label == "agentfactory.agent"
            return state["fake"].engine_call("containers")

        def inspect(self, ident):
            return state["fake"].engine_call("inspect", ident)

        def stats(self, ident):
            return state["fake"].engine_call("stats", ident)

    clock = FakeClock()
    monkeypatch.setattr(mod.docker_api, "Engine", FakeEngine)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    monkeypatch.setattr(ah, "_probe", probe)
    monkeypatch.setattr(mod, "_clock", clock.monotonic)
    monkeypatch.setattr(mod, "_sleep", clock.sleep)
    state["clock"] = clock
    return state


def run_main(main, args, expect=AnsibleExitJson):
    """What a module's main() returned (exit_json) or failed with (fail_json), given `args`."""
    with patch_module_args(args), pytest.raises(expect) as info:
        main()
    return info.value.args[0]


def run_module(args, expect=AnsibleExitJson):
    return run_main(mod.main, args, expect)


def by_name(result):
    return {r["name"]: r for r in result["replicas"]}


def test_main_discovers_containers_and_units(host):
    host["fake"] = FakeHost(
        FLEET,
        units=[
            unit_show(
                "agentfactory-sysagent@0.service",
                env_files="/nonexistent/replica-0.env (ignore_errors=no)",
                exec_start=SYSAGENT_EXEC,
            )
        ],
        unit_list="agentfactory-sysagent@0.service loaded active running sysagent\n",
    )
    host["probes"] = {"http://127.0.0.1:18090/healthz": SICK}
    result = run_module({})
    assert result["changed"] is False
    assert result["healthy"] is False
    assert result["unhealthy"] == ["crashy-0", "sick-0", "stopped-0"]
    assert set(result["agents"]) == {"good", "sick", "stopped", "crashy", "sysagent"}
    assert (result["agents"]["good"]["desired"], result["agents"]["good"]["healthy"]) == (2, 2)
    assert result["agents"]["sysagent"]["runtime"] == "systemd"
    assert result["agents"]["sysagent"]["healthy"] == 1
    replicas = by_name(result)
    assert replicas["sick-0"]["http_status"] == 503
    assert replicas["stopped-0"]["state"] == "exited"
    assert replicas["crashy-0"]["restarts"] == 7
    assert replicas["good-0"]["memory_bytes"] == 20 * 1024**2
    assert replicas["good-0"]["cpu_percent"] == 1.0  # 2.5 ms of CPU in the 0.25 s between the samples
    assert replicas["good-1"]["cpu_percent"] == 2.5
    assert replicas["sick-0"]["memory_bytes"] == 800_000
    unit = replicas["agentfactory-sysagent@0.service"]
    assert (unit["state"], unit["health"], unit["host_port"]) == ("active", "healthy", 19100)
    assert unit["memory_bytes"] == 41_943_040
    assert unit["cpu_percent"] == 0.0  # the same CPUUsageNSec twice
    assert host["clock"].sleeps == [mod._MIN_CPU_SAMPLE_SECONDS]  # between the two samples
    # one listing, one inspection per container, two samples per running container
    fake = host["fake"]
    assert len(fake.commands("engine", "containers")) == 1
    assert sorted(c[2] for c in fake.commands("engine", "inspect")) == sorted(c["Id"] for c in FLEET)
    stats = sorted(c[2] for c in fake.commands("engine", "stats"))
    assert stats == sorted(2 * [c["Id"] for c in FLEET[:3]])  # running containers only
    # probes go to loopback only, with the default timeout
    assert {url.split("/")[2].split(":")[0] for url, _ in host["probed"]} == {"127.0.0.1"}
    assert {timeout for _, timeout in host["probed"]} == {5.0}


def test_main_reads_container_counters_from_the_cgroup(host, monkeypatch):
    item = container("good-0", "good", 0, port=18080)
    item["State"]["Pid"] = 4242
    host["fake"] = FakeHost([item])
    usage = iter(["1000000000", "1125000000"])  # 0.125 s of CPU between the two samples
    files = {**CGROUP_FILES, "/proc/4242/cgroup": V1_CGROUP}

    def read(path):
        return next(usage) if path.endswith("cpuacct.usage") else files.get(path)

    monkeypatch.setattr(mod, "_read_text", read)
    (replica,) = run_module({})["replicas"]
    assert (replica["cpu_percent"], replica["memory_bytes"]) == (50.0, 16_500_000)
    assert not host["fake"].commands("engine", "stats")  # the engine's collector is not waited for


def test_main_samples_the_main_process_without_cpu_accounting(host, monkeypatch):
    host["fake"] = FakeHost(
        units=[unit_show("agentfactory-w@0.service", cpu="[not set]") + "\nMainPID=4242"],
    )
    samples = iter([1_000_000_000, 1_125_000_000])
    monkeypatch.setattr(mod, "_process_cpu_nsec", lambda pid: next(samples) if pid == 4242 else None)
    result = run_module({"agents": [{"name": "w", "runtime": "systemd", "host_port": 19000}]})
    (unit,) = result["replicas"]
    assert unit["cpu_percent"] == 50.0  # 0.125 s of CPU in the 0.25 s between the samples
    assert unit["memory_bytes"] == 41_943_040


def test_main_with_the_catalog_reports_missing_replicas(host):
    agents = [
        {"name": "good", "replicas": 3, "host_port": 18080, "health": {"path": "/healthz", "timeout": 2}},
        {"name": "sysagent", "runtime": "systemd", "replicas": 1, "host_port": 19100},
    ]
    result = run_module({"agents": agents, "stats": False})
    assert result["healthy"] is False
    assert result["unhealthy"] == ["good-2", "agentfactory-sysagent@0.service"]
    assert result["agents"]["good"]["desired"] == 3
    assert set(result["agents"]) == {"good", "sysagent"}
    replicas = by_name(result)
    assert replicas["good-2"]["state"] == "missing"
    assert replicas["agentfactory-sysagent@0.service"]["state"] == "missing"
    assert replicas["good-0"]["cpu_percent"] is None
    assert not host["fake"].commands("engine", "stats")
    assert {timeout for _, timeout in host["probed"]} == {2.0}


def test_main_names_limit_the_agents(host):
    result = run_module({"names": ["sick"], "probe_timeout": 0.5})
    assert list(result["agents"]) == ["sick"]
    assert [r["name"] for r in result["replicas"]] == ["sick-0"]
    assert host["probed"] == [("http://127.0.0.1:18090/healthz", 0.5)]


def test_main_waits_until_healthy(host):
    host["probes"] = {"http://127.0.0.1:18081/healthz": [REFUSED, SICK, OK]}
    result = run_module({"names": ["good"], "wait_healthy": True, "timeout": 30, "interval": 2, "stats": False})
    assert result["healthy"] is True
    assert result["agents"]["good"]["healthy"] == 2
    assert host["clock"].sleeps == [2, 2]
    assert len(host["fake"].commands("engine", "containers")) == 3


def test_main_wait_times_out_naming_each_replica(host):
    host["probes"] = {"http://127.0.0.1:18090/healthz": SICK}
    agents = [{"name": "sick", "replicas": 2, "host_port": 18090}]
    result = run_module({"agents": agents, "wait_healthy": True, "timeout": 5, "interval": 2}, AnsibleFailJson)
    assert result["msg"] == "agent 'sick' not healthy after 5s: sick-0 unhealthy (HTTP 503), sick-1 missing"
    assert result["changed"] is False
    assert result["healthy"] is False
    assert result["unhealthy"] == ["sick-0", "sick-1"]
    # the last poll lands on the deadline; then half a second between the CPU samples
    assert host["clock"].sleeps == [2, 2, 1, mod._MIN_CPU_SAMPLE_SECONDS]


def test_main_does_not_fail_on_unhealthy_without_waiting(host):
    host["probes"] = {"http://127.0.0.1:18090/healthz": SICK}
    result = run_module({"names": ["sick"], "stats": False})
    assert result["healthy"] is False
    assert "failed" not in result


def test_main_in_check_mode_reports_no_change(host):
    result = run_module({"names": ["good"], "_ansible_check_mode": True})
    assert result["changed"] is False
    assert result["healthy"] is True


def test_main_fails_clearly_without_docker(host):
    host["engine"] = False
    agents = [{"name": "support-bot", "replicas": 2, "host_port": 18080}]
    result = run_module({"agents": agents}, AnsibleFailJson)
    assert result["msg"] == (
        "the Docker engine is not running on this host (no socket /var/run/docker.sock), "
        "but agent 'support-bot' uses runtime docker"
    )


def test_main_without_docker_still_checks_systemd_agents(host):
    host["engine"] = False
    host["fake"] = FakeHost(units=[unit_show("agentfactory-w@0.service")])
    agents = [{"name": "w", "runtime": "systemd", "host_port": 19000}, {"name": "idle", "replicas": 0}]
    result = run_module({"agents": agents, "stats": False})
    assert result["healthy"] is True
    assert by_name(result)["agentfactory-w@0.service"]["url"] == "http://127.0.0.1:19000/healthz"
    assert not host["fake"].commands("engine", "containers")


def test_main_discovery_without_docker_or_units(host):
    host["engine"] = False
    host["bins"] = {}
    result = run_module({})
    assert (result["healthy"], result["replicas"], result["agents"]) == (True, [], {})


def test_main_fails_when_the_docker_daemon_is_down(host):
    host["fake"] = FakeHost(FLEET, engine_down=True)
    result = run_module({"agents": [{"name": "good", "host_port": 18080}]}, AnsibleFailJson)
    assert result["msg"] == (
        "listing the agent containers failed: cannot reach the Docker engine at /var/run/docker.sock: "
        "[Errno 111] Connection refused"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"interval": 0}, "interval must be > 0 seconds"),
        ({"timeout": -1}, "timeout must be >= 0 seconds"),
        ({"probe_timeout": 0}, "probe_timeout must be > 0 seconds"),
        ({"agents": [{"name": "a", "replicas": -2}]}, "agent 'a': replicas must be an integer >= 0"),
    ],
)
def test_main_rejects_bad_arguments(host, args, message):
    assert message in run_module(args, AnsibleFailJson)["msg"]


def test_main_rejects_unknown_catalog_keys(host, monkeypatch, capsys):
    # the real fail_json: AnsibleModule validates the arguments itself
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _REAL_FAIL_JSON)
    with patch_module_args({"agents": [{"name": "a", "replicaz": 2}]}), pytest.raises(SystemExit):
        mod.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert "replicaz" in result["msg"]


def test_secrets_never_reach_the_output(host, monkeypatch, capsys):
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _REAL_EXIT_JSON)  # prints the JSON the controller gets
    agents = [
        {
            "name": "good",
            "replicas": 2,
            "host_port": 18080,
            "secrets": {"API_KEY": "hunter2-do-not-show"},
            "env": {"LOG_LEVEL": "info"},
            "config": {"model": "small"},
        }
    ]
    with patch_module_args({"agents": agents}), pytest.raises(SystemExit):
        mod.main()
    out = capsys.readouterr().out
    assert "hunter2-do-not-show" not in out
    result = json.loads(out)
    assert result["healthy"] is True
    assert result["invocation"]["module_args"]["agents"][0]["config"] == {"model": "small"}


def test_module_documentation_matches_the_argument_spec():
    import yaml

    doc = yaml.safe_load(mod.DOCUMENTATION)
    spec = mod._argument_spec()

    def compare(documented, declared, where):
        assert set(documented) == set(declared), where
        for name, option in declared.items():
            entry = documented[name]
            assert entry.get("type", "str") == option.get("type", "str"), f"{where}.{name}"
            assert entry.get("default") == option.get("default"), f"{where}.{name}"
            assert entry.get("elements") == option.get("elements"), f"{where}.{name}"
            assert entry.get("choices") == option.get("choices"), f"{where}.{name}"
            assert bool(entry.get("required")) == bool(option.get("required")), f"{where}.{name}"
            if option.get("options"):
                compare(entry["suboptions"], option["options"], f"{where}.{name}")

    compare(doc["options"], spec, "options")
    assert {"check_mode", "diff_mode", "idempotent"} <= set(doc["attributes"])
    assert yaml.safe_load(mod.EXAMPLES)
    assert "agentfactory.fleet.agent_health" in mod.EXAMPLES
    returned = yaml.safe_load(mod.RETURN)
    assert {"healthy", "unhealthy", "agents", "replicas"} <= set(returned)
