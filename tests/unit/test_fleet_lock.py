"""One run at a time per fleet (a lock held by another process), stale locks, and rotation that
never removes a run in progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import no_task

from agentfactory_cli import cli, errors, lock, runner
from agentfactory_cli.lock import FleetLock, acquire_fleet, fleet_key, holder_info

FLEET = ["web1", "web2", "mon1"]

HOLDER = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from agentfactory_cli.lock import acquire_fleet, holder_info
    lock = acquire_fleet(sys.argv[1].split(","), holder_info("deploy", Path("/runs/RUN-1")))
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
    """)


@pytest.fixture
def other_run():
    """Start another process that takes the fleet's lock and holds it for `seconds`."""
    procs = []

    def start(seconds: float = 60, hosts=FLEET) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, ",".join(hosts), str(seconds)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_the_fleet_is_named_by_its_hosts_not_their_order_or_the_path():
    assert fleet_key(["b", "a", "a"]) == fleet_key(["a", "b"])
    assert fleet_key(["a", "b"]) != fleet_key(["a"])


def test_a_second_run_fails_at_once_naming_the_run_that_holds_the_fleet(other_run):
    proc = other_run()
    started = time.monotonic()
    with pytest.raises(errors.FleetBusy) as exc:
        acquire_fleet(list(reversed(FLEET)), holder_info("update", Path("/runs/RUN-2")))
    assert time.monotonic() - started < 1
    message = str(exc.value)
    assert f"`deploy` (pid {proc.pid}, started " in message and "UTC" in message
    assert "artifacts /runs/RUN-1" in message and "--wait" in message
    assert exc.value.exit_code == errors.EXIT_BUSY == 75


def test_another_fleet_is_not_held(other_run):
    other_run()
    acquire_fleet(["elsewhere"], holder_info("deploy", Path("/r"))).release()


def test_wait_queues_until_the_other_run_ends(other_run):
    other_run(seconds=1.5)
    notes = []
    started = time.monotonic()
    held = acquire_fleet(FLEET, holder_info("deploy", Path("/runs/RUN-2")), wait=30, log=notes.append)
    assert 1 <= time.monotonic() - started < 10
    assert notes and "Waiting for `deploy`" in notes[0] and "s left" in notes[0]
    assert held.holder()["artifacts"] == "/runs/RUN-2" and held.holder()["pid"] == os.getpid()
    held.release()


def test_wait_is_bounded(other_run):
    other_run()
    with pytest.raises(errors.FleetBusy, match=r"gave up after waiting 1s .*`deploy`"):
        acquire_fleet(FLEET, holder_info("deploy", Path("/r")), wait=1)


def test_a_lock_whose_process_is_gone_is_taken_over(other_run):
    proc = other_run()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    held = acquire_fleet(FLEET, holder_info("deploy", Path("/runs/RUN-2")))
    assert held.took_over["pid"] == proc.pid  # what the dead run left, for the operator
    assert held.holder()["artifacts"] == "/runs/RUN-2"
    held.release()
    # Released normally: nothing left to take over.
    again = acquire_fleet(FLEET, holder_info("deploy", Path("/r")))
    assert again.took_over == {}
    again.release()


def test_in_one_process_the_file_lock_is_exclusive_and_acquire_fleet_counts():
    first = FleetLock(FLEET)
    assert first.try_acquire({"verb": "deploy"})
    assert not FleetLock(FLEET).try_acquire({"verb": "deploy"})
    first.release()
    # A verb that runs a listing playbook then the real one holds the lock across both.
    outer = acquire_fleet(FLEET, holder_info("deploy", Path("/r")))
    inner = acquire_fleet(FLEET, holder_info("deploy", Path("/r2")))
    assert inner is outer
    inner.release()
    assert not FleetLock(FLEET).try_acquire({})  # still held by the outer holder
    outer.release()
    second = FleetLock(FLEET)
    assert second.try_acquire({"verb": "deploy"})
    second.release()


def _request(inventory: Path, verb: str) -> runner.PlaybookRequest:
    return runner.PlaybookRequest(verb=verb, playbook="x.yml", inventories=[inventory], fleet=FLEET)


def test_the_cli_exits_75_before_anything_runs(other_run, tmp_path, monkeypatch, capsys):
    other_run()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n    web2:\n    mon1:\n")
    monkeypatch.setattr(runner, "_run", no_task)
    assert cli.main(["bootstrap", "-i", str(inventory), "--limit", "web1"]) == errors.EXIT_BUSY
    err = capsys.readouterr().err
    assert "another run holds this fleet: `deploy`" in err


def test_the_cli_holds_the_lock_from_the_confirmation_to_the_end_of_the_run(tmp_path, monkeypatch):
    import dataclasses

    from agentfactory_cli.verbs import VERBS

    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n    web2:\n    mon1:\n")
    seen = []

    def confirm(*_a):
        seen.append(FleetLock(FLEET).holder()["verb"])

    monkeypatch.setitem(VERBS, "bootstrap", dataclasses.replace(VERBS["bootstrap"], confirm=confirm))

    def fake_run(req, display, ident, kwargs, artifacts, init_runner, gate=None):
        seen.append(FleetLock(FLEET).holder()["artifacts"] == str(artifacts))
        return runner.RunResult(status="successful", ansible_rc=0, hosts={}, artifacts=artifacts)

    monkeypatch.setattr(runner, "_run", fake_run)
    assert cli.main(["bootstrap", "-i", str(inventory)]) == errors.EXIT_OK
    assert seen == ["bootstrap", True]  # held while asking; then naming the run itself
    assert FleetLock(FLEET).try_acquire({})  # released at the end


@pytest.mark.parametrize("verb", sorted(lock.READ_ONLY_VERBS))
def test_read_only_verbs_take_no_lock(other_run, tmp_path, monkeypatch, verb):
    other_run()
    seen = []
    monkeypatch.setattr(runner, "_run", lambda req, *a, **k: seen.append(req.verb))
    runner.run_playbook(_request(tmp_path / "inv", verb), display=None)
    assert seen == [verb]


class Notes(list):
    note = list.append


def test_a_mutating_run_holds_the_lock_for_the_whole_run_and_releases_it(tmp_path, monkeypatch):
    def fake_run(req, display, ident, kwargs, artifacts, init_runner, gate=None):
        assert not FleetLock(FLEET).try_acquire({})  # held now
        assert lock.in_progress(artifacts)
        return "done"

    monkeypatch.setattr(runner, "_run", fake_run)
    assert runner.run_playbook(_request(tmp_path / "inv", "deploy"), display=Notes()) == "done"
    assert FleetLock(FLEET).try_acquire({})


def test_wait_option_is_on_the_verbs_that_change_hosts_only():
    parser = cli.build_parser()
    assert parser.parse_args(["deploy", "--wait"]).wait == cli.WAIT_DEFAULT
    assert parser.parse_args(["deploy", "--wait", "90"]).wait == 90
    assert parser.parse_args(["deploy"]).wait is None
    for verb in ("status", "check"):
        with pytest.raises(SystemExit):
            parser.parse_args([verb, "--wait"])


# --- rotation -------------------------------------------------------------------------------


def _runs(root: Path, n: int) -> list[Path]:
    dirs = []
    for i in range(n):
        d = root / f"run-{i}"
        d.mkdir(parents=True)
        os.utime(d, (1000 + i, 1000 + i))
        dirs.append(d)
    return dirs


def test_rotation_keeps_the_newest_and_every_run_in_progress(tmp_path):
    dirs = _runs(tmp_path / "runs", 6)
    marker = lock.RunMarker(dirs[0])  # the oldest: a long run still going
    os.utime(dirs[0], (1000, 1000))
    (dirs[1] / lock.RUNNING_FILE).touch()  # a run that crashed: its marker is not locked
    os.utime(dirs[1], (1001, 1001))
    removed = lock.rotate_artifacts(tmp_path / "runs", keep=2)
    assert sorted(p.name for p in removed) == ["run-1", "run-2", "run-3"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run-0", "run-4", "run-5"]
    marker.release()
    assert not (dirs[0] / lock.RUNNING_FILE).exists()
    os.utime(dirs[0], (1000, 1000))  # the run ended: the oldest again, and no longer kept
    assert lock.rotate_artifacts(tmp_path / "runs", keep=2) == [dirs[0]]


def test_a_run_in_another_process_is_in_progress(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = ("import sys, time; from pathlib import Path; from agentfactory_cli.lock import RunMarker; "
            "RunMarker(Path(sys.argv[1])); print('on', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "on"
        assert lock.in_progress(run)
        assert lock.rotate_artifacts(tmp_path, keep=0) == []
    finally:
        proc.kill()
        proc.wait()
    assert not lock.in_progress(run)  # killed: the kernel dropped its lock
    assert lock.rotate_artifacts(tmp_path, keep=0) == [run]


def test_ansible_runner_does_no_rotation_of_its_own(tmp_path):
    kwargs = runner.build_runner_kwargs(_request(tmp_path, "deploy"), ident="X")
    assert kwargs["rotate_artifacts"] == 0
