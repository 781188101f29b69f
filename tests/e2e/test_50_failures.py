"""Real faults during a deploy: a host that goes away, and Ctrl-C. The fleet stays whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from labcli import HOSTS, LAB, agentfactory, cli_executable, host_name, lab_dir, on_host, run_json

from agentfactory_cli.lab.agentimage import ensure_agent_archive

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"


def echo(model: str, replicas: int = 2) -> dict:
    ref, archive = ensure_agent_archive(log=lambda m: None)
    return {"agentfactory_agents": [{
        "name": "echo", "image": ref, "image_source": "archive", "image_archive": str(archive),
        "replicas": replicas, "host_port": 18600, "config": {"model": model},
        "health": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2},
        "update": {"batch": 1, "health_timeout": 60, "rollback": True},
    }]}


def runs() -> set:
    from agentfactory_cli.paths import state_dir

    return set((state_dir() / "runs").glob("*-deploy"))


def start_deploy() -> subprocess.Popen:
    return subprocess.Popen([cli_executable(), "deploy", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "AGENTFACTORY_LAB": LAB})


def wait_for_task(name: str, before: set, timeout: float = 120) -> None:
    """Until the new deploy's stdout shows the task starting (ansible-runner writes it live)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = sorted(runs() - before)
        stdout = new[-1] / "stdout" if new else None
        if stdout and stdout.exists() and name in stdout.read_text(errors="replace"):
            return
        time.sleep(0.5)
    pytest.fail(f"the deploy never reached {name!r}")


@pytest.fixture(scope="module")
def echo_deployed(bootstrapped):
    original = CATALOG.read_text() if CATALOG.exists() else None
    CATALOG.write_text(yaml.safe_dump(echo("small")))
    assert agentfactory("deploy", "--yes").returncode == 0
    yield
    if original is not None:
        CATALOG.write_text(original)


def test_host_lost_mid_deploy_exits_3_and_limit_rerun_completes(echo_deployed):
    CATALOG.write_text(yaml.safe_dump(echo("medium")))
    before = runs()
    proc = start_deploy()
    wait_for_task("Run the replicas of echo", before)
    # Killed, as a host that loses power: `docker stop` would shut its systemd down in order, and
    # a task that sees its Docker engine go first fails (exit 2) instead of losing the host.
    subprocess.run(["docker", "kill", host_name(2)], check=True, capture_output=True)
    try:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 3, out + err
        doc = json.loads(out)
        assert doc["hosts"][host_name(2)]["unreachable"] >= 1
        for index in (1, 3):  # the hosts that stayed finished their rollout
            assert doc["hosts"][host_name(index)]["failed"] == 0 and doc["hosts"][host_name(index)]["unreachable"] == 0
            assert "model: medium" in on_host(index, "cat", "/etc/agentfactory/agents/echo/config.yml").stdout
    finally:
        # The lost host comes back (new SSH port: `lab up` rewrites the inventory), also when
        # the run above ended otherwise: the tests after this one need the whole lab.
        agentfactory("lab", "up", "--name", LAB, "--hosts", str(HOSTS), check=True)
    # A limited run completes the rollout there.
    code, doc = run_json("deploy", "--limit", host_name(2))
    assert code == 0, doc
    assert list(doc["hosts"]) == [host_name(2)]
    code, status = run_json("status")
    assert code == 0 and status["agents"]["echo"]["healthy"] == 2 * HOSTS


def test_ctrl_c_cancels_cleanly(echo_deployed):
    CATALOG.write_text(yaml.safe_dump(echo("large")))
    before = runs()
    proc = start_deploy()
    wait_for_task("Run the replicas of echo", before)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    doc = json.loads(out)  # the recap of what ran is still printed
    assert doc["status"] == "canceled" and doc["rc"] == 130
    for host in range(1, HOSTS + 1):
        states = on_host(host, "docker", "ps", "-a", "--filter", "label=agentfactory.agent=echo",
                         "--format", "{{.Names}} {{.State}}").stdout.split("\n")
        assert not [s for s in states if s.endswith(" created")], states  # nothing half-created
    # A plain re-run finishes the job.
    code, doc = run_json("deploy")
    assert code == 0, doc
    code, status = run_json("status")
    assert code == 0 and status["healthy"]


def test_memory_limits_beyond_the_hosts_memory_change_nothing(echo_deployed):
    """Limits the hosts cannot hold are refused on every host before any replica is replaced."""
    def ids() -> list[str]:
        return [on_host(host, "docker", "ps", "-q", "--filter", "label=agentfactory.agent=echo").stdout
                for host in range(1, HOSTS + 1)]

    CATALOG.write_text(yaml.safe_dump(echo("small")))
    assert agentfactory("deploy", "--yes").returncode == 0
    before = ids()
    greedy = echo("huge")
    greedy["agentfactory_agents"][0]["resources"] = {"memory": "4096g"}
    CATALOG.write_text(yaml.safe_dump(greedy))
    try:
        code, doc = run_json("deploy")
        assert code == 2, doc
        assert "memory limits of the replicas placed on" in json.dumps(doc), doc
        assert ids() == before
    finally:
        CATALOG.write_text(yaml.safe_dump(echo("small")))
