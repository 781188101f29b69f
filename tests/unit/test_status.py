"""`status` tells the truth: the replicas of a host that does not report are unknown, not
dropped, and an empty catalog is not a healthy fleet. Fake event streams, no Ansible run."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from conftest import no_task
from rich.console import Console

from agentfactory_cli import cli, errors, runner, status
from agentfactory_cli.runner import RunEvents, RunResult
from agentfactory_cli.status import StatusDisplay

HOSTS = ["af-lab-1", "af-lab-2", "af-lab-3"]


def counts(**kw):
    return {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0, **kw}


def report(host: str, agent: str = "reference", desired: int = 3, healthy: int | None = None) -> dict:
    """agent_health's runner_on_ok for one host: `healthy` of its `desired` replicas (all by default)."""
    healthy = desired if healthy is None else healthy
    replicas = [{"agent": agent, "name": f"{agent}-{i}", "state": "running",
                 "health": "healthy" if i < healthy else "unhealthy"} for i in range(desired)]
    res = {"agents": {agent: {"desired": desired, "running": desired, "healthy": healthy}}, "replicas": replicas}
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": "Report",
                                                     "task_action": "agentfactory.fleet.agent_health", "res": res}}


def unreachable(host: str) -> dict:
    return {"event": "runner_on_unreachable", "event_data": {"host": host, "task": "Report",
                                                              "res": {"msg": "ssh: connect to host: No route"}}}


def display(desired, json_mode=False):
    out = StringIO()
    d = StatusDisplay(desired=desired, json_mode=json_mode, err=Console(file=StringIO(), width=300),
                      out=Console(file=out, width=300))
    d.progress = RunEvents({status.HEALTH: status.health_report})  # as the runner's start() gives it
    return d, out


def send(d: StatusDisplay, ev: dict) -> None:
    """An event as the runner handles it: folded into the run's result, then shown."""
    d.progress.add(ev)
    d.event(ev)


def outage(d: StatusDisplay) -> RunResult:
    """af-lab-3 is down: the two others report 3 healthy replicas each."""
    for host in HOSTS[:2]:
        send(d, report(host))
    send(d, unreachable(HOSTS[2]))
    return d.progress.result("failed", 4, Path("/a"), verb="status")


def test_the_replicas_of_an_unreachable_host_are_unknown_not_dropped():
    d, out = display({h: {"reference": 3} for h in HOSTS})
    result = outage(d)
    d.finish(result)
    lines = out.getvalue().splitlines()
    line = next(ln for ln in lines if ln.startswith("reference:"))
    assert line == "reference: 6/9 healthy, 3 unknown: af-lab-3 unreachable (6 running on the 2 host(s) that answered)"
    assert not d.healthy(result)
    assert d.exit_code(result) == errors.EXIT_UNREACHABLE


def test_the_document_of_status_counts_the_unknown(capsys):
    d, _ = display({h: {"reference": 3} for h in HOSTS}, json_mode=True)
    d.finish(outage(d))
    doc = json.loads(capsys.readouterr().out)
    assert doc["agents"]["reference"] == {"desired": 9, "running": 6, "healthy": 6, "unknown": 3, "hosts": 2}
    assert doc["unknown_hosts"] == {"af-lab-3": "unreachable"}
    assert doc["healthy"] is False and doc["rc"] == errors.EXIT_UNREACHABLE


def test_unknown_hosts_are_named_by_why_and_only_for_their_agents():
    desired = {"af-lab-1": {"reference": 2}, "af-lab-2": {"reference": 2, "bot": 1}, "af-lab-3": {"bot": 4}}
    d, out = display(desired)
    send(d, report("af-lab-1", desired=2))
    send(d, unreachable("af-lab-2"))
    send(d, {"event": "runner_on_failed", "event_data": {"host": "af-lab-3", "task": "Report",
                                                          "res": {"msg": "sudo: a password is required"}}})
    d.finish(d.progress.result("failed", 2, Path("/a")))
    text = out.getvalue()
    assert "bot: 0/5 healthy, 5 unknown: af-lab-2 unreachable; af-lab-3 failed\n" in text
    assert "reference: 2/4 healthy, 2 unknown: af-lab-2 unreachable (2 running on the 1 host(s) that answered)" in text


def test_a_host_the_run_never_reached_is_unknown_too():
    d, out = display({"af-lab-1": {"reference": 1}, "af-lab-2": {"reference": 1}})
    send(d, report("af-lab-1", desired=1))
    result = d.progress.result("canceled", None, Path("/a"), canceled=True)
    d.finish(result)
    assert "reference: 1/2 healthy, 1 unknown: af-lab-2 not reached" in out.getvalue()


def test_a_reachable_host_without_a_report_has_nothing_placed_by_its_own_catalog():
    # It skipped agent_health: its host_vars catalog places nothing there, whatever the first host's view says.
    d, out = display({"af-lab-1": {"reference": 1}, "af-lab-2": {"reference": 1}})
    send(d, report("af-lab-1", desired=1))
    send(d, {"event": "runner_on_skipped", "event_data": {"host": "af-lab-2", "task": "Report"}})
    result = d.progress.result("successful", 0, Path("/a"))
    d.finish(result)
    assert "reference: 1/1 healthy (1 running on 1 host(s))" in out.getvalue()
    assert d.exit_code(result) == errors.EXIT_OK


def test_a_healthy_fleet_still_reads_as_before():
    d, out = display({h: {"reference": 3} for h in HOSTS})
    for host in HOSTS:
        send(d, report(host))
    result = d.progress.result("successful", 0, Path("/a"))
    d.finish(result)
    assert "reference: 9/9 healthy (9 running on 3 host(s))" in out.getvalue()
    assert d.exit_code(result) == errors.EXIT_OK


# --- through the CLI: the desired replicas come from the catalog it loaded ------------------


def lab_inventory(tmp_path, agents) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_host": "127.0.0.1", "ansible_port": 9},  # nothing listens there
        "children": {"agent_hosts": {"hosts": dict.fromkeys(HOSTS)}, "gpu": {"hosts": {"af-lab-1": None}}},
    }}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({"agentfactory_agents": agents}))
    return inv


CATALOG = [{"name": "reference", "image": "r/reference:1", "replicas": 3, "host_port": 18080},
           {"name": "bot", "image": "r/bot:1", "replicas": 2, "host_port": 19080, "hosts": "gpu"}]


@pytest.mark.parametrize(("extra", "desired"), [
    ([], {"af-lab-1": {"reference": 3, "bot": 2}, "af-lab-2": {"reference": 3}, "af-lab-3": {"reference": 3}}),
    (["--agent", "bot"], {"af-lab-1": {"bot": 2}}),
    (["--limit", "af-lab-1"], {"af-lab-1": {"reference": 3, "bot": 2}}),
    (["--limit", "agent_hosts", "--agent", "reference"], {h: {"reference": 3} for h in HOSTS}),
    (["--limit", "af-lab-3"], {"af-lab-3": {"reference": 3}}),
])
def test_the_request_of_status_carries_the_catalogs_placement(tmp_path, extra, desired):
    args = cli.build_parser().parse_args(["status", "-i", str(lab_inventory(tmp_path, CATALOG)), *extra])
    assert cli.playbook_request(args).desired == desired


def test_status_through_the_cli_during_a_host_outage(tmp_path, monkeypatch, capsys):
    def fake_run(req, display, gate=None):
        gate()  # the preflight: what the catalog places on each host, for the unknown counts
        display.start(req, RunEvents(req.extract))  # as run_playbook does once the gate is open
        try:
            return outage(display)
        finally:
            display.stop()

    monkeypatch.setattr(runner, "run_playbook", fake_run)
    inv = lab_inventory(tmp_path, CATALOG[:1])
    assert cli.main(["status", "-i", str(inv)]) == errors.EXIT_UNREACHABLE
    assert "reference: 6/9 healthy, 3 unknown: af-lab-3 unreachable" in capsys.readouterr().out


# --- an empty catalog is nothing to report, not a healthy fleet -----------------------------


@pytest.mark.parametrize("catalog", [[], None])
def test_status_of_an_empty_catalog_says_so_and_runs_nothing(tmp_path, monkeypatch, capsys, catalog):
    monkeypatch.setattr(runner, "run_playbook", no_task)
    inv = lab_inventory(tmp_path, [])
    if catalog is None:  # no agentfactory_agents at all
        (inv / "group_vars" / "all.yml").unlink()
    assert cli.main(["status", "-i", str(inv)]) == errors.EXIT_INVALID_INPUT
    captured = capsys.readouterr()
    assert "healthy" not in captured.out + captured.err
    assert "no agents in the catalog: nothing to report" in captured.err


def test_status_json_of_an_empty_catalog(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_playbook", no_task)
    assert cli.main(["status", "-i", str(lab_inventory(tmp_path, [])), "--json"]) == errors.EXIT_INVALID_INPUT
    doc = json.loads(capsys.readouterr().out)
    assert doc["verb"] == "status" and doc["rc"] == errors.EXIT_INVALID_INPUT and doc["status"] == "not_run"
    assert doc["error"].startswith("no agents in the catalog: nothing to report")
    assert "healthy" not in doc
