"""An agent shipped as an executable: runtime systemd, one unit instance per replica.

`gamma`, 2 replicas on each of the 3 hosts behind the gateway: deploy, idempotence, a config
change deployed under a request loop (rolled one replica at a time), then rolling updates that
work as they do for containers (drain, replace, health gate, enable; a failed gate rolls the
host back to the release recorded from its drop-ins), and a failed gate in a deploy does the same.
"""

from __future__ import annotations

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
    through_gateway,
    under_load,
)

from agentfactory_cli.paths import project_root

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"
UNITS = ("agentfactory-gamma@0.service", "agentfactory-gamma@1.service")
DROPIN = "/etc/systemd/system/agentfactory-gamma@{}.service.d/release.conf"


def gamma(model: str, **changes) -> dict:
    agent = {"name": "gamma", "runtime": "systemd", "replicas": 2, "host_port": 18300, "gateway": {"port": 28300},
             "command": ["/usr/bin/python3", "/opt/agentfactory/bin/reference-agent"],
             "health": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2},
             "config": {"model": model}, "update": {"batch": 1, "health_timeout": 20, "rollback": True}}
    agent.update(changes)
    return agent


@pytest.fixture(scope="module")
def with_gamma(bootstrapped):
    original = yaml.safe_load(CATALOG.read_text()) if CATALOG.exists() else {"agentfactory_agents": []}
    doc = {
        "agentfactory_agents": [gamma("small")],
        # The reference agent as an executable: its libraries from Debian, the script from the repo.
        "agent_systemd_packages": ["python3-yaml", "python3-prometheus-client"],
        "agent_systemd_files": [{"src": str(project_root() / "agents/reference/agent.py"),
                                 "dest": "/opt/agentfactory/bin/reference-agent", "mode": "0755"}],
    }
    write(doc)
    yield doc
    write(original)


def write(doc: dict) -> None:
    CATALOG.write_text(yaml.safe_dump(doc, sort_keys=False))


def with_agent(doc: dict, agent: dict) -> dict:
    return {**doc, "agentfactory_agents": [agent]}


def pids(host: int) -> dict[str, str]:
    return {unit: on_host(host, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
            for unit in UNITS}


def releases() -> dict[str, set[str]]:
    """host -> the config hashes its gamma replicas run (from `status`)."""
    code, doc = run_json("status", "--agent", "gamma")
    assert code == 0, doc  # every replica healthy
    found: dict[str, set[str]] = {}
    for replica in doc["replicas"]:
        found.setdefault(replica["host"], set()).add(replica["config_hash"])
    return found


def test_systemd_agent_deploys_healthy(with_gamma):
    res = agentfactory("deploy", "--agent", "gamma")
    assert res.returncode == 0, res.stdout + res.stderr
    code, doc = run_json("status", "--agent", "gamma")
    assert code == 0, doc
    assert doc["agents"]["gamma"] == {"desired": 2 * HOSTS, "running": 2 * HOSTS, "healthy": 2 * HOSTS,
                                      "unknown": 0, "hosts": HOSTS}
    assert {r["name"] for r in doc["replicas"]} == set(UNITS)
    user = on_host(2, "ps", "-o", "user=", "-C", "python3").stdout.split()
    assert "agentfa+" in user or "agentfactory" in user  # not root
    # Through the gateway.
    status, body = through_gateway(28300, "/v1/task", data='{"input": "ping"}')
    assert status == 200 and body.startswith("{"), (status, body)
    # Without a key: 401; with a key not allowed for this agent: 403 (the gateway, not the agent).
    assert through_gateway(28300, "/v1/task", data='{"input": "ping"}', client=None)[0] == 401
    assert through_gateway(28300, "/v1/task", data='{"input": "ping"}', client="limited")[0] == 403


def test_systemd_agent_redeploy_is_idempotent_and_config_change_restarts(with_gamma):
    code, doc = run_json("deploy", "--agent", "gamma")
    assert code == 0 and {h: c["changed"] for h, c in doc["hosts"].items()} == dict.fromkeys(host_names(), 0), doc
    before = pids(2)
    write(with_agent(with_gamma, gamma("large")))
    code, doc, requests = under_load(28300, "deploy", "--agent", "gamma")
    print(f"requests through the gateway while gamma's config change was deployed: {requests}")
    assert code == 0, doc
    assert requests["failed"] == 0 and requests["ok"] > 50, requests
    after = pids(2)
    assert all(after[u] != before[u] for u in before), (before, after)
    assert "model: large" in on_host(2, "cat", "/etc/agentfactory/agents/gamma/config.yml").stdout


def test_systemd_rolling_update_drops_no_request(with_gamma):
    old = releases()
    assert len(set().union(*old.values())) == 1, old
    before = pids(3)
    write(with_agent(with_gamma, gamma("medium")))
    code, doc, requests = under_load(28300, "update", "--agent", "gamma")
    assert code == 0, doc
    assert requests["failed"] == 0 and requests["ok"] > 50, requests
    assert doc["update"]["updated"] == host_names()
    new = releases()
    assert len(set().union(*new.values())) == 1 and new != old, (old, new)
    assert all(pid != before[unit] for unit, pid in pids(3).items())
    code, doc = run_json("update", "--agent", "gamma")  # nothing left to do
    assert code == 0 and doc["update"]["unchanged"] == host_names(), doc


@pytest.mark.parametrize("bad", [
    pytest.param({"config": {"model": "medium", "unhealthy": True}}, id="unhealthy"),
    pytest.param({"command": ["/opt/agentfactory/bin/missing-agent"]}, id="missing-executable"),
])
def test_systemd_bad_update_rolls_back_first_batch(with_gamma, bad):
    before = releases()
    dropins = [on_host(1, "cat", DROPIN.format(i)).stdout for i in (0, 1)]
    write(with_agent(with_gamma, gamma("medium", **bad)))
    code, doc, requests = under_load(28300, "update", "--agent", "gamma")
    assert code == 2, doc
    assert doc["update"]["rolled_back"] == [host_name(1)]
    assert doc["update"]["untouched"] == host_names()[1:]
    assert requests["failed"] == 0, requests  # the old release kept serving through the gateway
    assert releases() == before  # every host, every replica healthy on the release it had
    assert [on_host(1, "cat", DROPIN.format(i)).stdout for i in (0, 1)] == dropins


def test_systemd_deploy_with_a_failed_gate_rolls_back_the_first_host(with_gamma):
    """A deploy rolls a change out as an update does: an unhealthy release fails the gate on the
    first host, which goes back to what it ran; the other hosts are not touched."""
    before = releases()
    dropins = [on_host(1, "cat", DROPIN.format(i)).stdout for i in (0, 1)]
    write(with_agent(with_gamma, gamma("medium", config={"model": "medium", "unhealthy": True})))
    code, doc, requests = under_load(28300, "deploy", "--agent", "gamma")
    print(f"requests through the gateway while an unhealthy release was deployed: {requests}")
    assert code == 2, doc
    assert requests["failed"] == 0, requests
    assert releases() == before
    assert [on_host(1, "cat", DROPIN.format(i)).stdout for i in (0, 1)] == dropins


def test_systemd_agent_destroy(with_gamma):
    assert agentfactory("destroy", "--agent", "gamma", "--yes").returncode == 0
    for host in range(1, HOSTS + 1):
        assert on_host(host, "test", "-e", "/etc/systemd/system/agentfactory-gamma@.service",
                       check=False).returncode == 1
        assert on_host(host, "test", "-e", DROPIN.format(0), check=False).returncode == 1
        assert on_host(host, "systemctl", "is-active", UNITS[0], check=False).stdout.strip() != "active"
