"""The fleet dashboard: the committed JSON is what agentfactory_cli.dashboards generates."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from agentfactory_cli import dashboards

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dashboard_is_regenerated_unchanged():
    committed = dashboards.OUTPUT.read_text()
    assert committed == dashboards.render(), (
        "roles/grafana/files/dashboards/agentfactory-fleet.json is stale: "
        "run `python -m agentfactory_cli.dashboards` and commit the result"
    )


def test_check_mode_of_the_generator(tmp_path, capsys):
    out = tmp_path / "fleet.json"
    assert dashboards.main(["--check", "--output", str(out)]) == 1
    assert dashboards.main(["--output", str(out)]) == 0
    assert dashboards.main(["--check", "--output", str(out)]) == 0


def test_dashboard_uses_the_provisioned_datasource():
    data = json.loads(dashboards.render())
    defaults = yaml.safe_load((ROOT / "roles/grafana/defaults/main.yml").read_text())
    assert defaults["grafana_datasource_uid"] == dashboards.DATASOURCE_UID
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": dashboards.DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == dashboards.DATASOURCE_UID


def test_dashboard_covers_agents_and_hosts():
    data = json.loads(dashboards.render())
    assert data["uid"] == "agentfactory-fleet"
    titles = {p["title"] for p in data["panels"]}
    assert {"Replicas up", "Replicas down", "Unhealthy replicas", "Restarts (1h)", "CPU per agent",
            "Memory per agent", "Agent CPU per host", "Agent memory per host", "Host CPU busy",
            "Host memory used", "Network received", "Network sent"} <= titles
    exprs = " ".join(t["expr"] for p in data["panels"] for t in p.get("targets", []))
    # The metric contract shared with the prometheus role's rules.
    for needle in ('job="agents"', 'job="node"', "agentfactory_agent_healthy", "process_start_time_seconds",
                   "process_cpu_seconds_total", "process_resident_memory_bytes", "node_cpu_seconds_total",
                   "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total"):
        assert needle in exprs
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in data["templating"]["list"]} == {"host", "agent"}
