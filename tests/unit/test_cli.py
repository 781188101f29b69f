"""The command line -> runner arguments, exit codes and output contracts, without running Ansible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import no_task

from agentfactory_cli import cli, errors
from agentfactory_cli.display import RunDisplay
from agentfactory_cli.paths import project_root
from agentfactory_cli.runner import PlaybookRequest, RunEvents, RunResult, build_runner_kwargs, failure_message


@pytest.fixture
def inventory(tmp_path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    agent_hosts:\n      hosts:\n        web1:\n        web2:\n"
        "    monitoring:\n      hosts:\n        mon1:\n"
    )
    return path


def request_for(argv: list[str]) -> PlaybookRequest:
    args = cli.build_parser().parse_args(argv)
    return cli.playbook_request(args)


def test_full_command_line_becomes_runner_kwargs(inventory, tmp_path):
    vault = tmp_path / "vault-pass"
    vault.write_text("secret\n")
    req = request_for(["bootstrap", "-i", str(inventory), "--limit", "web1", "--check", "--diff",
                       "--forks", "3", "-vv", "--vault-password-file", str(vault)])
    kwargs = build_runner_kwargs(req, ident="RUN")
    root = project_root()
    assert kwargs["playbook"] == str(root / "playbooks" / "bootstrap.yml")
    assert kwargs["project_dir"] == str(root)
    assert kwargs["inventory"] == [str(inventory.resolve())]
    assert kwargs["limit"] == "web1"
    assert kwargs["forks"] == 3
    assert kwargs["verbosity"] == 2
    assert kwargs["cmdline"] == f"--check --diff --vault-password-file {vault.resolve()}"
    assert kwargs["envvars"]["ANSIBLE_CONFIG"] == str(root / "ansible.cfg")
    assert kwargs["ident"] == "RUN"
    assert kwargs["artifact_dir"].endswith("runs")
    assert kwargs["suppress_env_files"] is True


def test_minimal_command_line_sets_no_optional_kwargs(inventory):
    kwargs = build_runner_kwargs(request_for(["monitoring", "-i", str(inventory)]), ident="X")
    assert kwargs["playbook"].endswith("playbooks/monitoring.yml")
    for key in ("limit", "forks", "verbosity", "cmdline", "extravars"):
        assert key not in kwargs


def test_inventory_from_environment(inventory, monkeypatch):
    monkeypatch.setenv("AGENTFACTORY_INVENTORY", str(inventory))
    monkeypatch.setenv("AGENTFACTORY_FORKS", "7")
    req = request_for(["bootstrap"])
    assert req.inventories == [inventory.resolve()]
    assert req.forks == 7


def test_several_inventories_are_passed_in_order(inventory, tmp_path):
    other = tmp_path / "more.ini"
    other.write_text("[gateway]\ngw1\n")
    kwargs = build_runner_kwargs(request_for(["site", "-i", str(inventory), "-i", str(other)]), ident="X")
    assert kwargs["inventory"] == [str(inventory.resolve()), str(other.resolve())]


def test_lab_inventory_is_the_default(tmp_path, monkeypatch, capsys):
    from agentfactory_cli.lab import Lab

    lab = Lab("unit")
    lab.inventory_path.parent.mkdir(parents=True)
    lab.inventory_path.write_text("all:\n  hosts:\n    af-unit-1:\n")
    messages = []
    args = cli.build_parser().parse_args(["bootstrap", "--lab", "unit"])
    req = cli.playbook_request(args, log=messages.append)
    assert req.inventories == [lab.inventory_path]
    assert "using the lab inventory" in messages[0]


@pytest.mark.parametrize(
    ("argv", "content", "message"),
    [
        (["bootstrap", "-i", "inventroy/example"], None, "inventory not found: inventroy/example"),
        (["bootstrap"], None, "no inventory given and no lab is up"),
        (["bootstrap", "-i", "{inv}"], "all:\n  hosts: [a, b\n", "cannot be parsed: YAML parsing failed"),
        (["bootstrap", "-i", "{inv}"], "all:\n  hosts: {}\n", "has no hosts"),
        (["bootstrap", "-i", "{inv}", "--limit", "nope"], "all:\n  hosts:\n    a:\n", "matches no host"),
        (["bootstrap", "-i", "{inv}", "--vault-password-file", "/no/such"], "all:\n  hosts:\n    a:\n",
         "vault password file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_4(tmp_path, capsys, monkeypatch, argv, content, message):
    inv_file = tmp_path / "inv.yml"
    if content is not None:
        inv_file.write_text(content)
    argv = [a.replace("{inv}", str(inv_file)) for a in argv]
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", no_task)
    assert cli.main(argv) == errors.EXIT_INVALID_INPUT
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv", [["bootstrap", "--forks", "0"], ["bogus"], ["bootstrap", "--nope"], []])
def test_bad_options_exit_4(argv, capsys):
    assert cli.main(argv) == errors.EXIT_INVALID_INPUT


def test_help_exits_0_and_documents_exit_codes(capsys):
    assert cli.main(["bootstrap", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--vault-password-file" in out
    assert "3    at least one host was unreachable" in out


def _result(hosts, status="successful", rc=0, canceled=False):
    return RunResult(status=status, ansible_rc=rc, hosts=hosts, artifacts=Path("/tmp/a"), canceled=canceled)


def _counts(**kw):
    return {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0, **kw}


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (_result({"a": _counts(ok=3)}), 0),
        (_result({"a": _counts(ok=3), "b": _counts(failed=1)}, "failed", 2), 2),
        (_result({"a": _counts(unreachable=1)}, "failed", 4), 3),
        (_result({"a": _counts(unreachable=1), "b": _counts(failed=1)}, "failed", 6), 3),
        (_result({"a": _counts(ok=1)}, "canceled", 254, canceled=True), 130),
        (_result({}, "failed", 4), 4),
        (_result({}, "failed", 1), 1),
        (_result({}, "error", None), 1),
    ],
)
def test_exit_codes(result, code):
    assert result.exit_code == code


def _event(name, host=None, **data):
    return {"event": name, "event_data": {"host": host, **data}}


def _quiet_display(json_mode=False):
    from io import StringIO

    from rich.console import Console

    return RunDisplay(json_mode=json_mode, err=Console(file=StringIO()), out=Console(file=StringIO(), width=200))


def test_display_counts_events_then_prefers_ansible_stats():
    d = RunEvents()
    d.add(_event("runner_on_start", "a", task="Install"))
    d.add(_event("runner_on_ok", "a", task="Install", res={"changed": True}))
    d.add(_event("runner_on_failed", "b", task="Install", res={"msg": "boom"}))
    d.add(_event("runner_on_failed", "b", task="Probe", res={"msg": "ignored"}, ignore_errors=True))
    d.add(_event("runner_on_unreachable", "c", task="Gather", res={"msg": "ssh: connect refused"}))
    d.add(_event("runner_on_skipped", "a", task="Other"))
    assert d.recap_counts() == {
        "a": _counts(ok=1, changed=1, skipped=1),
        "b": _counts(ok=1, failed=1),
        "c": _counts(unreachable=1),
    }
    assert [f["host"] for f in d.failures] == ["b", "c"]
    assert d.failures[0]["message"] == "boom"
    d.add(_event("playbook_on_stats", ok={"a": 5, "b": 2}, changed={"a": 1}, failures={"b": 1},
                   dark={"c": 1}, skipped={"a": 2}))
    assert d.recap_counts()["a"] == _counts(ok=5, changed=1, skipped=2)
    assert d.recap_counts()["c"] == _counts(unreachable=1)


def test_failure_message_keeps_the_useful_parts():
    res = {"msg": "non-zero return code", "stderr": "E: Unable to locate package dockr",
           "results": [{"failed": True, "item": "x", "msg": "bad item"}]}
    text = failure_message(res)
    assert "non-zero return code" in text and "Unable to locate package dockr" in text and "[x] bad item" in text
    assert len(failure_message({"msg": "y" * 5000})) == 600


def test_json_mode_prints_one_document(capsys):
    d = _quiet_display(json_mode=True)
    result = _result({"a": _counts(ok=4, changed=2)})
    d.finish(result)
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"verb": "", "status": "successful", "rc": 0, "error": None, "problems": [],
                   "hosts": {"a": _counts(ok=4, changed=2)}, "artifacts": "/tmp/a"}


def test_main_runs_the_playbook_and_returns_its_exit_code(inventory, monkeypatch, capsys):
    seen = {}

    def fake_run(req, display):
        seen["req"] = req
        events = RunEvents(req.extract)
        events.add(_event("runner_on_unreachable", "web2", task="Gathering Facts", res={"msg": "timed out"}))
        return _result(events.recap_counts(), "failed", 4)

    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", fake_run)
    code = cli.main(["bootstrap", "-i", str(inventory), "--json"])
    assert code == errors.EXIT_UNREACHABLE
    assert seen["req"].playbook == "bootstrap.yml"
    out = capsys.readouterr().out
    assert json.loads(out)["hosts"]["web2"]["unreachable"] == 1


# --- the lab's vault password file is the default --------------------------------------------


@pytest.fixture
def vaulted_lab(tmp_path):
    """A named lab (under the test's state dir) with generated secrets and one host."""
    from agentfactory_cli.lab import Lab
    from agentfactory_cli.lab import secrets as labsecrets

    lab = Lab("vaulted")
    lab.inventory_path.parent.mkdir(parents=True)
    lab.inventory_path.write_text("all:\n  hosts:\n    af-vaulted-1:\n")
    labsecrets.ensure_vault(lab.vault_file, lab.vault_password_file)
    agents = lab.vault_file.parent / "agents.yml"
    agents.write_text("agentfactory_agents:\n  - {name: bot, image: r/bot:1, hosts: all,\n"
                      "     secrets: {API_KEY: '{{ vault_reference_api_key }}'}}\n")
    return lab


def test_lab_vault_password_file_is_the_default(vaulted_lab):
    req = request_for(["deploy", "--lab", "vaulted"])  # no -i: the lab's inventory
    password = vaulted_lab.vault_password_file.resolve()
    assert req.vault_password_file == password
    kwargs = build_runner_kwargs(req, ident="X")
    assert kwargs["cmdline"] == f"--vault-password-file {password}"
    # -i naming the lab's inventory file or its directory: the same default.
    for path in (vaulted_lab.inventory_path, vaulted_lab.inventory_path.parent):
        assert request_for(["deploy", "-i", str(path)]).vault_password_file == password


def test_vault_password_file_option_wins_over_the_labs(vaulted_lab, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.write_text(vaulted_lab.vault_password_file.read_text())
    req = request_for(["deploy", "--lab", "vaulted", "--vault-password-file", str(mine)])
    assert req.vault_password_file == mine.resolve()
    monkeypatch.setenv("AGENTFACTORY_VAULT_PASSWORD_FILE", str(mine))
    assert request_for(["deploy", "--lab", "vaulted"]).vault_password_file == mine.resolve()


def test_no_default_vault_password_file_outside_a_lab(inventory):
    req = request_for(["deploy", "-i", str(inventory)])
    assert req.vault_password_file is None
    assert "cmdline" not in build_runner_kwargs(req, ident="X")


def test_lab_without_password_file_passes_none(vaulted_lab):
    vaulted_lab.vault_file.unlink()
    vaulted_lab.vault_password_file.unlink()
    assert request_for(["bootstrap", "--lab", "vaulted"]).vault_password_file is None


# --- the `command` artifact and the artifact directories ----------------------------------------


def test_command_artifact_keeps_only_our_and_harmless_variables(tmp_path, inventory):
    from agentfactory_cli.runner import scrub_command_artifact

    kwargs = build_runner_kwargs(request_for(["bootstrap", "-i", str(inventory)]), ident="X")
    ours = set(kwargs["envvars"])
    env = {**kwargs["envvars"], "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm",
           "USER": "root", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "VAULT_TOKEN": "hvs.x", "SSH_AUTH_SOCK": "/tmp/a",
           "ANSIBLE_STDOUT_CALLBACK": "awx_display", "LC": "odd", "MYPATH": "/x"}
    run = tmp_path / "run"
    run.mkdir()
    (run / "command").write_text(json.dumps({"command": ["ansible-playbook", "x.yml"], "cwd": "/w", "env": env}))
    scrub_command_artifact(run, ours)
    doc = json.loads((run / "command").read_text())
    assert doc["command"] == ["ansible-playbook", "x.yml"] and doc["cwd"] == "/w"
    assert sorted(doc["env"]) == sorted(ours | {"HOME", "LANG", "LC_ALL", "TERM", "USER"})
    assert "s3cr3t" not in (run / "command").read_text()
    assert (run / "command").stat().st_mode & 0o777 == 0o600


def test_run_artifacts_are_private_and_command_is_filtered(tmp_path, inventory, monkeypatch):
    """A real ansible-runner run (a playbook with no hosts to contact): the scrub happens before
    ansible-playbook starts, and the artifact directories are 0700."""
    from agentfactory_cli import runner

    monkeypatch.setenv("AGENTFACTORY_TEST_TOKEN", "do-not-keep-me")
    play = tmp_path / "noop.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    seen = {}
    real = runner.build_runner_kwargs

    def kwargs_for(req, ident, **options):
        kwargs = real(req, ident, **options)
        kwargs["playbook"] = str(play)
        return kwargs

    monkeypatch.setattr(runner, "build_runner_kwargs", kwargs_for)

    class Display:
        def start(self, req, progress):
            pass

        def note(self, message):
            pass

        def event(self, ev):
            # The first event comes from a running ansible-playbook: the file is clean already.
            if "command" not in seen:
                seen["command"] = (Path(runner.state_dir()) / "runs" / ev["runner_ident"] / "command").read_text()
            return True

    req = request_for(["bootstrap", "-i", str(inventory)])
    result = runner.run_playbook(req, Display())
    assert "do-not-keep-me" not in seen["command"]
    assert "AGENTFACTORY_TEST_TOKEN" not in (result.artifacts / "command").read_text()
    assert json.loads((result.artifacts / "command").read_text())["env"]["ANSIBLE_NOCOLOR"] == "True"
    for path in (result.artifacts, result.artifacts.parent, result.artifacts.parent.parent / "runner"):
        assert path.stat().st_mode & 0o777 == 0o700, path
