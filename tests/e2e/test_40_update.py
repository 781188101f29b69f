"""Rolling updates on the lab: a good one, then bad ones that roll back and stop after a batch.

One agent, `delta`, 2 replicas on each of the 3 hosts, batches of one host. Versions are the
reference image with another AGENT_VERSION, shipped as archives (no registry needed).
"""

from __future__ import annotations

import json

import pytest
import yaml
from labcli import agentfactory, host_name, host_names, lab_dir, on_host, run_json, under_load

from agentfactory_cli.lab.agentimage import ensure_agent_variant

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"


def delta(version: str, **changes) -> dict:
    ref, archive = ensure_agent_variant(version, log=lambda m: None)
    agent = {"name": "delta", "image": ref, "image_source": "archive", "image_archive": str(archive),
             "replicas": 2, "host_port": 18500, "config": {"model": "small"}, "gateway": {"port": 28500},
             "health": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2},
             "update": {"batch": 1, "health_timeout": 25, "rollback": True}}
    agent.update(changes)
    return {k: v for k, v in agent.items() if v is not None}


def write(agent: dict) -> None:
    CATALOG.write_text(yaml.safe_dump({"agentfactory_agents": [agent]}, sort_keys=False))


def versions() -> dict[str, set[str]]:
    """host -> the versions its delta replicas report on /healthz."""
    found: dict[str, set[str]] = {}
    for index, host in enumerate(host_names(), start=1):
        answers = [on_host(index, "curl", "-s", f"http://{host}:{18500 + i}/healthz", check=False).stdout
                   for i in (0, 1)]
        found[host] = {json.loads(a).get("version", "?") if a.startswith("{") else "down" for a in answers}
    return found


@pytest.fixture(scope="module")
def delta_v1(bootstrapped):
    original = CATALOG.read_text() if CATALOG.exists() else None
    write(delta("1.0.0"))
    res = agentfactory("deploy", "--yes")  # also prunes the agents of earlier tests from the hosts
    assert res.returncode == 0, res.stdout + res.stderr
    yield
    if original is not None:
        CATALOG.write_text(original)


def test_good_update_replaces_every_replica(delta_v1):
    assert versions() == {host: {"1.0.0"} for host in host_names()}
    write(delta("1.0.1"))
    code, doc, requests = under_load(28500, "update", "--agent", "delta")
    assert code == 0, doc
    # Every replica was drained before it was replaced: not one request through the gateway failed.
    assert requests["failed"] == 0, requests
    assert requests["ok"] > 50, requests
    assert doc["update"]["updated"] == host_names()
    assert versions() == {host: {"1.0.1"} for host in host_names()}
    code, doc = run_json("update", "--agent", "delta")  # nothing left to do
    assert code == 0 and doc["update"]["unchanged"] == host_names()


def test_unhealthy_version_rolls_back_the_first_batch_and_stops(delta_v1):
    write(delta("1.0.1", config={"model": "small", "unhealthy": True}))
    code, doc, requests = under_load(28500, "update", "--agent", "delta")
    assert code == 2, doc
    # The replica that failed its gate was drained, and the others kept serving the old version.
    assert requests["failed"] == 0 and requests["ok"] > 50, requests
    assert doc["update"]["rolled_back"] == [host_name(1)]
    assert doc["update"]["untouched"] == host_names()[1:]
    code, status = run_json("status", "--agent", "delta")
    assert code == 0 and status["healthy"], status  # everything serves the old version again
    hashes = {r["config_hash"] for r in status["replicas"]}
    assert len(hashes) == 1  # both hosts run the same (previous) config


def test_missing_image_rolls_back(delta_v1):
    # An image nobody has, from a registry on loopback that is not there: the pull fails at once.
    before = versions()
    write(delta("1.0.1", image="127.0.0.1:5999/agents/missing:9", image_source="registry",
                 image_archive=None))
    code, doc = run_json("update", "--agent", "delta", "--batch", "1")
    assert code == 2, doc
    assert doc["update"]["rolled_back"] == [host_name(1)] and doc["update"]["untouched"] == host_names()[1:]
    assert versions() == before


def test_update_check_mode_changes_nothing(delta_v1):
    before = versions()
    write(delta("1.0.1" if before[host_name(1)] == {"1.0.0"} else "1.0.0"))
    code, doc = run_json("update", "--agent", "delta", "--check", "--diff")
    assert code == 0, doc
    assert versions() == before
