"""Agents on the lab: deploy, idempotence, config change, scale, stop/start, a crash, destroy.

Two agents from the reference image (shipped as a `docker save` archive) on every host; every
check reads the real state, through `agentfactory status --json` or on the hosts themselves.
alpha is behind the gateway: its config and secret changes and its scaling run under a request
loop through the gateway, and not one request may fail.
"""

from __future__ import annotations

import os
import time

import pytest
import yaml
from labcli import (
    HOSTS,
    agentfactory,
    host_name,
    host_names,
    lab_dir,
    on_host,
    run_json,
    start_load,
    stop_load,
    under_load,
)

from agentfactory_cli.lab.agentimage import ensure_agent_archive

ALPHA_PORT = 28100


def catalog(alpha_model: str = "small", alpha_secret: str = "first-test-token") -> dict:
    ref, archive = ensure_agent_archive(log=lambda m: None)
    common = {"image": ref, "image_source": "archive", "image_archive": str(archive),
              "health": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2},
              "update": {"batch": 1, "health_timeout": 90, "rollback": True}}
    return {"agentfactory_agents": [
        {"name": "alpha", "replicas": 2, "host_port": 18100, "config": {"model": alpha_model},
         "secrets": {"TOKEN": alpha_secret}, "gateway": {"port": ALPHA_PORT}, **common},
        {"name": "beta", "replicas": 1, "host_port": 18200, "config": {"model": "tiny"},
         "secrets": {"API_KEY": "not-a-real-key"}, **common},
    ]}


def write_catalog(doc: dict) -> None:
    path = lab_dir() / "group_vars" / "all" / "agents.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def status() -> tuple[int, dict]:
    return run_json("status")


def containers(host: int) -> dict[str, dict]:
    """name -> {id, started} of the agent containers on a host."""
    out = on_host(host, "docker", "ps", "-a", "--filter", "label=agentfactory.agent",
                  "--format", "{{.Names}} {{.ID}} {{.Status}}").stdout
    return {line.split()[0]: {"id": line.split()[1], "status": " ".join(line.split()[2:])}
            for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def deployed(bootstrapped):
    write_catalog(catalog())
    res = agentfactory("deploy")
    assert res.returncode == 0, res.stdout + res.stderr
    return bootstrapped


def test_deploy_brings_every_replica_up_healthy(deployed):
    code, doc = status()
    assert code == 0, doc
    assert doc["healthy"] is True
    assert doc["agents"]["alpha"] == {"desired": 2 * HOSTS, "running": 2 * HOSTS, "healthy": 2 * HOSTS, "unknown": 0,
                                      "hosts": HOSTS}
    assert doc["agents"]["beta"] == {"desired": HOSTS, "running": HOSTS, "healthy": HOSTS, "unknown": 0,
                                     "hosts": HOSTS}
    assert sorted(containers(1)) == ["alpha-0", "alpha-1", "beta-0"]
    # The secret is a file readable by the agent only, and is not in the container's env.
    mode = on_host(1, "stat", "-c", "%a %u", "/etc/agentfactory/agents/beta/secrets/API_KEY").stdout.split()
    assert mode == ["600", "10001"]
    env = on_host(1, "docker", "inspect", "--format", "{{json .Config.Env}}", "beta-0").stdout
    assert "not-a-real-key" not in env


def test_second_deploy_changes_nothing_and_a_concurrent_one_is_turned_away(deployed):
    """Two deploys at once against one fleet: one runs (and changes nothing), the other is refused
    at once with exit 75 naming the run that holds the fleet, before it touches any host."""
    import json
    import subprocess

    from labcli import LAB, cli_executable

    env = {**os.environ, "AGENTFACTORY_LAB": LAB}
    first = subprocess.Popen([cli_executable(), "deploy", "--json"], stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(2)  # a no-change deploy takes a minute or more: the second starts while it runs
    started = time.monotonic()
    code, second = run_json("deploy")
    refused_after = time.monotonic() - started
    out, _ = first.communicate(timeout=1200)
    runs = [(first.returncode, json.loads(out)), (code, second)]
    refused = [doc for rc, doc in runs if rc == 75]
    ran = [doc for rc, doc in runs if rc == 0]
    assert len(refused) == 1 and len(ran) == 1, runs
    # The holder is the deploy, or its check-mode listing of what it would remove (`deploy-listing`).
    assert "another run holds this fleet: `deploy" in refused[0]["error"]
    assert refused[0]["status"] == "not_run" and refused[0]["hosts"] == {}
    assert {h: c["changed"] for h, c in ran[0]["hosts"].items()} == dict.fromkeys(host_names(), 0)
    if code == 75:
        assert refused_after < 30, f"the second deploy took {refused_after:.0f}s to be refused"


def assert_no_request_failed(requests: dict, what: str) -> None:
    print(f"requests through the gateway while {what}: {requests}")
    assert requests["failed"] == 0, requests
    assert requests["ok"] > 50, requests
    assert requests["p99_ms"] < 1000, requests


def test_a_config_and_secret_change_rolls_out_without_a_failed_request(deployed):
    """A deploy that changes an agent behind the gateway (here its config and its secret)
    replaces its replicas one at a time: drained, replaced, gated, enabled."""
    before = containers(1)
    write_catalog(catalog(alpha_model="large", alpha_secret="second-test-token"))
    code, doc, requests = under_load(ALPHA_PORT, "deploy")
    assert code == 0, doc
    assert_no_request_failed(requests, "alpha's config and secret changed")
    after = containers(1)
    assert after["alpha-0"]["id"] != before["alpha-0"]["id"]
    assert after["alpha-1"]["id"] != before["alpha-1"]["id"]
    assert after["beta-0"]["id"] == before["beta-0"]["id"]
    rendered = on_host(1, "cat", "/etc/agentfactory/agents/alpha/config.yml").stdout
    assert "model: large" in rendered
    assert on_host(1, "cat", "/etc/agentfactory/agents/alpha/secrets/TOKEN").stdout == "second-test-token"


def gateway_servers(agent: str) -> list[str]:
    """The servers of an agent's backend in the gateway's live haproxy.cfg."""
    config = on_host(1, "cat", "/etc/haproxy/haproxy.cfg").stdout
    lines = [line.split() for line in config.splitlines()]
    return [words[1] for words in lines if words[:1] == ["server"] and f"_{agent}-" in words[1]]


def test_scale_up_and_down_without_a_failed_request(deployed):
    """scale up enables a replica once it is healthy, scale down drains one before it goes."""
    load = start_load(ALPHA_PORT, seconds=600)
    try:
        scale_up_and_down()
    finally:
        requests = stop_load(load)
    assert_no_request_failed(requests, "alpha scaled 2 -> 3 -> 2 per host")


def scale_up_and_down() -> None:
    assert len(gateway_servers("alpha")) == 2 * HOSTS
    assert agentfactory("scale", "--agent", "alpha", "--replicas", "3").returncode == 0
    assert len(gateway_servers("alpha")) == 3 * HOSTS  # the gateway follows the scale
    assert sorted(n for n in containers(2) if n.startswith("alpha")) == ["alpha-0", "alpha-1", "alpha-2"]
    _code, doc = status()
    alpha = [r for r in doc["replicas"] if r["agent"] == "alpha"]
    assert len(alpha) == 3 * HOSTS and all(r["health"] == "healthy" for r in alpha)
    # Status measures against the catalog: the third replica on each host is beyond it.
    assert sorted(r["name"] for r in alpha if not r["desired"]) == ["alpha-2"] * HOSTS
    # Down to the catalog's count: the replica beyond it is drained, removed and leaves the backend.
    assert agentfactory("scale", "--agent", "alpha", "--replicas", "2").returncode == 0
    assert sorted(n for n in containers(2) if n.startswith("alpha")) == ["alpha-0", "alpha-1"]
    assert sorted(gateway_servers("alpha")) == sorted(f"{host}_alpha-{i}" for host in host_names() for i in (0, 1))


def test_stop_then_start(deployed):
    assert agentfactory("stop", "--agent", "beta").returncode == 0
    code, doc = status()
    assert code == 2  # not every desired replica is healthy
    beta = [r for r in doc["replicas"] if r["agent"] == "beta"]
    assert {r["state"] for r in beta} == {"exited"}
    assert agentfactory("start", "--agent", "beta").returncode == 0
    code, doc = status()
    assert code == 0 and doc["healthy"]


def test_killed_replica_comes_back_and_status_shows_it(deployed):
    pid = on_host(1, "docker", "inspect", "--format", "{{.State.Pid}}", "alpha-0").stdout.strip()
    on_host(1, "kill", "-9", pid)  # the agent's process dies, as in a crash
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        code, doc = status()
        replica = next(r for r in doc["replicas"] if r["host"] == host_name(1) and r["name"] == "alpha-0")
        if replica["restarts"] >= 1 and replica["health"] == "healthy":
            break
        time.sleep(2)
    assert replica["restarts"] >= 1, replica
    assert replica["health"] == "healthy", replica
    assert code == 0


def test_unknown_agent_is_invalid_input(deployed):
    res = agentfactory("stop", "--agent", "gamma")
    assert res.returncode == 4
    assert "unknown agent(s): gamma" in res.stderr


def test_deploy_asks_before_removing_an_agent_gone_from_the_catalog(deployed):
    full = catalog()
    write_catalog({"agentfactory_agents": full["agentfactory_agents"][:1]})  # beta is gone
    try:
        res = agentfactory("deploy")  # no terminal to ask on: refused, nothing removed
        assert res.returncode == 4, res.stdout[-2000:] + res.stderr
        assert "beta" in res.stderr and "--yes" in res.stderr
        for host in range(1, HOSTS + 1):
            assert "beta-0" in containers(host)
    finally:
        write_catalog(full)


def test_destroy_leaves_nothing_behind(deployed):
    res = agentfactory("destroy", "--agent", "beta")  # no terminal: refuses without --yes
    assert res.returncode == 4 and "--yes" in res.stderr
    assert "beta-0" in containers(1)
    assert agentfactory("destroy", "--agent", "beta", "--yes").returncode == 0
    for host in range(1, HOSTS + 1):
        assert not [n for n in containers(host) if n.startswith("beta")]
        assert on_host(host, "test", "-e", "/etc/agentfactory/agents/beta", check=False).returncode == 1
    _code, doc = status()
    assert "beta" not in doc["agents"] or doc["agents"]["beta"]["running"] == 0
