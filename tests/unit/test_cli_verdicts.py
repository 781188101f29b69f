"""What the end of a run says: the word for what went wrong, and check's verdict in order of truth."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from agentfactory_cli.display import RunDisplay
from agentfactory_cli.runner import PlaybookRequest, RunEvents, RunResult
from agentfactory_cli.status import CheckDisplay


def counts(**kw):
    return {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0, **kw}


def consoles():
    err, out = StringIO(), StringIO()
    return err, out, {"err": Console(file=err, width=300), "out": Console(file=out, width=300)}


@pytest.mark.parametrize(
    ("hosts", "status", "rc", "words"),
    [
        ({"a": counts(ok=2)}, "successful", 0, "Result: ok (exit 0"),
        ({"a": counts(unreachable=1), "b": counts(unreachable=1)}, "failed", 4,
         "Result: unreachable: 2 host(s) (exit 3"),
        ({"a": counts(unreachable=1), "b": counts(failed=1)}, "failed", 2,
         "Result: unreachable: 1 host(s), failed: 1 host(s) (exit 3"),
        ({"a": counts(failed=1)}, "failed", 2, "Result: failed: a task failed on 1 host(s) (exit 2"),
        ({}, "failed", 4, "Result: invalid input (exit 4"),
        ({}, "failed", 1, "Result: error (exit 1"),
    ],
)
def test_the_result_line_names_what_went_wrong(hosts, status, rc, words):
    _, out, kw = consoles()
    RunDisplay(**kw).finish(RunResult(status=status, ansible_rc=rc, hosts=hosts, artifacts=Path("/a")))
    assert words in out.getvalue()


def request(agents, hosts):
    return PlaybookRequest(verb="check", playbook="prechecks.yml", inventories=[Path("/inv")], agents=agents,
                           hosts=hosts)


def test_check_says_the_input_is_valid_before_any_host_answers():
    err, out, kw = consoles()
    display = CheckDisplay(agents=["bot", "web"], **kw)
    events = RunEvents()
    display.start(request(["bot", "web"], ["h1", "h2"]), events)
    ev = {"event": "runner_on_unreachable", "event_data": {"host": "h1", "task": "Gather", "res": {"msg": "no route"}}}
    events.add(ev)
    display.event(ev)
    lines = err.getvalue().splitlines()
    assert lines[0] == "Input: inventory valid (2 host(s)), agent catalog valid (2 agent(s): bot, web)"
    assert lines[-1].startswith("UNREACHABLE h1")
    display.finish(RunResult(status="failed", ansible_rc=4, hosts={"h1": counts(unreachable=1), "h2": counts(ok=3)},
                             artifacts=Path("/a"), failures=events.failures))
    assert "valid" not in out.getvalue().split("Verdict")[0].split("Host checks")[0]
    assert out.getvalue().splitlines()[-1] == "Verdict: NOT ready: input valid; 1 host(s) unreachable (h1) (exit 3)"


def test_check_of_an_inventory_without_catalog_says_so():
    err, _, kw = consoles()
    CheckDisplay(**kw).start(request([], ["h1"]))
    assert "no agent catalog (agentfactory_agents is not set)" in err.getvalue().splitlines()[0]


@pytest.mark.parametrize(
    ("hosts", "verdict"),
    [
        ({"h1": counts(ok=5)}, "Verdict: ready: input valid, every host reachable and meeting the prerequisites"),
        ({"h1": counts(ok=5, failed=1)}, "Verdict: NOT ready: input valid, hosts reachable; 1 host(s) miss"),
        ({"h1": counts(unreachable=1), "h2": counts(failed=1)},
         "Verdict: NOT ready: input valid; 1 host(s) unreachable (h1); 1 reachable host(s) miss prerequisites (h2)"),
    ],
)
def test_check_verdict_in_order(hosts, verdict):
    _, out, kw = consoles()
    failed = any(c["failed"] or c["unreachable"] for c in hosts.values())
    CheckDisplay(**kw).finish(RunResult(status="failed" if failed else "successful", ansible_rc=2 if failed else 0,
                                        hosts=hosts, artifacts=Path("/a")))
    assert out.getvalue().splitlines()[-1].startswith(verdict)


def test_check_verdict_names_a_few_hosts_only():
    _, out, kw = consoles()
    hosts = {f"h{i:02}": counts(unreachable=1) for i in range(12)}
    CheckDisplay(**kw).finish(RunResult(status="failed", ansible_rc=4, hosts=hosts, artifacts=Path("/a")))
    assert out.getvalue().splitlines()[-1] == ("Verdict: NOT ready: input valid; 12 host(s) unreachable "
                                               "(h00, h01, h02, h03, h04 and 7 more) (exit 3)")
