"""One run at a time per fleet, and runs in progress that rotation must not delete.

Both are fcntl.flock locks on files: the kernel drops a lock when the process holding it dies,
even by SIGKILL, so a lock left by a crashed run is simply free (stale holder details are
overwritten by the next run). Lock files are never deleted: a process could still hold the
inode another one is about to unlink.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agentfactory_cli import errors
from agentfactory_cli.paths import state_dir

# Verbs that change nothing on the hosts: they run beside a deploy (status during an update).
READ_ONLY_VERBS = frozenset({"status", "check"})

# In each run's artifact directory while the run goes on: rotation skips a directory whose
# file is locked.
RUNNING_FILE = "running.lock"

# With --wait: how often the operator hears that the run still waits.
WAIT_NOTE_EVERY = 30.0


def fleet_key(hosts: list[str]) -> str:
    """The lock's name for a fleet: the set of its inventory's hosts, whatever the --limit.

    Keyed on hosts rather than on the inventory paths, so that the same fleet reached through
    another path (its directory or a file in it, a symlink, a copy) is the same lock; and on
    every host of the inventory rather than the limited ones, because a run on some hosts still
    reconfigures what the whole fleet shares (gateway backends, Prometheus targets). Two
    inventories that merely share host names wait for each other: safe, if cautious.
    """
    names = "\n".join(sorted(set(hosts)))
    return hashlib.sha256(names.encode()).hexdigest()[:16]


# The fleet locks this process holds, by file: taken again (a verb that runs a listing playbook
# first, then the real one, under one lock), a lock is counted, not re-locked (flock would refuse
# a second open file of the same process).
_HELD: dict[Path, FleetLock] = {}


class FleetLock:
    """The lock of one fleet, as a file under the state dir holding its holder's details."""

    def __init__(self, hosts: list[str]) -> None:
        self.path = state_dir() / "locks" / f"fleet-{fleet_key(hosts)}.lock"
        self.fd: int | None = None
        self.depth = 0
        self.took_over: dict = {}  # the details a dead holder left, when we took its lock over

    def try_acquire(self, holder: dict) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise errors.AgentFactoryError(f"cannot open the fleet's lock {self.path}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # Details still there: their run died without releasing (release empties the file).
        self.took_over = _parse(os.pread(fd, 4096, 0))
        self.fd = fd
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same, unnamed
            self.write(holder)
        self.depth = 1
        _HELD[self.path] = self
        return True

    def write(self, holder: dict) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(holder).encode(), 0)

    def holder(self) -> dict:
        try:
            return _parse(self.path.read_bytes())
        except OSError:
            return {}

    def release(self) -> None:
        if self.fd is None:
            return
        self.depth -= 1
        if self.depth > 0:
            return
        _HELD.pop(self.path, None)
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        os.close(self.fd)  # drops the flock
        self.fd = None


def _parse(raw: bytes) -> dict:
    try:
        doc = json.loads(raw.decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def holder_info(verb: str, artifacts: Path) -> dict:
    return {"verb": verb, "pid": os.getpid(), "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "artifacts": str(artifacts)}


def describe(holder: dict) -> str:
    if not holder:
        return "another run (its details are being written)"
    return (f"`{holder.get('verb', '?')}` (pid {holder.get('pid', '?')}, started {holder.get('started', '?')}, "
            f"artifacts {holder.get('artifacts', '?')})")


def acquire_fleet(hosts: list[str], holder: dict, wait: float | None = None,
                  log: Callable[[str], None] = lambda _m: None) -> FleetLock:
    """The fleet's lock, at once or, with `wait` (seconds), as soon as the run holding it ends;
    errors.FleetBusy when another run holds it (still, after `wait`)."""
    lock = FleetLock(hosts)
    if lock.path in _HELD:
        held = _HELD[lock.path]
        held.depth += 1
        with contextlib.suppress(OSError):
            held.write(holder)  # the run now going on is the one to name
        return held
    if lock.try_acquire(holder):
        return lock
    hint = f"lock file {lock.path}"
    if not wait:
        raise errors.FleetBusy(f"another run holds this fleet: {describe(lock.holder())}; "
                               f"wait for it to end or pass --wait [SECONDS] to queue ({hint})")
    deadline = time.monotonic() + wait
    next_note = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise errors.FleetBusy(f"gave up after waiting {wait:.0f}s for the run holding this fleet: "
                                   f"{describe(lock.holder())} ({hint})")
        if now >= next_note:
            log(f"Waiting for {describe(lock.holder())} to end ({deadline - now:.0f}s left)...")
            next_note = now + WAIT_NOTE_EVERY
        time.sleep(min(0.5, max(0.0, deadline - now)))
        if lock.try_acquire(holder):
            return lock


class RunMarker:
    """A shared lock on the run's own RUNNING_FILE for as long as the run goes on."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RUNNING_FILE
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        # Blocking: a rotation probing this file holds it only for an instant.
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)


def in_progress(run_dir: Path) -> bool:
    try:
        fd = os.open(run_dir / RUNNING_FILE, os.O_RDWR)
    except OSError:
        return False  # no marker: a finished run (or one from before markers)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def rotate_artifacts(runs: Path, keep: int) -> list[Path]:
    """Keep the `keep` newest run directories (by modification time) and every run in progress;
    remove the others. Returns what was removed."""
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another run's rotation
            return 0.0

    try:
        dirs = sorted((p for p in runs.iterdir() if p.is_dir()), key=mtime)
    except OSError:
        return []
    removed = []
    for path in dirs[: max(0, len(dirs) - keep)]:
        if in_progress(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
