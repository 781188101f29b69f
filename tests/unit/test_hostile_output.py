"""What hosts, inventories and catalogs send is shown as text: no rich markup, no terminal control,
and a display that breaks anyway never ends the run."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from agentfactory_cli import cli, errors, status
from agentfactory_cli.display import RunDisplay, clean
from agentfactory_cli.runner import PlaybookRequest, RunEvents, RunResult
from agentfactory_cli.status import CheckDisplay, StatusDisplay, UpdateDisplay

# Markup rich would interpret (or choke on: "[/...]" closes a tag never opened), escape
# sequences that would clear the screen or recolour it, a carriage return that would overwrite
# the line, a C1 control and a bidi override.
HOSTILE = "[/etc/x] [bold]b[/bold] [link=http://evil]l[/link] \x1b[2J\x1b]0;title\x07 ok\rFAKE \x9b \u202egnp."
SHOWN = ["[/etc/x]", "[bold]b[/bold]", "[link=http://evil]l[/link]", "\\x1b[2J", "\\x1b]0;title\\x07",
         "ok\\rFAKE", "\\x9b", "\\u202egnp."]


def counts(**kw):
    return {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0, **kw}


def consoles():
    err, out = StringIO(), StringIO()
    return err, out, {"err": Console(file=err, width=400), "out": Console(file=out, width=400)}


def assert_shown_as_text(text: str) -> None:
    for part in SHOWN:
        assert part in text, (part, text)
    for raw in ("\x1b", "\r", "\x07", "\x9b", "\u202e"):
        assert raw not in text


def event(name, host=None, **data):
    return {"event": name, "event_data": {"host": host, **data}}


def send(d: RunDisplay, ev: dict) -> bool:
    """An event as the runner handles it: folded into the run's progress, then shown."""
    d.progress.add(ev)
    return d.event(ev)


def request(**kw) -> PlaybookRequest:
    return PlaybookRequest(verb="deploy", playbook="agents.yml", inventories=[Path(f"/inv/{HOSTILE}")],
                           limit=HOSTILE, **kw)


def test_clean_escapes_every_control_but_newline_and_tab():
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("\x00\x08\x0b\x1f\x7f\x80\x9f") == "\\x00\\x08\\x0b\\x1f\\x7f\\x80\\x9f"
    assert clean("\r\x1b") == "\\r\\x1b"
    assert clean("\r\nPLAY [x] ***\r\nok\r\n") == "\nPLAY [x] ***\nok\n"  # a pty's line ends
    assert clean("é ü 日本 \u200d") == "é ü 日本 \u200d"  # printable text (and emoji joiners) as is


def test_host_task_and_failure_text_from_hosts_is_printed_as_is():
    err, out, kw = consoles()
    d = RunDisplay(**kw)
    d.start(request())
    send(d, event("playbook_on_play_start", play=HOSTILE))
    send(d, event("runner_on_start", HOSTILE, task=HOSTILE))
    Console(file=StringIO()).print(d._render())  # the live table renders the same text
    send(d, event("runner_on_failed", HOSTILE, task=HOSTILE, res={"msg": HOSTILE, "stderr": HOSTILE}))
    send(d, event("runner_on_unreachable", "h2", task="Gather", res={"msg": HOSTILE}))
    d.finish(RunResult(status="failed", ansible_rc=2, hosts={HOSTILE: counts(failed=1)},
                       artifacts=Path("/a"), error=HOSTILE))
    assert d.progress.failures[0]["message"].startswith("[/etc/x]")
    assert_shown_as_text(err.getvalue())
    assert_shown_as_text(out.getvalue())
    assert "FAILED" in err.getvalue() and "UNREACHABLE" in err.getvalue()


def test_verbose_output_of_ansible_is_escaped_too():
    err, _, kw = consoles()
    d = RunDisplay(verbosity=1, **kw)
    send(d, {"event": "verbose", "stdout": HOSTILE, "event_data": {}})
    assert_shown_as_text(err.getvalue())


def test_status_table_shows_what_agents_and_hosts_report_as_text():
    err, out, kw = consoles()
    d = StatusDisplay(**kw)
    d.progress = RunEvents({status.HEALTH: status.health_report})
    replica = {"agent": HOSTILE, "name": HOSTILE, "state": HOSTILE, "health": HOSTILE, "error": HOSTILE,
               "restarts": HOSTILE}
    send(d, event("runner_on_ok", HOSTILE, task_action="agentfactory.fleet.agent_health",
                  res={"agents": {HOSTILE: {"desired": 1, "running": 1, "healthy": 0}}, "replicas": [replica]}))
    d.finish(RunResult(status="failed", ansible_rc=2, hosts={HOSTILE: counts(ok=1)}, artifacts=Path("/a"),
                       error=HOSTILE, extracts=d.progress.extracts))
    assert_shown_as_text(out.getvalue())
    assert_shown_as_text(err.getvalue())


def test_check_table_and_verdict_show_facts_and_names_as_text():
    err, out, kw = consoles()
    d = CheckDisplay(agents=[HOSTILE], **kw)
    d.start(request(hosts=[HOSTILE]), RunEvents({status.PRECHECK: status.precheck_facts}))
    facts = {"os": HOSTILE, "python": HOSTILE, "systemd": True, "root_free_gb": HOSTILE, "agents": [HOSTILE]}
    send(d, event("runner_on_ok", HOSTILE, res={"ansible_facts": {"agentfactory_precheck": facts}}))
    send(d, event("runner_on_failed", HOSTILE, task="t", res={"msg": HOSTILE}))
    send(d, event("runner_on_unreachable", "u", task="t", res={"msg": "x"}))
    d.finish(RunResult(status="failed", ansible_rc=4, hosts={HOSTILE: counts(failed=1), "u": counts(unreachable=1)},
                       artifacts=Path("/a"), failures=d.progress.failures, extracts=d.progress.extracts))
    assert_shown_as_text(out.getvalue())
    assert_shown_as_text(err.getvalue())
    assert "Verdict: NOT ready" in out.getvalue()


def test_update_summary_shows_host_names_as_text():
    _, out, kw = consoles()
    d = UpdateDisplay(agent=HOSTILE, placed=[HOSTILE, "b"], **kw)
    d.progress = RunEvents({status.UPDATE: status.update_outcome})
    send(d, event("runner_on_ok", HOSTILE, res={"ansible_facts": {"agentfactory_update_outcome": "updated"}}))
    d.finish(RunResult(status="successful", ansible_rc=0, hosts={HOSTILE: counts(ok=1)}, artifacts=Path("/a"),
                       extracts=d.progress.extracts))
    assert_shown_as_text(out.getvalue())
    assert "updated: " in out.getvalue() and "untouched: b" in out.getvalue()


def test_an_error_message_quoting_the_input_is_printed_as_is(monkeypatch, capsys):
    def bad(*_a, **_k):
        raise errors.InvalidInput(f"agent 'x', field image: {HOSTILE}")

    monkeypatch.setattr(cli, "playbook_request", bad)
    assert cli.main(["deploy"]) == errors.EXIT_INVALID_INPUT
    assert_shown_as_text(capsys.readouterr().err)


class Boom(Exception):
    pass


def test_a_display_that_fails_says_so_once_and_keeps_counting(capsys):
    _, _, kw = consoles()
    d = RunDisplay(**kw)

    def broken_print(*_a, **_k):
        raise Boom("terminal gone")

    d.err.print = broken_print
    for host in ("a", "b"):
        assert send(d, event("runner_on_failed", host, task="t", res={"msg": "m"})) is True
    send(d, event("runner_on_ok", "a", task="t", res={}))
    assert d.progress.recap_counts()["a"] == counts(ok=1, failed=1)
    assert [f["host"] for f in d.progress.failures] == ["a", "b"]
    err = capsys.readouterr().err
    assert err.count("the display failed") == 1 and "terminal gone" in err



def _local_request(tmp_path, tasks: str) -> PlaybookRequest:
    """A deploy request for a real ansible-runner run of `tasks` (YAML lines) on localhost."""
    from agentfactory_cli import runner

    book = tmp_path / "book.yml"
    book.write_text("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n" + tasks)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={runner.sys.executable}\n")
    return PlaybookRequest(verb="deploy", playbook=str(book), inventories=[inventory], fleet=["localhost"])

def test_an_exception_in_the_event_handler_never_ends_a_real_run(tmp_path, capsys):
    """A real ansible-runner run on localhost whose display raises on every event: reported once,
    the run ends well, with ansible's own result."""
    from agentfactory_cli import runner

    req = _local_request(tmp_path, "    - ansible.builtin.debug: {msg: hi}\n"
                                   "    - ansible.builtin.debug: {msg: again}\n")

    class Exploding(RunDisplay):
        def event(self, ev):
            super().event(ev)
            raise Boom("display bug")

    _, _, kw = consoles()
    display = Exploding(**kw)
    result = runner.run_playbook(req, display)
    assert result.status == "successful" and result.exit_code == errors.EXIT_OK
    assert result.hosts["localhost"]["ok"] == 2
    err = capsys.readouterr().err
    assert err.count("the display failed on an event") == 1 and "display bug" in err
    # The events are kept in the artifacts all the same.
    assert len(list((result.artifacts / "job_events").glob("*.json"))) >= 4


@pytest.mark.parametrize("text", ["[/]", "[bold", "[/etc/x]", "\x1b[31m"])
def test_a_play_name_is_no_markup(text):
    err, _, kw = consoles()
    d = RunDisplay(**kw)
    d.event(event("playbook_on_play_start", play=text))
    assert clean(text) in err.getvalue()


def test_a_real_host_failure_with_brackets_and_escapes_is_reported_as_is(tmp_path):
    """The case of the issue: a task fails on a host with "[/...]" in its message; before, rich's
    MarkupError in ansible-runner's event thread killed the run. Now: exit 2, the message as is."""
    from agentfactory_cli import runner

    req = _local_request(tmp_path, '    - ansible.builtin.fail: {msg: "cannot open [/etc/x] \\e[2J\\rFAKE"}\n')
    err, out, kw = consoles()
    display = RunDisplay(**kw)
    result = runner.run_playbook(req, display)
    display.finish(result)
    assert result.exit_code == errors.EXIT_HOST_FAILED and result.hosts["localhost"]["failed"] == 1
    assert "cannot open [/etc/x] \\x1b[2J\\rFAKE" in err.getvalue()
    assert "\x1b" not in err.getvalue() + out.getvalue()


def test_every_event_of_a_run_is_kept_once_owner_only_as_ansible_runner_names_it(tmp_path):
    import json
    import stat

    from agentfactory_cli import runner

    req = _local_request(tmp_path, "    - ansible.builtin.debug: {msg: hi}\n")
    _, _, kw = consoles()
    result = runner.run_playbook(req, RunDisplay(**kw))
    files = sorted((result.artifacts / "job_events").iterdir())
    kept = [json.loads(f.read_text()) for f in files]
    assert [f.name for f in files] == sorted(f"{ev['counter']}-{ev['uuid']}.json" for ev in kept)
    assert {ev["event"] for ev in kept} >= {"playbook_on_start", "runner_on_ok", "playbook_on_stats"}
    assert all(ev["runner_ident"] for ev in kept)  # the whole event, as ansible-runner merges it
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
