"""One playbook run through ansible-runner's Python API: kwargs in, a RunResult out.

Every event of the run is folded into the result here (RunEvents): the per-host counts, the
failures, and what the verb reads from its modules (extracts). The display draws; it keeps nothing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentfactory_cli import ansiblecore, errors, lock
from agentfactory_cli.paths import collections_root, project_root, state_dir

# Name the file that stops a run between tasks, and the one that lets a gated run's first task
# start (plugins/plugin_utils/stoppable.py reads both).
STOP_FILE_ENV = "AGENTFACTORY_STOP_FILE"
GATE_FILE_ENV = "AGENTFACTORY_GATE_FILE"

# Run artifact directories kept (runs in progress are never removed: lock.rotate_artifacts).
KEEP_RUNS = 50
# Below this much free space where the artifacts go, a run is refused before it starts.
MIN_FREE_BYTES = 16 * 1024 * 1024

# Counters of the per-host recap, named as in ansible's own recap.
RECAP_KEYS = ("ok", "changed", "failed", "unreachable", "skipped")
# playbook_on_stats names them differently.
_STATS_KEYS = {"ok": "ok", "changed": "changed", "failed": "failures", "unreachable": "dark",
               "skipped": "skipped"}
# The events that end a task on a host, and what each counts as.
_COUNTED = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}

# What a verb reads from its run besides the counts: given the event_data of a task that ended
# ok on a host, what to keep for that host (the last one kept wins), or None.
Extractor = Callable[[dict[str, Any]], Any]


@dataclass
class PlaybookRequest:
    """Everything a playbook-running verb needs, after the command line is parsed."""

    verb: str
    playbook: str
    inventories: list[Path]
    limit: str | None = None
    check: bool = False
    diff: bool = False
    verbosity: int = 0
    forks: int | None = None
    # Modules through Mitogen (the stoppable_mitogen strategy) instead of one Python per task.
    mitogen: bool = False
    vault_password_file: Path | None = None
    extravars: dict[str, Any] = field(default_factory=dict)
    # The hosts the run is about, when a display reports on each (update: where the agent is placed).
    targets: list[str] = field(default_factory=list)
    # status: the replicas the catalog places on each host of the run (host -> agent -> count), so
    # that a host that does not report counts as that many unknown replicas, not none.
    desired: dict[str, dict[str, int]] = field(default_factory=dict)
    # What the checked input holds: the catalog's agents and the hosts the run is limited to.
    agents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    # Every host of the inventory, whatever the limit: what the run's lock is named after (lock.py).
    fleet: list[str] = field(default_factory=list)
    # --wait: seconds to wait for another run on the fleet to end (None: fail at once).
    wait: float | None = None
    # ansible-playbook's own options, passed through as the operator gave them (paths made absolute:
    # ansible-playbook runs in the project directory).
    extra_vars: list[str] = field(default_factory=list)  # -e, in order; the verb's extravars come last
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    start_at_task: str | None = None
    user: str | None = None
    private_key: Path | None = None
    become: bool = False
    become_user: str | None = None
    ask_become_pass: bool = False
    vault_ids: list[str] = field(default_factory=list)
    ask_vault_pass: bool = False
    ssh_common_args: str | None = None
    ansible_args: list[str] = field(default_factory=list)  # whatever followed `--`
    # Prompt regex -> answer, for ansible-runner's pexpect (-K, --ask-vault-pass, --vault-id L@prompt).
    # Never on a command line, in the environment or an artifact; never shown.
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    # What the verb reads from the run's events: RunResult.extracts[name][host].
    extract: dict[str, Extractor] = field(default_factory=dict, repr=False)


@dataclass
class RunResult:
    status: str  # ansible-runner's: successful, failed, canceled, timeout, error
    ansible_rc: int | None
    hosts: dict[str, dict[str, int]]
    artifacts: Path
    failures: list[dict[str, str]] = field(default_factory=list)
    canceled: bool = False
    error: str = ""  # Ansible's own error when it stopped before any host failed (bad playbook...)
    verb: str = ""  # the request's
    # name -> host -> what the request's extractor of that name kept (PlaybookRequest.extract).
    extracts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """Our documented exit code (see errors.EXIT_CODES_HELP)."""
        if self.canceled or self.status == "canceled":
            return errors.EXIT_INTERRUPTED
        if self.status == "error":  # the run itself broke (disk full...), whatever the hosts said
            return errors.EXIT_ERROR
        if any(h["unreachable"] for h in self.hosts.values()):
            return errors.EXIT_UNREACHABLE
        if any(h["failed"] for h in self.hosts.values()):
            return errors.EXIT_HOST_FAILED
        if self.ansible_rc == 0 and self.status == "successful":
            return errors.EXIT_OK
        if self.ansible_rc in (4, 5):  # ansible-playbook: parser error, bad options
            return errors.EXIT_INVALID_INPUT
        return errors.EXIT_ERROR


def failure_message(res: dict[str, Any], limit: int = 600) -> str:
    """The useful part of a failed task's result, in one short paragraph."""
    parts = []
    if res.get("msg"):
        parts.append(str(res["msg"]))
    for item in res.get("results") or []:
        if isinstance(item, dict) and item.get("failed") and item.get("msg"):
            parts.append(f"[{item.get('item', '?')}] {item['msg']}")
    stderr = (res.get("stderr") or res.get("module_stderr") or "").strip()
    if stderr:
        parts.append(stderr)
    text = " | ".join(dict.fromkeys(p.strip() for p in parts if p.strip())) or "no message"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outcome(ev: dict[str, Any]) -> str | None:
    """What an event that ends a task on a host counts as (an ignored failure is ok), else None."""
    data = ev.get("event_data") or {}
    key = _COUNTED.get(ev.get("event", ""))
    if key is None or not data.get("host"):
        return None
    return "ok" if key == "failed" and data.get("ignore_errors") else key


def failure_of(ev: dict[str, Any]) -> dict[str, str] | None:
    """{host, task, kind, message} of an event where a task failed or a host was unreachable."""
    key = outcome(ev)
    if key not in ("failed", "unreachable"):
        return None
    data = ev["event_data"]
    return {"host": data["host"], "task": data.get("task", ""), "kind": key,
            "message": failure_message(data.get("res") or {})}


class RunEvents:
    """ansible-runner's events, folded one at a time into what the run's RunResult holds; while
    the run goes on, its progress so far (the display's live table draws from it)."""

    def __init__(self, extract: Mapping[str, Extractor] | None = None) -> None:
        self.extract = dict(extract or {})
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(RECAP_KEYS, 0))
        self.stats: dict[str, dict[str, int]] | None = None
        self.failures: list[dict[str, str]] = []
        self.extracts: dict[str, dict[str, Any]] = {name: {} for name in self.extract}
        self.in_flight: dict[str, str] = {}  # host -> the task it runs now
        self.play = ""

    def add(self, ev: dict[str, Any]) -> None:
        name = ev.get("event", "")
        data = ev.get("event_data") or {}
        host = data.get("host")
        if name == "playbook_on_play_start":
            self.play = data.get("play", "")
        elif name == "runner_on_start" and host:
            self.in_flight[host] = data.get("task", "")
            self.counts[host]  # a row from its first task on
        elif key := outcome(ev):
            self.in_flight.pop(host, None)
            self.counts[host][key] += 1
            if key == "ok" and (data.get("res") or {}).get("changed"):
                self.counts[host]["changed"] += 1
            if failure := failure_of(ev):
                self.failures.append(failure)
            if name == "runner_on_ok":
                for extract, of in self.extract.items():
                    if (value := of(data)) is not None:
                        self.extracts[extract][host] = value
        elif name == "playbook_on_stats":
            self.stats = {key: {} for key in RECAP_KEYS}
            for ours, theirs in _STATS_KEYS.items():
                self.stats[ours] = dict(data.get(theirs) or {})

    def recap_counts(self) -> dict[str, dict[str, int]]:
        """Per-host recap: from ansible's own stats when the run got that far, else our counts."""
        hosts = sorted(set(self.counts) | set().union(*(self.stats or {}).values()))
        if self.stats is None:
            return {h: dict(self.counts[h]) for h in hosts}
        return {h: {k: int(self.stats[k].get(h, 0)) for k in RECAP_KEYS} for h in hosts}

    def result(self, status: str, ansible_rc: int | None, artifacts: Path, **kwargs: Any) -> RunResult:
        return RunResult(status=status, ansible_rc=ansible_rc, hosts=self.recap_counts(), artifacts=artifacts,
                         failures=list(self.failures), extracts={k: dict(v) for k, v in self.extracts.items()},
                         **kwargs)


# Controller variables the `command` artifact may keep besides the ones the CLI sets itself.
_HARMLESS_ENV = re.compile(r"^(PATH|HOME|LANG|LC_[A-Z_]+|TERM|USER)$")


def filter_command_env(env: dict[str, Any], kept: set[str]) -> dict[str, Any]:
    """The environment as the `command` artifact may record it: the variables the CLI sets
    (`kept`, the envvars of build_runner_kwargs) and harmless ones; the rest of the controller's
    environment (tokens, proxies with passwords, ...) is left out."""
    return {k: v for k, v in env.items() if k in kept or _HARMLESS_ENV.match(k)}


def scrub_command_artifact(artifact_dir: Path, kept: set[str]) -> None:
    """Rewrite ansible-runner's `command` artifact (command, cwd and the whole environment of
    the controller) with the environment filtered, in place, mode 0600."""
    path = artifact_dir / "command"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    doc["env"] = filter_command_env(doc.get("env") or {}, kept)
    tmp = path.with_name("command.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
    os.replace(tmp, path)


def _private_dir(path: Path) -> None:
    """A directory only its owner can read (run artifacts hold what the hosts answered)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def new_ident(verb: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{verb}"


def build_runner_kwargs(req: PlaybookRequest, ident: str, gated: bool = False) -> dict[str, Any]:
    """The ansible-runner kwargs for one request: the single place a command line becomes a run.
    `gated`: its first task waits for gate_file(ident) (or the stop file)."""
    root = project_root()
    cmdline: list[str] = []
    if req.check:
        cmdline.append("--check")
    if req.diff:
        cmdline.append("--diff")
    if req.vault_password_file:
        cmdline += ["--vault-password-file", str(req.vault_password_file)]
    for vault_id in req.vault_ids:
        cmdline += ["--vault-id", vault_id]
    if req.ask_vault_pass:
        cmdline.append("--ask-vault-pass")
    for extra in req.extra_vars:
        cmdline += ["--extra-vars", extra]
    for flag, value in (("--start-at-task", req.start_at_task), ("--user", req.user),
                        ("--private-key", req.private_key and str(req.private_key)),
                        ("--become-user", req.become_user), ("--ssh-common-args", req.ssh_common_args)):
        if value:
            cmdline += [flag, value]
    if req.become:
        cmdline.append("--become")
    if req.ask_become_pass:
        cmdline.append("--ask-become-pass")
    cmdline += req.ansible_args
    kwargs: dict[str, Any] = {
        "private_data_dir": str(state_dir() / "runner"),
        "artifact_dir": str(state_dir() / "runs"),
        "ident": ident,
        # Ours instead (lock.rotate_artifacts): ansible-runner's deletes runs still in progress.
        "rotate_artifacts": 0,
        "project_dir": str(root),
        "playbook": str(root / "playbooks" / req.playbook),
        "inventory": [str(p) for p in req.inventories],
        "envvars": {
            "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
            # ansible.cfg's list with this project's place made absolute: an installed package
            # has no ./.ansible link beside its ansible.cfg.
            "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
                [str(collections_root()), "~/.ansible/collections", "/usr/share/ansible/collections"]),
            # An inventory Ansible cannot parse is an error, not a warning and an empty run.
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_NOCOLOR": "True",
            # Linear, but a Ctrl-C lets the tasks in flight finish (plugins/strategy/stoppable.py);
            # with --mitogen the same on Mitogen (stoppable_mitogen.py).
            "ANSIBLE_STRATEGY": f"agentfactory.fleet.{'stoppable_mitogen' if req.mitogen else 'stoppable'}",
            STOP_FILE_ENV: str(stop_file(ident)),
            **({GATE_FILE_ENV: str(gate_file(ident))} if gated else {}),
            # The ansible-playbook installed beside this Python (a virtualenv need not be active).
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        },
        # Our display renders events; env files would leave copies of vars on disk.
        "quiet": True,
        "suppress_env_files": True,
    }
    if req.limit:
        kwargs["limit"] = req.limit
    if req.forks:
        kwargs["forks"] = req.forks
    if req.verbosity:
        kwargs["verbosity"] = req.verbosity
    if cmdline:
        kwargs["cmdline"] = shlex.join(cmdline)
    if req.extravars:
        kwargs["extravars"] = req.extravars
    if req.tags:
        kwargs["tags"] = ",".join(req.tags)
    if req.skip_tags:
        kwargs["skip_tags"] = ",".join(req.skip_tags)
    if req.passwords:
        kwargs["passwords"] = dict(req.passwords)
    return kwargs


def stop_file(ident: str) -> Path:
    """The file whose existence stops a run between tasks (plugins/strategy/stoppable.py)."""
    return state_dir() / "runner" / f"{ident}.stop"


def gate_file(ident: str) -> Path:
    """The file whose existence lets a gated run's first task start."""
    return state_dir() / "runner" / f"{ident}.go"


class _Cancel:
    """Ctrl-C handling. The first asks the run to stop between tasks: the stoppable strategy
    starts no further task and lets the ones in flight finish, so nothing is left half-done.
    The second stops at once: ansible-runner kills ansible-playbook (its cancel callback)."""

    def __init__(self, stop_path: Path) -> None:
        self.stop_path = stop_path
        self.stopping = threading.Event()
        self.requested = threading.Event()

    def on_signal(self, *_args: Any) -> None:
        if self.stopping.is_set():
            self.requested.set()
            return
        self.stopping.set()
        try:
            self.stop_path.touch()
        except OSError:  # a full disk, say: no way to ask for a stop between tasks, so stop now
            self.requested.set()

    def __call__(self) -> bool:
        return self.requested.is_set()


def _keep_event(artifacts: Path, ev: dict[str, Any]) -> None:
    """The event in the run's artifacts as ansible-runner keeps it (job_events/COUNTER-UUID.json,
    written aside then renamed, owner-only), in one write: its own json.dump into a codecs writer
    writes a few characters at a time and was most of the CLI's CPU in a site run."""
    if "uuid" not in ev:
        return
    path = artifacts / "job_events" / f"{ev['counter']}-{ev['uuid']}.json"
    aside = path.with_name(path.name + ".tmp")
    try:
        with open(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            out.write(json.dumps(ev))
        os.rename(aside, path)
    except OSError:  # as ansible-runner: the run goes on; a full disk ends it through stdout
        pass


def _guarded(handler, report):
    """The event handler as ansible-runner calls it: a display that breaks (whatever a host sent)
    is reported once and the run goes on; the event is still kept in the artifacts."""
    broken: list[BaseException] = []

    def event(ev: dict[str, Any]) -> bool:
        try:
            return handler(ev)
        except Exception as exc:  # any display bug, never the run's end
            if not broken:
                broken.append(exc)
                report(exc)
            return True

    return event


def _report_display_error(exc: BaseException) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"warning: the display failed on an event ({type(exc).__name__}: "
                         f"{str(exc)[:300]!r}); the run goes on, see its artifacts for the events\n")


def _check_free_space(path: Path) -> None:
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise errors.AgentFactoryError(
            f"not enough free space for the run's artifacts in {path}: {free // 1024 ** 2} MiB free, "
            f"{MIN_FREE_BYTES // 1024 ** 2} MiB needed; free some space (old runs are in {path})")


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def run_playbook(req: PlaybookRequest, display, gate: Callable[[], None] | None = None) -> RunResult:
    """Run one playbook, folding every event into its result and showing it to `display` (its
    start, event and note); Ctrl-C stops the run cleanly.

    `gate`: the checks of the run's inputs, called once ansible-playbook is starting (its own
    start-up overlaps them) and before any task: when it raises, no task starts, the run's
    artifacts are removed and its exception is raised. Read-only verbs only: no lock is taken
    before it."""
    ident = new_ident(req.verb)
    kwargs = build_runner_kwargs(req, ident, gated=gate is not None)
    runs = Path(kwargs["artifact_dir"])
    artifacts = runs / ident
    fleet = None
    with _preparing(runs):
        _private_dir(Path(kwargs["private_data_dir"]))
        _private_dir(runs)
        _check_free_space(runs)
        if req.verb not in lock.READ_ONLY_VERBS:
            fleet = lock.acquire_fleet(req.fleet or req.hosts, lock.holder_info(req.verb, artifacts),
                                       wait=req.wait, log=display.note)
    try:
        if fleet and fleet.took_over:
            display.note(f"Took over the lock left by {lock.describe(fleet.took_over)}: that process is gone.")
            fleet.took_over = {}  # said once, also when the lock is taken again for the next run
        with _preparing(runs):
            _private_dir(artifacts)
            marker = lock.RunMarker(artifacts)
        try:
            lock.rotate_artifacts(runs, KEEP_RUNS)
            return _run(req, display, ident, kwargs, artifacts, ansiblecore.init_runner, gate=gate)
        except _Refused as refused:
            shutil.rmtree(artifacts, ignore_errors=True)  # a run that never ran a task
            raise refused.cause from None
        finally:
            marker.release()
    finally:
        if fleet:
            fleet.release()


@contextlib.contextmanager
def _preparing(runs: Path):
    """A run that cannot even start (a full disk, a read-only state dir) is one line and exit 1."""
    try:
        yield
    except OSError as exc:
        raise errors.AgentFactoryError(f"cannot prepare the run's state in {runs.parent}: {exc}") from None


class _HeldEvents:
    """Events kept from the display until release(), then shown in order (thread-safe: the
    runner's thread holds, the main thread releases)."""

    def __init__(self, show: Callable[[dict[str, Any]], Any]) -> None:
        self.show = show
        self.events: list[dict[str, Any]] | None = []
        self.lock = threading.Lock()

    def hold(self, ev: dict[str, Any]) -> bool:
        with self.lock:
            if self.events is None:
                return False
            self.events.append(ev)
            return True

    def release(self) -> None:
        with self.lock:
            events, self.events = self.events or [], None
            for ev in events:
                self.show(ev)


class _Refused(Exception):
    """The gate refused the run (its `cause`): no task started."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _open_gate(gate: Callable[[], None], thread: threading.Thread, cancel: _Cancel, ident: str) -> None:
    try:
        gate()
    except BaseException as exc:
        cancel.stop_path.touch()  # the strategy starts no task, ansible-playbook ends
        thread.join(60)
        raise _Refused(exc) from None
    gate_file(ident).touch()


def _run(req: PlaybookRequest, display, ident: str, kwargs: dict[str, Any], artifacts: Path,
         init_runner, gate: Callable[[], None] | None = None) -> RunResult:
    ansiblecore.install_spawn_hook()
    kept_env = set(kwargs["envvars"])

    def on_status(data: dict[str, Any], runner_config=None) -> None:
        # 'running' comes right after ansible-runner wrote the `command` artifact and before
        # ansible-playbook starts: nothing of the controller's environment stays there.
        if data.get("status") == "running" and runner_config is not None:
            scrub_command_artifact(Path(runner_config.artifact_dir), kept_env)
    cancel = _Cancel(stop_file(ident))
    events = RunEvents(req.extract)
    # A gated run is shown once its gate opens: a refused one shows nothing but the refusal.
    held = _HeldEvents(_guarded(display.event, _report_display_error)) if gate is not None else None

    def on_event(ev: dict[str, Any]) -> bool:
        events.add(ev)  # first: the result has the event even when the display fails on it
        if (held is not None and held.hold(ev)) or display.event(ev):
            _keep_event(artifacts, ev)
        return False  # kept above (ansible-runner writes it only when a display fails on it)

    if held is None:
        display.start(req, events)
    # Our own handler, because a shell that starts us in the background leaves SIGINT ignored,
    # and KeyboardInterrupt can land anywhere. SIGTERM is handled as Ctrl-C.
    previous = {sig: signal.signal(sig, cancel.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    crash: list[BaseException] = []
    try:
        runner = init_runner(**kwargs, event_handler=_guarded(on_event, _report_display_error),
                             cancel_callback=cancel, status_handler=on_status)

        def target() -> None:
            # Our thread rather than run_async's, to see why ansible-runner stopped (a write that
            # failed on a full disk, ...); ansible-playbook then gets SIGTERM (ansiblecore.install_spawn_hook).
            try:
                runner.run()
            except Exception as exc:  # reported as the run's error below
                crash.append(exc)
                pid = ansiblecore.spawned_pid()
                if pid:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGTERM)  # the pty made it a group leader

        thread = threading.Thread(target=target, name="ansible-runner", daemon=True)
        thread.start()
        if gate is not None:
            _open_gate(gate, thread, cancel, ident)
            display.start(req, events)
            held.release()
        noted = hard_noted = False
        while thread.is_alive():
            thread.join(0.2)
            if cancel.stopping.is_set() and not noted:
                noted = True
                display.note("Interrupted: no new task starts; waiting for the tasks in flight to finish "
                             "(Ctrl-C again to stop at once, which can leave a task half-done)...")
            if cancel.requested.is_set() and not hard_noted:
                hard_noted = True
                display.note("Stopping at once: ansible-playbook is being killed...")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        cancel.stop_path.unlink(missing_ok=True)
        gate_file(ident).unlink(missing_ok=True)
    # ansible-runner may finish writing the final events just after its thread ends.
    time.sleep(0.05)
    with contextlib.suppress(OSError):
        scrub_command_artifact(artifacts, kept_env)  # in case the run ended before 'running'
    error = ""
    stopped = cancel.stopping.is_set()
    status = "canceled" if stopped else runner.status
    if crash:
        exc = crash[0]
        status = "error"
        if _disk_full(exc):
            error = (f"the disk holding the run's artifacts is full ({artifacts.parent}: {exc.strerror}); "
                     "the run was stopped: free some space and run again")
        else:
            error = f"the run broke off: {type(exc).__name__}: {exc}"
    elif runner.rc not in (0, None) and not events.failures and not stopped:
        error = _ansible_error(artifacts / "stdout")
    return events.result(status, runner.rc, artifacts, canceled=stopped and not crash, error=error, verb=req.verb)


def _ansible_error(stdout: Path, max_lines: int = 12) -> str:
    """Ansible's ERROR paragraph from a run's stdout, or its last lines."""
    try:
        lines = [ln.rstrip() for ln in stdout.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    start = next((i for i, ln in enumerate(lines) if ln.startswith(("ERROR", "[ERROR]"))), None)
    chosen = lines[start:] if start is not None else lines[-max_lines:]
    return "\n".join(ln for ln in chosen if ln.strip())[:2000]
