"""--json: exactly one JSON document on stdout for every exit code, with one shape whether the
playbook ran or not (agentfactory_cli/jsondoc.py). No test here runs Ansible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import no_task

from agentfactory_cli import cli, errors, jsondoc, runner
from agentfactory_cli.runner import RunResult

SHAPE = {"verb", "status", "rc", "error", "problems", "hosts", "artifacts"}


@pytest.fixture
def no_run(monkeypatch):
    monkeypatch.setattr(runner, "_run", no_task)


def one_document(capsys) -> dict:
    out = capsys.readouterr().out
    doc = json.loads(out)  # a second document (or any other text) would be "Extra data"
    assert set(doc) >= SHAPE, doc
    return doc


def catalog_inventory(tmp_path, agents) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_host": "127.0.0.1", "ansible_port": 9},
        "children": {"agent_hosts": {"hosts": {"h1": None, "h2": None}}},
    }}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({"agentfactory_agents": agents}))
    return inv


def test_a_run_and_a_refused_command_have_the_same_keys(inventory, monkeypatch, capsys):
    def fake_run(req, display):
        return RunResult(status="successful", ansible_rc=0, hosts={}, artifacts=Path("/a"), verb=req.verb)

    monkeypatch.setattr(runner, "run_playbook", fake_run)
    assert cli.main(["bootstrap", "-i", str(inventory), "--json"]) == errors.EXIT_OK
    ran = one_document(capsys)
    assert ran == {"verb": "bootstrap", "status": "successful", "rc": 0, "error": None, "problems": [],
                   "hosts": {}, "artifacts": "/a"}
    assert cli.main(["bootstrap", "-i", str(inventory), "--limit", "nope", "--json"]) == errors.EXIT_INVALID_INPUT
    refused = one_document(capsys)
    assert set(refused) == set(ran)
    assert refused["status"] == jsondoc.NOT_RUN and refused["rc"] == errors.EXIT_INVALID_INPUT
    assert refused["hosts"] == {} and refused["artifacts"] is None


def test_invalid_input_carries_its_problems_as_a_list(tmp_path, capsys, no_run):
    bad = {"name": "Bad_Name", "image": "r/bot:1", "replicas": -1, "host_port": 18080}
    inv = catalog_inventory(tmp_path, [bad])
    assert cli.main(["deploy", "-i", str(inv), "--json"]) == errors.EXIT_INVALID_INPUT
    doc = one_document(capsys)
    assert doc["verb"] == "deploy" and doc["status"] == "not_run" and doc["rc"] == 4
    assert doc["error"].startswith("the agent catalog has 2 problem(s):")
    assert isinstance(doc["problems"], list) and doc["problems"]
    assert all(isinstance(p, str) for p in doc["problems"])


def test_each_catalog_problem_is_one_item(tmp_path, capsys, no_run):
    bad = {"name": "Bad_Name", "image": "r/bot:1", "replicas": -1, "host_port": 18080}
    assert cli.main(["deploy", "-i", str(catalog_inventory(tmp_path, [bad])), "--json"]) == errors.EXIT_INVALID_INPUT
    problems = one_document(capsys)["problems"]
    assert len(problems) == 2
    assert any("field 'name'" in p for p in problems) and any("field 'replicas'" in p for p in problems)


def test_each_problem_of_the_inventory_files_is_one_item(tmp_path, capsys, no_run):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    a:\n    a:\n  vars:\n    x: 1\n    x: 2\n")  # two duplicate keys
    assert cli.main(["bootstrap", "-i", str(inv), "--json"]) == errors.EXIT_INVALID_INPUT
    doc = one_document(capsys)
    assert doc["error"].startswith("the inventory has 2 problem(s):")
    assert len(doc["problems"]) == 2 and all(p in doc["error"] for p in doc["problems"])
    assert "'a'" in doc["problems"][0] and "'x'" in doc["problems"][1]


def test_an_error_without_a_list_has_its_message_as_the_one_problem():
    assert errors.InvalidInput("no such agent").problems == ["no such agent"]
    assert errors.InvalidInput("2 problems", problems=["a", "b"]).problems == ["a", "b"]


@pytest.mark.parametrize(("argv", "verb", "message"), [
    (["bootstrap", "--forks", "0", "--json"], "bootstrap", "argument -f/--forks: must be at least 1, got 0"),
    (["status", "--json", "--nope"], "status", "unrecognized arguments: --nope"),
    (["lab", "status", "--json", "--hosts", "2"], "lab-status", "unrecognized arguments: --hosts 2"),
])
def test_a_bad_command_line_is_a_document_too(argv, verb, message, capsys):
    assert cli.main(argv) == errors.EXIT_INVALID_INPUT
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert (doc["verb"], doc["rc"], doc["problems"]) == (verb, 4, [message])
    assert captured.err.startswith(f"usage: agentfactory {verb.replace('-', ' ')}")  # argparse's own output


def test_without_json_a_bad_command_line_prints_nothing_on_stdout(capsys):
    assert cli.main(["bootstrap", "--forks", "0"]) == errors.EXIT_INVALID_INPUT
    captured = capsys.readouterr()
    assert captured.out == "" and "must be at least 1" in captured.err


def test_a_busy_fleet_is_exit_75_and_a_document(inventory, capsys, no_run):
    from agentfactory_cli import lock

    other = lock.FleetLock(["web1", "web2"])
    assert other.try_acquire({"verb": "deploy"})
    lock._HELD.pop(other.path)  # as if another process held it: this one's runs do not re-enter it
    try:
        assert cli.main(["bootstrap", "-i", str(inventory), "--json"]) == errors.EXIT_BUSY
    finally:
        other.release()
    doc = one_document(capsys)
    assert doc["rc"] == 75 and doc["status"] == "not_run"
    assert doc["error"].startswith("another run holds this fleet") and doc["problems"] == [doc["error"]]


def test_no_space_for_the_run_is_exit_1_and_a_document(inventory, capsys, monkeypatch, no_run):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096))
    assert cli.main(["bootstrap", "-i", str(inventory), "--json"]) == errors.EXIT_ERROR
    doc = one_document(capsys)
    assert doc["rc"] == 1 and "not enough free space" in doc["error"]


def test_a_failure_after_the_document_adds_no_second_one(inventory, monkeypatch, capsys):
    from agentfactory_cli.display import RunDisplay

    def fake_run(req, display):
        return RunResult(status="successful", ansible_rc=0, hosts={}, artifacts=Path("/a"), verb=req.verb)

    def interrupted(self, result):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_playbook", fake_run)
    monkeypatch.setattr(RunDisplay, "exit_code", interrupted)  # after finish() printed the document
    monkeypatch.setattr(RunDisplay, "document", lambda self, result: jsondoc.run_document(result, rc=0))
    assert cli.main(["bootstrap", "-i", str(inventory), "--json"]) == errors.EXIT_INTERRUPTED
    assert one_document(capsys)["status"] == "successful"


def test_an_interrupt_before_the_run_is_a_document(inventory, monkeypatch, capsys):
    def ctrl_c(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_playbook", ctrl_c)
    assert cli.main(["bootstrap", "-i", str(inventory), "--json"]) == errors.EXIT_INTERRUPTED
    doc = one_document(capsys)
    assert (doc["rc"], doc["status"], doc["error"]) == (130, "not_run", "interrupted")


def test_a_bug_is_a_document_and_still_a_traceback(inventory, monkeypatch, capsys):
    def broken(*_a, **_k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(runner, "run_playbook", broken)
    with pytest.raises(RuntimeError):
        cli.main(["bootstrap", "-i", str(inventory), "--json"])
    doc = one_document(capsys)
    assert (doc["rc"], doc["status"], doc["error"]) == (1, "error", "internal error: RuntimeError: a bug")


def test_a_failed_run_lists_its_failures_as_problems(tmp_path):
    result = RunResult(status="failed", ansible_rc=2, hosts={}, artifacts=tmp_path, verb="deploy", failures=[
        {"host": "web1", "task": "Check the memory", "kind": "failed", "message": "too much"},
        {"host": "web2", "task": "", "kind": "unreachable", "message": "connection refused"}])
    doc = jsondoc.run_document(result, rc=3)
    assert doc["problems"] == ["web1: Check the memory: too much", "web2: connection refused"]
    assert set(doc) >= SHAPE
