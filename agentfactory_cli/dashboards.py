"""Generate the Grafana fleet dashboard that the grafana role provisions.

The dashboard is built with grafanalib (a development-time dependency) and the JSON is committed
under roles/grafana/files/dashboards/, so Ansible never needs grafanalib at run time. After a
change here, regenerate and commit the file:

    python -m agentfactory_cli.dashboards          # rewrite the committed JSON
    python -m agentfactory_cli.dashboards --check  # exit 1 when the committed JSON is stale

A unit test fails when the committed file differs from what this module generates.

Metric contract (the same as the prometheus role's alert rules): the `node` job scrapes
node_exporter with a `host` label per inventory host; the `agents` job scrapes every agent
replica with `agent`, `host` and `replica` labels; agents expose prometheus-client's process
metrics and the `agentfactory_agent_healthy` gauge (1 healthy, 0 not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

# Must match the datasource the grafana role provisions (grafana_datasource_uid's default).
DATASOURCE_UID = "agentfactory-prometheus"
DASHBOARD_UID = "agentfactory-fleet"
OUTPUT = Path(__file__).resolve().parents[1] / "roles/grafana/files/dashboards/agentfactory-fleet.json"

_DS = {"type": "prometheus", "uid": DATASOURCE_UID}
_AGENTS = 'job="agents",agent=~"$agent",host=~"$host"'
_NODES = 'job="node",host=~"$host"'
_NIC = 'device!~"lo|veth.*|docker.*|br-.*|virbr.*"'


def _target(expr: str, legend: str = "", ref: str = "A") -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=_DS)


def _stat(title: str, expr: str, pos: tuple[int, int, int, int], description: str,
          red_above: float | None = None) -> Stat:
    thresholds = [{"color": "green", "value": None}]
    if red_above is not None:
        thresholds.append({"color": "red", "value": red_above})
    return Stat(
        title=title,
        description=description,
        dataSource=_DS,
        targets=[_target(expr)],
        gridPos=GridPos(h=pos[3], w=pos[2], x=pos[0], y=pos[1]),
        reduceCalc="lastNotNull",
        graphMode="none",
        noValue="0",
        thresholds=thresholds,
    )


def _series(title: str, expr: str, legend: str, unit: str, pos: tuple[int, int, int, int],
            description: str, **extra) -> TimeSeries:
    return TimeSeries(
        title=title,
        description=description,
        dataSource=_DS,
        targets=[_target(expr, legend)],
        gridPos=GridPos(h=pos[3], w=pos[2], x=pos[0], y=pos[1]),
        unit=unit,
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        **extra,
    )


def _template(name: str, label: str, query: str) -> Template:
    return Template(
        name=name,
        label=label,
        query=query,
        dataSource=_DS,
        includeAll=True,
        multi=True,
        allValue=".*",
        default="$__all",
        refresh=2,  # on time range change: new hosts and agents appear without a reload
        sort=1,
    )


def build_fleet_dashboard() -> Dashboard:
    """The fleet dashboard: agents (up, unhealthy, restarts, CPU, memory) and hosts."""
    panels = [
        RowPanel(title="Agents", gridPos=GridPos(h=1, w=24, x=0, y=0)),
        _stat("Replicas up", f"sum(up{{{_AGENTS}}})", (0, 1, 4, 4),
              "Agent replicas whose metrics endpoint answers."),
        _stat("Replicas down", f"count(up{{{_AGENTS}}} == 0) or vector(0)", (4, 1, 4, 4),
              "Agent replicas whose metrics endpoint does not answer.", red_above=1),
        _stat("Unhealthy replicas", f"count(agentfactory_agent_healthy{{{_AGENTS}}} == 0) or vector(0)",
              (8, 1, 4, 4), "Replicas that report themselves unhealthy.", red_above=1),
        _stat("Restarts (1h)", f"sum(changes(process_start_time_seconds{{{_AGENTS}}}[1h])) or vector(0)",
              (12, 1, 4, 4), "Process restarts of all selected replicas in the last hour.", red_above=3),
        _stat("Hosts up", f"sum(up{{{_NODES}}})", (16, 1, 4, 4), "Hosts whose node_exporter answers."),
        _stat("Hosts down", f"count(up{{{_NODES}}} == 0) or vector(0)", (20, 1, 4, 4),
              "Hosts whose node_exporter does not answer.", red_above=1),
        _series("Replicas up per agent", f"sum by (agent) (up{{{_AGENTS}}})", "{{agent}}", "none",
                (0, 5, 12, 8), "Replicas answering, per agent.", valueMin=0),
        _series("Restarts per agent (1h)",
                f"sum by (agent) (changes(process_start_time_seconds{{{_AGENTS}}}[1h]))", "{{agent}}",
                "none", (12, 5, 12, 8), "Process restarts in the last hour, per agent.", valueMin=0),
        _series("CPU per agent",
                f"sum by (agent) (rate(process_cpu_seconds_total{{{_AGENTS}}}[$__rate_interval]))",
                "{{agent}}", "none", (0, 13, 12, 8), "CPU cores used by all replicas of each agent.",
                valueMin=0),
        _series("Memory per agent", f"sum by (agent) (process_resident_memory_bytes{{{_AGENTS}}})",
                "{{agent}}", "bytes", (12, 13, 12, 8), "Resident memory of all replicas of each agent.",
                valueMin=0),
        _series("Agent CPU per host",
                f"sum by (host) (rate(process_cpu_seconds_total{{{_AGENTS}}}[$__rate_interval]))",
                "{{host}}", "none", (0, 21, 12, 8), "CPU cores used by agents, per host.", valueMin=0),
        _series("Agent memory per host", f"sum by (host) (process_resident_memory_bytes{{{_AGENTS}}})",
                "{{host}}", "bytes", (12, 21, 12, 8), "Resident memory of agents, per host.", valueMin=0),
        RowPanel(title="Hosts", gridPos=GridPos(h=1, w=24, x=0, y=29)),
        _series("Host CPU busy",
                f'100 * (1 - avg by (host) (rate(node_cpu_seconds_total{{{_NODES},mode="idle"}}'
                "[$__rate_interval])))",
                "{{host}}", "percent", (0, 30, 12, 8), "Share of CPU time not idle, all cores.",
                valueMin=0, valueMax=100),
        _series("Host memory used",
                f"100 * (1 - node_memory_MemAvailable_bytes{{{_NODES}}} / node_memory_MemTotal_bytes{{{_NODES}}})",
                "{{host}}", "percent", (12, 30, 12, 8), "Memory in use (MemAvailable based).",
                valueMin=0, valueMax=100),
        _series("Network received",
                f"sum by (host) (rate(node_network_receive_bytes_total{{{_NODES},{_NIC}}}[$__rate_interval]))",
                "{{host}}", "Bps", (0, 38, 12, 8), "Bytes received per second on physical interfaces.",
                valueMin=0),
        _series("Network sent",
                f"sum by (host) (rate(node_network_transmit_bytes_total{{{_NODES},{_NIC}}}[$__rate_interval]))",
                "{{host}}", "Bps", (12, 38, 12, 8), "Bytes sent per second on physical interfaces.",
                valueMin=0),
    ]
    return Dashboard(
        title="agentfactory fleet",
        uid=DASHBOARD_UID,
        description="Agents and hosts of the agentfactory fleet (generated by agentfactory_cli.dashboards).",
        tags=["agentfactory"],
        timezone="browser",
        refresh="30s",
        time=Time("now-3h", "now"),
        editable=False,
        templating=Templating(list=[
            _template("host", "Host", 'label_values(up{job="node"}, host)'),
            _template("agent", "Agent", 'label_values(up{job="agents"}, agent)'),
        ]),
        panels=panels,
    ).auto_panel_ids()


def render() -> str:
    """The dashboard as the JSON text that is committed (stable: sorted keys, trailing newline)."""
    data = build_fleet_dashboard().to_json_data()
    return json.dumps(data, cls=DashboardEncoder, sort_keys=True, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed JSON is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the JSON goes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m agentfactory_cli.dashboards", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
