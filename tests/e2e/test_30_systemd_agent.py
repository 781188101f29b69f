"""An agent shipped as an executable: runtime systemd, one unit instance per replica."""

from __future__ import annotations

import pytest
import yaml
from labcli import agentfactory, lab_dir, on_host, run_json

from agentfactory_cli.paths import project_root

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"


def gamma(model: str) -> dict:
    return {"name": "gamma", "runtime": "systemd", "replicas": 2, "host_port": 18300, "hosts": "af-e2e-2",
            "command": ["/usr/bin/python3", "/opt/agentfactory/bin/reference-agent"],
            "config": {"model": model}, "update": {"health_timeout": 90}}


def write(doc: dict) -> None:
    CATALOG.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def with_gamma(bootstrapped):
    original = yaml.safe_load(CATALOG.read_text()) if CATALOG.exists() else {"agentfactory_agents": []}
    doc = {
        **original,
        "agentfactory_agents": [*original.get("agentfactory_agents", []), gamma("small")],
        # The reference agent as an executable: its libraries from Debian, the script from the repo.
        "agent_systemd_packages": ["python3-yaml", "python3-prometheus-client"],
        "agent_systemd_files": [{"src": str(project_root() / "agents/reference/agent.py"),
                                 "dest": "/opt/agentfactory/bin/reference-agent", "mode": "0755"}],
    }
    write(doc)
    yield doc
    write(original)


def pids(host: int) -> dict[str, str]:
    return {unit: on_host(host, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
            for unit in ("agentfactory-gamma@0.service", "agentfactory-gamma@1.service")}


def test_systemd_agent_deploys_healthy(with_gamma):
    res = agentfactory("deploy", "--agent", "gamma")
    assert res.returncode == 0, res.stdout + res.stderr
    code, doc = run_json("status", "--agent", "gamma")
    assert code == 0, doc
    assert doc["agents"]["gamma"] == {"desired": 2, "running": 2, "healthy": 2, "hosts": 1}
    assert {r["name"] for r in doc["replicas"]} == {"agentfactory-gamma@0.service", "agentfactory-gamma@1.service"} \
        or {r["name"] for r in doc["replicas"]} == {"gamma-0", "gamma-1"}
    user = on_host(2, "ps", "-o", "user=", "-C", "python3").stdout.split()
    assert "agentfa+" in user or "agentfactory" in user  # not root
    assert on_host(1, "test", "-e", "/etc/systemd/system/agentfactory-gamma@.service", check=False).returncode == 1


def test_systemd_agent_redeploy_is_idempotent_and_config_change_restarts(with_gamma):
    code, doc = run_json("deploy", "--agent", "gamma")
    assert code == 0 and doc["hosts"]["af-e2e-2"]["changed"] == 0
    before = pids(2)
    write({**with_gamma, "agentfactory_agents": [*with_gamma["agentfactory_agents"][:-1], gamma("large")]})
    assert agentfactory("deploy", "--agent", "gamma").returncode == 0
    after = pids(2)
    assert all(after[u] != before[u] for u in before), (before, after)
    assert "model: large" in on_host(2, "cat", "/etc/agentfactory/agents/gamma/config.yml").stdout


def test_systemd_agent_destroy(with_gamma):
    assert agentfactory("destroy", "--agent", "gamma", "--yes").returncode == 0
    assert on_host(2, "test", "-e", "/etc/systemd/system/agentfactory-gamma@.service", check=False).returncode == 1
    assert on_host(2, "systemctl", "is-active", "agentfactory-gamma@0.service", check=False).stdout.strip() != "active"
