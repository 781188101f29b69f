"""Monitoring on the lab: Prometheus scrapes every host and every agent replica the catalog places.

Runs last: it installs Prometheus and Alertmanager (the lab skips Grafana, see the README) on
the first host and reads Prometheus's own API there.
"""

from __future__ import annotations

import json
import subprocess
import time

import yaml
from labcli import agentfactory, host_name, host_names, lab_dir, lab_secrets

from agentfactory_cli.lab.agentimage import ensure_agent_archive

CATALOG = lab_dir() / "group_vars" / "all" / "agents.yml"


def prometheus_get(path: str, password: str | None = None) -> tuple[str, str]:
    """GET on Prometheus from its host, over TLS with the lab CA: (HTTP status, body). The
    password goes in on stdin as curl's config (never on a command line)."""
    password = lab_secrets()["vault_prometheus_password"] if password is None else password
    res = subprocess.run(
        ["docker", "exec", "-i", host_name(1), "curl", "-s", "-K", "-", "--cacert", "/etc/agentfactory/pki/ca.crt",
         "-w", "\n%{http_code}", f"https://127.0.0.1:9090{path}"],
        input=f'user = "admin:{password}"\n' if password else "", capture_output=True, text=True, timeout=60)
    body, _, status = res.stdout.rpartition("\n")
    return status, body


def targets() -> list[dict]:
    status, body = prometheus_get("/api/v1/targets?state=active")
    assert status == "200", (status, body)
    return json.loads(body)["data"]["activeTargets"]


def test_every_node_and_replica_is_scraped(bootstrapped):
    ref, archive = ensure_agent_archive(log=lambda m: None)
    CATALOG.write_text(yaml.safe_dump({"agentfactory_agents": [{
        "name": "watched", "image": ref, "image_source": "archive", "image_archive": str(archive),
        "replicas": 2, "host_port": 18700, "health": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 2},
    }]}))
    assert agentfactory("deploy", "--yes").returncode == 0
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
        secured = [t for t in active if t["labels"].get("job") in ("prometheus", "alertmanager", "node", "gateway")]
        if (len(agents) == len(placed) and set(agents.values()) == {"up"}
                and {t["health"] for t in secured} == {"up"}) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert len(agents) == len(placed), (agents, placed)
    assert set(agents.values()) == {"up"}, agents
    assert nodes == dict.fromkeys(host_names(), "up")
    # Prometheus, Alertmanager, the exporters and the gateway are scraped over TLS with credentials.
    assert all(t["scrapeUrl"].startswith("https://") for t in secured), [t["scrapeUrl"] for t in secured]
    assert {t["labels"]["job"]: t["health"] for t in secured if t["health"] != "up"} == {}, \
        [(t["scrapeUrl"], t["lastError"]) for t in secured if t["health"] != "up"]


def test_prometheus_asks_for_credentials(bootstrapped):
    assert prometheus_get("/api/v1/targets", password="")[0] == "401"
    assert prometheus_get("/api/v1/targets", password="not-the-password")[0] == "401"
