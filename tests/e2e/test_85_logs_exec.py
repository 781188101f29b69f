"""`logs` and `exec` over SSH on the lab: a container agent and a systemd agent, one replica on
each host, logging every health probe (LOG_LEVEL debug) so that followed logs move."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
import yaml
from labcli import LAB, agentfactory, cli_executable, host_name, host_names, lab_dir, on_host

from agentfactory_cli.lab.agentimage import ensure_agent_archive
from agentfactory_cli.paths import project_root

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"


@pytest.fixture(scope="module")
def logging_agents(bootstrapped):
    ref, archive = ensure_agent_archive(log=lambda m: None)
    health = {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2}
    original = CATALOG.read_text() if CATALOG.exists() else None
    doc = {
        "agentfactory_agents": [
            {"name": "lx", "image": ref, "image_source": "archive", "image_archive": str(archive), "replicas": 1,
             "host_port": 18500, "env": {"LOG_LEVEL": "debug"}, "config": {"model": "lx-model"}, "health": health},
            {"name": "ly", "runtime": "systemd", "replicas": 1, "host_port": 18600, "env": {"LOG_LEVEL": "debug"},
             "command": ["/usr/bin/python3", "/opt/agentfactory/bin/reference-agent"], "health": health,
             "config": {"model": "ly-model"}},
        ],
        "agent_systemd_packages": ["python3-yaml", "python3-prometheus-client"],
        "agent_systemd_files": [{"src": str(project_root() / "agents/reference/agent.py"),
                                 "dest": "/opt/agentfactory/bin/reference-agent", "mode": "0755"}],
    }
    CATALOG.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = agentfactory("deploy", "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    yield
    agentfactory("destroy", "--yes")
    if original is None:
        CATALOG.unlink()
    else:
        CATALOG.write_text(original)


def test_logs_of_every_replica_prefixed_and_in_time_order(logging_agents):
    res = agentfactory("logs", "lx", "-t", "--since", "1h", timeout=120)  # since the start, probes and all
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for host in host_names():
        assert any(f" {host} lx-0 | " in line and "listening on" in line for line in lines), (host, res.stdout)
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)


def test_logs_of_a_systemd_replica_come_from_the_journal(logging_agents):
    res = agentfactory("logs", "ly/ly-0", "--host", host_name(2), "--since", "1h", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "listening on" in res.stdout
    assert not any(line.startswith(host_name(2)) for line in res.stdout.splitlines())  # one replica: no prefix


def test_logs_follow_every_host_until_ctrl_c(logging_agents):
    proc = subprocess.Popen([cli_executable(), "logs", "lx", "-f", "-n", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "AGENTFACTORY_LAB": LAB})
    seen: set[str] = set()

    def read() -> None:
        for line in proc.stdout:
            seen.update(h for h in host_names() if line.startswith(f"{h} lx-0 | "))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while seen != set(host_names()) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("logs -f did not stop on Ctrl-C")
    assert seen == set(host_names()), seen
    assert code == 130, proc.stderr.read()
    time.sleep(2)
    for i in range(1, len(host_names()) + 1):  # the remote followers ended with the connection
        assert on_host(i, "pgrep", "-f", "docker logs", check=False).returncode == 1


def test_exec_prints_the_rendered_config(logging_agents):
    res = agentfactory("exec", "lx/lx-0", "--host", host_name(1), "--", "cat", "/etc/agent/config.yml")
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout)["model"] == "lx-model"


def test_exec_in_a_systemd_replica_has_its_user_and_environment(logging_agents):
    res = agentfactory("exec", "ly/0", "--host", host_name(1), "--",
                       "sh", "-c", 'id -un; echo "$AGENT_REPLICA $AGENT_PORT"; grep model "$AGENT_CONFIG"')
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["agentfactory", "ly-0 18600", "model: ly-model"]


def test_exec_everywhere_prefixes_and_returns_the_worst(logging_agents):
    res = agentfactory("exec", "lx", "--all", "--yes", "--", "sh", "-c", "echo hi; exit 3")
    assert res.returncode == 3
    assert sorted(line for line in res.stdout.splitlines()) == [f"{h} lx-0 | hi" for h in host_names()]
    res = agentfactory("exec", "lx", "--", "true")  # several replicas, no --all: refused, nothing run
    assert res.returncode == 4 and "or pass --all" in res.stderr
