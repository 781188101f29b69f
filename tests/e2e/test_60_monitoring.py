"""Monitoring on the lab: Prometheus scrapes every host and every agent replica the catalog places.

Runs last: it installs Prometheus and Alertmanager (the lab skips Grafana, see the README) on
the first host and reads Prometheus's own API there.
"""

from __future__ import annotations

import json
import time

import yaml
from labcli import agentfactory, host_names, lab_dir, on_host

from agentfactory_cli.agentimage import ensure_agent_archive

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"


def targets() -> list[dict]:
    out = on_host(1, "curl", "-s", "http://127.0.0.1:9090/api/v1/targets?state=active").stdout
    return json.loads(out)["data"]["activeTargets"]


def test_every_node_and_replica_is_scraped(bootstrapped):
    ref, archive = ensure_agent_archive(log=lambda m: None)
    CATALOG.write_text(yaml.safe_dump({"agentfactory_agents": [{
        "name": "watched", "image": ref, "image_source": "archive", "image_archive": str(archive),
        "replicas": 2, "host_port": 18700, "health": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2},
    }]}))
    assert agentfactory("deploy").returncode == 0
    res = agentfactory("monitoring")
    assert res.returncode == 0, res.stdout + res.stderr
    placed = json.loads(agentfactory("status", "--json").stdout)["replicas"]
    assert placed, "the catalog places no agent: nothing to scrape"
    deadline = time.monotonic() + 90
    while True:
        active = targets()
        agents = {(t["labels"]["host"], t["labels"]["replica"]): t["health"] for t in active
                  if t["labels"].get("job") == "agents"}
        nodes = {t["labels"]["host"]: t["health"] for t in active if t["labels"].get("job") == "node"}
        if (len(agents) == len(placed) and set(agents.values()) == {"up"}
                and set(nodes.values()) == {"up"}) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert len(agents) == len(placed), (agents, placed)
    assert set(agents.values()) == {"up"}, agents
    assert nodes == dict.fromkeys(host_names(), "up")
