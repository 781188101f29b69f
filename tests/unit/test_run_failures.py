"""Runs that end badly leave a clear state: a full disk is exit 1 with a message, a killed CLI
leaves no ansible-playbook behind, SIGTERM stops like Ctrl-C, and no artifact keeps the
controller's environment. Real ansible-runner runs on localhost (connection local, no hosts)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from io import StringIO
from pathlib import Path

import pytest
from conftest import no_task
from rich.console import Console

from agentfactory_cli import errors, runner
from agentfactory_cli.display import RunDisplay
from agentfactory_cli.paths import project_root
from agentfactory_cli.runner import PlaybookRequest


@pytest.fixture
def localhost(tmp_path) -> Path:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return inventory


def book(tmp_path: Path, *shell: str) -> Path:
    path = tmp_path / "book.yml"
    tasks = "".join(f"    - name: Step {i}\n      ansible.builtin.shell: {cmd!r}\n      changed_when: true\n"
                    for i, cmd in enumerate(shell))
    path.write_text(f"- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n{tasks}")
    return path


def request(playbook: Path, inventory: Path) -> PlaybookRequest:
    return PlaybookRequest(verb="deploy", playbook=str(playbook), inventories=[inventory], fleet=["localhost"])


def quiet() -> tuple[StringIO, RunDisplay]:
    err = StringIO()
    return err, RunDisplay(err=Console(file=err, width=300), out=Console(file=StringIO(), width=300))


def processes_with(text: str) -> list[int]:
    """Live processes (not zombies) whose command line holds `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_a_full_disk_stops_the_run_fast_with_exit_1(tmp_path, localhost, monkeypatch):
    """ENOSPC where ansible-runner writes the run's stdout: the run ends at once (not when the
    60 s task would), the message says what happened, and ansible-playbook is stopped."""
    import ansible_runner.runner as ar

    class FullDisk(ar.OutputEventFilter):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ar, "OutputEventFilter", FullDisk)
    tag = f"full-disk-{os.getpid()}"
    playbook = book(tmp_path, f"sleep 60 # {tag}")
    err, display = quiet()
    started = time.monotonic()
    result = runner.run_playbook(request(playbook, localhost), display)
    display.finish(result)
    assert time.monotonic() - started < 30
    assert result.exit_code == errors.EXIT_ERROR and result.status == "error"
    assert "disk holding the run's artifacts is full" in result.error and "No space left" in result.error
    assert "disk holding the run's artifacts is full" in err.getvalue()
    assert wait_for(lambda: not processes_with(str(playbook)), 10), processes_with(str(playbook))


def test_too_little_free_space_is_refused_before_the_run(tmp_path, localhost, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096))
    monkeypatch.setattr(runner, "_run", no_task)
    with pytest.raises(errors.AgentFactoryError, match="not enough free space for the run's artifacts") as exc:
        runner.run_playbook(request(tmp_path / "x.yml", localhost), quiet()[1])
    assert exc.value.exit_code == errors.EXIT_ERROR


def test_a_stop_file_that_cannot_be_written_stops_at_once(tmp_path):
    cancel = runner._Cancel(tmp_path / "no" / "such" / "dir" / "x.stop")
    cancel.on_signal()
    assert cancel()  # ansible-runner is told to kill at once


CHILD = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from agentfactory_cli import runner
    from agentfactory_cli.display import RunDisplay
    req = runner.PlaybookRequest(verb="deploy", playbook=sys.argv[1], inventories=[Path(sys.argv[2])],
                                 fleet=["localhost"])
    display = RunDisplay()
    result = runner.run_playbook(req, display)
    display.finish(result)
    sys.exit(result.exit_code)
    """)


def start_cli(tmp_path: Path, playbook: Path, inventory: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(playbook), str(inventory)], cwd=project_root(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_cli_leaves_no_ansible_playbook(tmp_path, localhost):
    started = tmp_path / "started"
    sleep = f"sleep 61.{os.getpid()}"  # the task's own process, found by its command line
    playbook = book(tmp_path, f"touch {started}; {sleep}")
    proc = start_cli(tmp_path, playbook, localhost)
    try:
        assert wait_for(started.exists, 60), proc.stderr.read() if proc.poll() is not None else "no start"
        assert processes_with(str(playbook)) and processes_with(sleep)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_for(lambda: not processes_with(str(playbook)), 10), processes_with(str(playbook))
        assert wait_for(lambda: not processes_with(sleep), 10), processes_with(sleep)
    finally:
        proc.kill()
        for pid in processes_with(str(playbook)) + processes_with(sleep):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_run_between_tasks_as_ctrl_c_does(tmp_path, localhost):
    started = tmp_path / "started"
    playbook = book(tmp_path, f"touch {started}; sleep 2; touch {tmp_path}/finished", f"touch {tmp_path}/second")
    proc = start_cli(tmp_path, playbook, localhost)
    try:
        assert wait_for(started.exists, 60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == errors.EXIT_INTERRUPTED, out + err
    assert (tmp_path / "finished").exists() and not (tmp_path / "second").exists()
    assert "Interrupted: no new task starts" in err
    assert not processes_with(str(playbook))


def test_no_artifact_keeps_the_controllers_environment(tmp_path, localhost, monkeypatch):
    monkeypatch.setenv("AGENTFACTORY_TEST_SECRET", "controller-only-s3cr3t")
    playbook = book(tmp_path, "true")
    result = runner.run_playbook(request(playbook, localhost), quiet()[1])
    assert result.exit_code == errors.EXIT_OK
    private = result.artifacts.parent.parent / "runner"
    assert not (private / "env" / "envvars").exists() and not (private / "env" / "extravars").exists()
    files = [p for root in (result.artifacts, private) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files)
    for path in files:
        text = path.read_text(errors="replace")
        assert "controller-only-s3cr3t" not in text and "AGENTFACTORY_TEST_SECRET" not in text, path
    assert not (result.artifacts / "running.lock").exists()


def test_a_disk_full_while_preparing_the_run_is_one_line_and_exit_1(tmp_path, localhost, monkeypatch):
    from agentfactory_cli import lock

    def full(_run_dir):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock, "RunMarker", full)
    monkeypatch.setattr(runner, "_run", no_task)
    with pytest.raises(errors.AgentFactoryError, match=r"cannot prepare the run's state .*No space left") as exc:
        runner.run_playbook(request(tmp_path / "x.yml", localhost), quiet()[1])
    assert exc.value.exit_code == errors.EXIT_ERROR
    assert lock.FleetLock(["localhost"]).try_acquire({})  # released on the way out
