"""Ctrl-C: the first stops the run between tasks (the stoppable strategy), the second at once.

The strategy runs in a real ansible-playbook on localhost (connection local, no hosts, no
Docker): a task in flight when the stop file appears finishes; no later task or play starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentfactory_cli import cli, errors, jsondoc, runner
from agentfactory_cli.paths import project_root, state_dir
from agentfactory_cli.runner import GATE_FILE_ENV, STOP_FILE_ENV, RunResult, _Cancel, build_runner_kwargs, stop_file

PLAYBOOK = textwrap.dedent("""\
    - name: First play
      hosts: localhost
      connection: local
      gather_facts: false
      tasks:
        - name: In flight when the stop comes
          ansible.builtin.shell: "touch {stop}; sleep 1; touch {out}/in-flight-finished"
          changed_when: true
        - name: Never started
          ansible.builtin.file:
            path: "{out}/second-task"
            state: touch
            mode: "0644"
    - name: Second play
      hosts: localhost
      connection: local
      gather_facts: false
      tasks:
        - name: Never started either
          ansible.builtin.file:
            path: "{out}/second-play"
            state: touch
            mode: "0644"
    """)


def run_playbook(tmp_path: Path, strategy: str | None) -> subprocess.CompletedProcess:
    stop = tmp_path / "run.stop"
    book = tmp_path / "book.yml"
    book.write_text(PLAYBOOK.format(stop=stop, out=tmp_path))
    env = {**os.environ, "ANSIBLE_CONFIG": str(project_root() / "ansible.cfg"), STOP_FILE_ENV: str(stop),
           "ANSIBLE_NOCOLOR": "1"}
    if strategy:
        env["ANSIBLE_STRATEGY"] = strategy
    exe = Path(sys.executable).with_name("ansible-playbook")
    inventory = ["-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}"]
    return subprocess.run([str(exe), *inventory, str(book)], capture_output=True, text=True,
                          env=env, cwd=project_root(), timeout=120)


# None: the project's ansible.cfg as it is, so plain ansible-playbook stops the same way.
@pytest.mark.parametrize("strategy", ["agentfactory.fleet.stoppable", "agentfactory.fleet.stoppable_mitogen", None])
def test_stop_file_lets_the_task_in_flight_finish_and_starts_nothing_more(tmp_path, strategy):
    res = run_playbook(tmp_path, strategy)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "in-flight-finished").exists()
    assert not (tmp_path / "second-task").exists()
    assert not (tmp_path / "second-play").exists()
    assert "PLAY RECAP" in res.stdout


def test_without_the_strategy_the_same_playbook_runs_to_the_end(tmp_path):
    # The control: the stop file means nothing to the plain linear strategy.
    res = run_playbook(tmp_path, "ansible.builtin.linear")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "second-task").exists() and (tmp_path / "second-play").exists()


def test_first_signal_asks_for_a_stop_the_second_kills(tmp_path):
    cancel = _Cancel(tmp_path / "x.stop")
    assert not cancel() and not (tmp_path / "x.stop").exists()
    cancel.on_signal()
    assert (tmp_path / "x.stop").exists()
    assert not cancel()  # ansible-runner is not told to kill yet
    cancel.on_signal()
    assert cancel()


def test_runs_use_mitogen_by_default_stoppable_either_way_and_their_own_stop_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AGENTFACTORY_MITOGEN", raising=False)
    # deploy writes the agents' secrets: their vault password is needed before the run.
    password = tmp_path / "vault-pass"
    password.write_text("agentfactory-example\n")  # inventory/example/README.md
    base = ["deploy", "-i", str(project_root() / "inventory" / "example"), "--vault-password-file", str(password)]
    env = build_runner_kwargs(cli.playbook_request(cli.build_parser().parse_args(base)), ident="RUN1")["envvars"]
    assert env["ANSIBLE_STRATEGY"] == "agentfactory.fleet.stoppable_mitogen"
    assert env[STOP_FILE_ENV] == str(stop_file("RUN1"))
    plain = cli.build_parser().parse_args([*base, "--no-mitogen"])
    env = build_runner_kwargs(cli.playbook_request(plain), ident="RUN2")["envvars"]
    assert env["ANSIBLE_STRATEGY"] == "agentfactory.fleet.stoppable"
    assert env[STOP_FILE_ENV] == str(stop_file("RUN2"))


def test_mitogen_by_default_but_for_status_and_an_error_only_when_asked_for_but_missing(monkeypatch):
    deploy, status = cli.VERBS["deploy"], cli.VERBS["status"]
    assert cli._mitogen(None, deploy) is True and cli._mitogen(None, status) is False
    assert cli._mitogen(True, status) is True and cli._mitogen(False, deploy) is False
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(errors.InvalidInput, match=r"needs Mitogen: pip install 'mitogen>=0.3.54,<0.4'"):
        cli._mitogen(True, deploy)
    assert cli._mitogen(None, deploy) is False  # the default, without Mitogen: Ansible's own way


def test_a_stopped_run_is_canceled_even_when_ansible_ended_well(tmp_path):
    result = RunResult(status="canceled", ansible_rc=0, hosts={"a": {"failed": 0, "unreachable": 0}},
                       artifacts=tmp_path, canceled=True)
    assert result.exit_code == 130 and jsondoc.run_document(result, result.exit_code)["status"] == "canceled"


# --- the gate: a read-only run's first task waits for the CLI's own checks ------------------

GATED = textwrap.dedent("""\
    - name: Gated
      hosts: localhost
      connection: local
      gather_facts: false
      tasks:
        - name: First task, after the gate
          ansible.builtin.file:
            path: "{out}/first-task"
            state: touch
            mode: "0644"
    """)


def start_gated(tmp_path: Path, strategy: str) -> subprocess.Popen:
    book = tmp_path / "gated.yml"
    book.write_text(GATED.format(out=tmp_path))
    env = {**os.environ, "ANSIBLE_CONFIG": str(project_root() / "ansible.cfg"), "ANSIBLE_STRATEGY": strategy,
           STOP_FILE_ENV: str(tmp_path / "run.stop"), GATE_FILE_ENV: str(tmp_path / "run.go")}
    exe = Path(sys.executable).with_name("ansible-playbook")
    return subprocess.Popen([str(exe), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}",
                             str(book)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=project_root())


@pytest.mark.parametrize("strategy", ["agentfactory.fleet.stoppable", "agentfactory.fleet.stoppable_mitogen"])
@pytest.mark.parametrize("opens", [True, False])
def test_the_first_task_waits_at_the_gate_and_a_stop_there_runs_none(tmp_path, strategy, opens):
    proc = start_gated(tmp_path, strategy)
    try:
        time.sleep(4)  # ansible-playbook's start-up, and then some: nothing may run meanwhile
        assert proc.poll() is None, proc.communicate()[0]
        assert not (tmp_path / "first-task").exists()
        (tmp_path / ("run.go" if opens else "run.stop")).touch()
        out = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert (tmp_path / "first-task").exists() is opens, out


def test_a_status_refused_by_its_preflight_runs_no_task_and_leaves_no_run(tmp_path, monkeypatch, capsys):
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  vars: {ansible_host: 127.0.0.1, ansible_port: 9}\n"
                                   "  children:\n    agent_hosts:\n      hosts:\n        h1:\n")
    (inv / "group_vars" / "all.yml").write_text(
        "agentfactory_agents:\n  - {name: bot, image: r/bot:1, replicas: 1, host_port: 18080}\n")
    started = []
    real = runner._open_gate
    monkeypatch.setattr(runner, "_open_gate", lambda *a: started.append(True) or real(*a))
    assert cli.main(["status", "-i", str(inv), "--agent", "nobody"]) == errors.EXIT_INVALID_INPUT
    assert started, "the run did not start before its preflight"
    err = capsys.readouterr().err
    assert "unknown agent(s): nobody" in err and "PLAY" not in err, err
    assert list((state_dir() / "runs").iterdir()) == []


# --- the collection's filters, imported before the workers fork ------------------------------

def _in_ansible(code: str) -> subprocess.CompletedProcess:
    """`code` run by a Python with the project's Ansible configuration; it must succeed."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(project_root() / "ansible.cfg")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=project_root(), timeout=60)
    assert res.returncode == 0, res.stderr
    return res

def test_the_strategies_import_every_filter_file_of_the_collection_in_the_controller():
    # A forked worker finds them in the loader's cache instead of importing them all again.
    code = textwrap.dedent("""\
        import json
        from ansible.plugins.loader import filter_loader, init_plugin_loader
        init_plugin_loader()
        from ansible_collections.agentfactory.fleet.plugins.plugin_utils import stoppable
        def ours():
            return sorted(p.rsplit("/", 1)[-1] for p in filter_loader._module_cache if "/plugins/filter/" in p)
        before = ours()
        stoppable._warm_filters()
        print(json.dumps([before, ours()]))
        """)
    res = _in_ansible(code)
    before, after = json.loads(res.stdout)
    filters = {p.name for p in (project_root() / "plugins" / "filter").glob("*.py")}
    assert before == [] and filters <= set(after)


# --- a host lost mid-run is unreachable on Mitogen too ----------------------------------------

def test_on_mitogen_a_host_gone_before_the_next_module_push_is_unreachable_not_failed():
    # The e2e test kills a host mid-deploy; Mitogen's multiplexer then has no stream left for it.
    code = textwrap.dedent("""\
        import json, types
        from ansible.errors import AnsibleConnectionFailure
        from ansible.plugins.loader import init_plugin_loader
        init_plugin_loader()
        from ansible_collections.agentfactory.fleet.plugins.strategy import stoppable_mitogen  # noqa: F401
        import ansible_mitogen.planner, mitogen.core, mitogen.service
        seen = {}
        push = mitogen.service.PushFileService.__new__(mitogen.service.PushFileService)
        push.router = types.SimpleNamespace(stream_by_id=lambda context_id: None)
        try:
            push._forward(types.SimpleNamespace(context_id=7), "/m.py")
        except mitogen.core.ChannelError as exc:
            seen["forward"] = type(exc).__name__
        invocation = types.SimpleNamespace(_overridden_sources={}, _extra_sys_paths=set(), connection=
            types.SimpleNamespace(get_binding=lambda: types.SimpleNamespace(get_service_context=lambda: None)))
        planner = types.SimpleNamespace(get_push_files=lambda: [])
        for name, error in [("lost", mitogen.core.ChannelError("Channel closed by remote end.")),
                            ("other", KeyError("x"))]:
            def call(**kwargs):
                raise mitogen.core.CallError(error)
            mitogen.service.call = call
            try:
                ansible_mitogen.planner._propagate_deps(invocation, planner, None)
            except AnsibleConnectionFailure:
                seen[name] = "unreachable"
            except mitogen.core.CallError:
                seen[name] = "failed"
        print(json.dumps(seen))
        """)
    res = _in_ansible(code)
    assert json.loads(res.stdout) == {"forward": "ChannelError", "lost": "unreachable", "other": "failed"}
