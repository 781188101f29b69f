"""`agentfactory logs` and `agentfactory exec`: straight to the replicas' hosts over SSH.

Ansible runs a task and reports when it is done; following logs needs a stream. So these verbs
connect by themselves, with paramiko, with the connection settings Ansible would use for each
host (inventory variables, then the CLI's -u/--private-key, then ~/.ssh/config), one connection
per host, all hosts in parallel. Which replicas run where is the catalog's placement, as the
CLI computes it for every verb (placement.resolve_hosts over the checked inventory).

Nothing here prints a variable of the inventory: a become password is sent to sudo on the
channel's input (never on a command line) and appears in no message.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import heapq
import os
import queue
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentfactory_cli import errors
from agentfactory_cli.display import clean
from agentfactory_cli.inventory import Inventory
from agentfactory_cli.model import fleet, placement

EXIT_SSH_FAILED = 255  # exec: a host could not be reached (as ssh itself says it)
DEFAULT_TAIL = 100
CONNECT_TIMEOUT = 20  # seconds, as ansible.cfg's timeout
# Lines from several hosts are held this long, so that a line that crossed a slower link is still
# printed in time order.
FOLLOW_WINDOW = 0.5
# ... and, at the start, until every replica's backlog came in (or this long, for a quiet one).
FOLLOW_WARMUP = 3.0
# The prompt sudo shows on a pseudo-terminal (logs -f), answered with the become password.
SUDO_PROMPT = "[agentfactory-become-password]"


# --- what to reach ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Replica:
    agent: str
    runtime: str  # docker or systemd
    host: str
    index: int

    @property
    def name(self) -> str:
        return fleet.replica_name(self.agent, self.index)

    @property
    def unit(self) -> str:
        return f"agentfactory-{self.agent}@{self.index}.service"

    @property
    def label(self) -> str:
        return f"{self.host} {self.name}"


def select(target: str, inventory: Inventory, hosts: list[str] | None) -> list[Replica]:
    """The replicas AGENT[/REPLICA] names, on the hosts the agent is placed on (--host, --limit)."""
    agent_name, _, wanted = target.partition("/")
    agent = inventory.agents.get(agent_name)
    if agent is None:
        known = ", ".join(inventory.agent_names) or "none"
        raise errors.InvalidInput(f"unknown agent: {agent_name} (the catalog has: {known})")
    placed, _ = placement.resolve_hosts(agent["hosts"], inventory.groups)
    placed = [h for h in placed if h in inventory.limited]
    if hosts:
        elsewhere = sorted(set(hosts) - set(placed))
        if elsewhere:
            raise errors.InvalidInput(f"agent {agent_name} is not placed on {', '.join(elsewhere)} "
                                      f"(it is on: {', '.join(placed) or 'no host'})")
        placed = [h for h in placed if h in hosts]
    if wanted:
        # A replica by name or number; any number, as `scale` may run more than the catalog's count.
        match = re.fullmatch(rf"(?:{re.escape(agent_name)}-)?(\d+)", wanted)
        if not match:
            raise errors.InvalidInput(f"replica {wanted!r}: expected {agent_name}-N or N")
        indexes = [int(match.group(1))]
    else:
        indexes = list(range(int(agent["replicas"])))
    replicas = [Replica(agent_name, agent["runtime"], h, i) for h in placed for i in indexes]
    if not replicas:
        raise errors.InvalidInput(f"agent {agent_name} has no replica on {', '.join(hosts or placed) or 'any host'}")
    return replicas


# --- how to reach it -------------------------------------------------------------------------


@dataclass
class Hop:
    address: str
    port: int = 22
    user: str | None = None


@dataclass
class Connection:
    """How to reach one host over SSH, as Ansible's ssh connection would."""

    host: str  # its inventory name
    address: str
    port: int
    user: str
    key_file: str | None = None
    jumps: list[Hop] = field(default_factory=list)  # ProxyJump, outermost first
    proxy_command: str | None = None
    check_host_key: bool = True
    known_hosts: str | None = None
    become: bool = False
    become_user: str = "root"
    become_password: str | None = field(default=None, repr=False)

    @property
    def needs_sudo(self) -> bool:
        return self.become and self.user != self.become_user


# Ansible connection plugins that are SSH (and so reachable the same way from here).
SSH_CONNECTIONS = ("ssh", "smart", "paramiko", "paramiko_ssh")


def ssh_options(text: str | None) -> dict[str, str]:
    """The ssh command-line options that matter here (-o K=V, -J, -i, -p, -l), lower-case keys."""
    opts: dict[str, str] = {}
    words = shlex.split(text or "")
    flags = {"-J": "proxyjump", "-i": "identityfile", "-p": "port", "-l": "user"}
    i = 0
    while i < len(words):
        word = words[i]
        flag, value = word[:2], word[2:]
        if flag in ("-o", *flags):
            if not value and i + 1 < len(words):
                i += 1
                value = words[i]
            if flag == "-o":
                key, _, val = value.replace("=", " ", 1).partition(" ")
                opts[key.strip().lower()] = val.strip()
            else:
                opts[flags[flag]] = value
        i += 1
    return opts


def _hop(text: str) -> Hop:
    """user@host:port (ProxyJump's form), user and port optional; ssh:// URLs too."""
    text = text.removeprefix("ssh://")
    user, _, rest = text.rpartition("@")
    match = re.fullmatch(r"\[(?P<v6>[^]]+)\](?::(?P<p6>\d+))?|(?P<h>[^:]+)(?::(?P<p>\d+))?", rest)
    if not match:
        raise errors.InvalidInput(f"ProxyJump {text!r}: expected [user@]host[:port]")
    return Hop(address=match["v6"] or match["h"], port=int(match["p6"] or match["p"] or 22), user=user or None)


def connection(host: str, variables: dict[str, Any], user: str | None = None, private_key: str | None = None,
               ssh_args: str | None = None, become_password: str | None = None,
               ssh_config: Any = None, host_key_checking: bool = True) -> Connection:
    """One host's connection: its inventory variables first (ansible_host, ansible_port,
    ansible_user, ansible_ssh_private_key_file, ansible_ssh_common_args/extra_args, become),
    then the CLI's -u, --private-key and --ssh-common-args, then ~/.ssh/config, then ssh's defaults."""
    kind = str(variables.get("ansible_connection") or "ssh").removeprefix("ansible.builtin.")
    if kind not in SSH_CONNECTIONS:
        raise errors.InvalidInput(f"host {host}: logs and exec reach hosts over SSH only "
                                  f"(ansible_connection is {variables['ansible_connection']})")
    opts = ssh_options(variables.get("ansible_ssh_common_args"))
    opts.update(ssh_options(variables.get("ansible_ssh_extra_args")))
    opts.update({k: v for k, v in ssh_options(ssh_args).items() if k not in opts})
    address = str(variables.get("ansible_host") or host)
    found = ssh_config.lookup(address) if ssh_config is not None else {}
    jumps = opts.get("proxyjump") or found.get("proxyjump")
    strict = opts.get("stricthostkeychecking", found.get("stricthostkeychecking", "")).lower()
    known = opts.get("userknownhostsfile") or (found.get("userknownhostsfile") or [None])[0]
    become_method = variables.get("ansible_become_method") or "sudo"
    become = _truthy(variables.get("ansible_become"))
    if become and become_method != "sudo":
        raise errors.InvalidInput(f"host {host}: logs and exec become with sudo only (ansible_become_method "
                                  f"is {become_method})")
    return Connection(
        host=host,
        address=found.get("hostname", address) if "ansible_host" not in variables else address,
        port=int(variables.get("ansible_port") or opts.get("port") or found.get("port") or 22),
        user=str(variables.get("ansible_user") or user or opts.get("user") or found.get("user")
                 or getpass.getuser()),
        key_file=_path(variables.get("ansible_ssh_private_key_file") or private_key or opts.get("identityfile")
                       or (found.get("identityfile") or [None])[0]),
        jumps=[_hop(j) for j in jumps.split(",")] if jumps and jumps.lower() != "none" else [],
        proxy_command=opts.get("proxycommand") or found.get("proxycommand"),
        check_host_key=host_key_checking and strict not in ("no", "off", "accept-new"),
        known_hosts=None if known in (None, "/dev/null") else _path(known),
        become=become,
        become_user=str(variables.get("ansible_become_user") or "root"),
        become_password=become_password or variables.get("ansible_become_password")
        or variables.get("ansible_become_pass"),
    )


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1", "on")


def _path(value: Any) -> str | None:
    return str(Path(str(value)).expanduser()) if value else None


class Session:
    """An SSH connection to one host (through its jump hosts), shared by its replicas' channels."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._clients: list[Any] = []

    def open(self) -> Session:
        import paramiko

        sock = None
        if self.conn.proxy_command:
            command = (self.conn.proxy_command.replace("%h", self.conn.address)
                       .replace("%p", str(self.conn.port)).replace("%r", self.conn.user))
            sock = paramiko.ProxyCommand(command)
        hops = [*self.conn.jumps, Hop(self.conn.address, self.conn.port, self.conn.user)]
        for n, hop in enumerate(hops):
            client = paramiko.SSHClient()
            if self.conn.check_host_key:
                client.load_system_host_keys()
                if self.conn.known_hosts and os.path.exists(self.conn.known_hosts):
                    client.load_host_keys(self.conn.known_hosts)
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            else:  # StrictHostKeyChecking=no: accepted for this connection, remembered nowhere
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            where = f"{hop.address}:{hop.port}" + (" (jump host)" if n < len(hops) - 1 else "")
            try:
                client.connect(hop.address, port=hop.port, username=hop.user or self.conn.user,
                               key_filename=self.conn.key_file, sock=sock, timeout=CONNECT_TIMEOUT,
                               banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT,
                               allow_agent=True, look_for_keys=self.conn.key_file is None)
            except paramiko.BadHostKeyException:
                raise ConnectionError(f"{where}: its host key has changed (see ~/.ssh/known_hosts)") from None
            except paramiko.SSHException as exc:
                reason = str(exc)
                if "not found in known_hosts" in reason:
                    reason = ("unknown host key: connect once with ssh to accept it, or set "
                              "StrictHostKeyChecking=no in ansible_ssh_common_args")
                raise ConnectionError(f"{where}: {reason}") from None
            except OSError as exc:
                raise ConnectionError(f"{where}: {exc.strerror or exc}") from None
            self._clients.append(client)
            if n < len(hops) - 1:
                nxt = hops[n + 1]
                sock = client.get_transport().open_channel("direct-tcpip", (nxt.address, nxt.port), ("127.0.0.1", 0))
        return self

    def close(self) -> None:
        for client in reversed(self._clients):
            with contextlib.suppress(Exception):
                client.close()

    def run(self, command: list[str], on_out: Callable[[bytes], None], on_err: Callable[[bytes], None],
            pty: bool = False, stop: threading.Event | None = None) -> int:
        """Run `command` (as root when the host's become says so), feeding its output as it comes.
        With `pty` the remote command ends when the channel closes (a hangup), as ssh -t."""
        chan = self._clients[-1].get_transport().open_session()
        password = self.conn.become_password if self.conn.needs_sudo else None
        line = shlex.join(command)
        if self.conn.needs_sudo:
            if password is None:
                sudo = ["sudo", "-n"]
            else:  # the password goes to sudo's prompt (pty) or its standard input, never argv
                sudo = ["sudo", "-p", SUDO_PROMPT] if pty else ["sudo", "-S", "-p", ""]
            line = shlex.join([*sudo, "-u", self.conn.become_user, "--", *command])
        if pty:
            chan.get_pty(width=500)
        chan.exec_command(line)
        if password is not None and not pty:
            chan.sendall((password + "\n").encode())
        if not pty:
            chan.shutdown_write()  # the command reads no input of ours
        prompt = bytearray() if password is not None and pty else None
        while True:
            got = False
            if chan.recv_ready():
                data, got = chan.recv(65536), True
                if prompt is not None:
                    prompt += data
                    if SUDO_PROMPT.encode() in prompt:
                        chan.sendall((password + "\n").encode())
                        data = bytes(prompt.split(SUDO_PROMPT.encode(), 1)[1]).lstrip(b"\r\n")
                        prompt = None
                    elif b"\n" in prompt:  # sudo did not ask
                        data, prompt = bytes(prompt), None
                    else:
                        data = b""
                if data:
                    on_out(data)
            if chan.recv_stderr_ready():
                on_err(chan.recv_stderr(65536))
                got = True
            if not got:
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if chan.closed or (stop is not None and stop.is_set()):
                    break
                time.sleep(0.02)
        status = chan.recv_exit_status() if chan.exit_status_ready() else -1
        chan.close()
        return status


def _connections(args: argparse.Namespace, inventory: Inventory, hosts: set[str],
                 become_password: str | None) -> dict[str, Connection]:
    import paramiko

    from agentfactory_cli import ansiblecore

    ssh_config = None
    path = Path("~/.ssh/config").expanduser()
    if path.is_file():
        ssh_config = paramiko.SSHConfig.from_path(str(path))
    return {host: connection(host, variables, user=args.user, private_key=args.private_key,
                             ssh_args=args.ssh_common_args, become_password=become_password,
                             ssh_config=ssh_config, host_key_checking=ansiblecore.host_key_checking())
            for host, variables in inventory.connections.items() if host in hosts}


# --- logs --------------------------------------------------------------------------------------


def parse_since(text: str) -> timedelta | datetime:
    """An argparse type: a duration (30s, 10m, 2h, 1d) or a time (ISO 8601, UTC when no zone)."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        return timedelta(seconds=int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 10m or a time like 2026-01-31T12:00:00Z, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def logs_command(replica: Replica, follow: bool, since: timedelta | datetime | None, tail: int | None) -> list[str]:
    """The command that prints a replica's output with a timestamp on every line."""
    if replica.runtime == "docker":
        cmd = ["docker", "logs", "--timestamps"]
        if since is not None:
            cmd += ["--since", f"{int(since.total_seconds())}s" if isinstance(since, timedelta)
                    else since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
        if tail is not None:
            cmd += ["--tail", str(tail)]
        return [*cmd, *(["--follow"] if follow else []), replica.name]
    # No colours: with -f it writes to a pseudo-terminal (so that it ends with the connection).
    cmd = ["env", "SYSTEMD_COLORS=0", "journalctl", "--no-pager", "--quiet", "-o", "short-iso-precise",
           "-u", replica.unit]
    if since is not None:
        cmd += ["--since", f"-{int(since.total_seconds())}s" if isinstance(since, timedelta)
                else since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")]
    if tail is not None:
        cmd += ["-n", str(tail)]
    return [*cmd, *(["--follow"] if follow else [])]


_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(text: str) -> datetime | None:
    """docker's RFC 3339 with nanoseconds, journalctl's short-iso-precise; None if neither."""
    text = text.replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), text, count=1)
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else None


def log_line(runtime: str, line: str) -> tuple[datetime, str] | None:
    """(time, text) of one line of logs_command's output; None for anything else (an error)."""
    stamp, _, rest = line.partition(" ")
    when = parse_timestamp(stamp)
    if when is None:
        return None
    if runtime == "systemd":  # "HOSTNAME IDENT[PID]: MESSAGE": the host is in our prefix already
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    return when, rest


class Printer:
    """Writes lines to stdout, each prefixed with its host and replica when there are several."""

    COLOURS = ("36", "33", "35", "32", "34", "31")

    def __init__(self, replicas: list[Replica], timestamps: bool = False, out=None):
        self.out = out or sys.stdout
        self.prefix = len(replicas) > 1
        self.timestamps = timestamps
        colour = self.out.isatty() and not os.environ.get("NO_COLOR")
        width = max(len(r.label) for r in replicas)
        self.labels = {}
        for n, r in enumerate(replicas):
            label = r.label.ljust(width) + " | "
            self.labels[r] = f"\033[{self.COLOURS[n % len(self.COLOURS)]}m{label}\033[0m" if colour else label
        self.lock = threading.Lock()

    def line(self, replica: Replica, text: str, when: datetime | None = None, stream=None) -> None:
        """One line of a replica's output (or a note about it), its control characters escaped: an
        agent's output must not move the cursor, retitle the terminal or fake another line."""
        stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ") if self.timestamps and when else ""
        with self.lock:
            out = stream or self.out
            out.write(stamp + (self.labels[replica] if self.prefix else "") + clean(text) + "\n")
            out.flush()


class _Lines:
    """Bytes in, whole lines out (a partial line waits for its end)."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for raw in lines:
            self.emit(raw.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self.buffer:
            self.emit(self.buffer.decode("utf-8", "replace").rstrip("\r"))
            self.buffer = b""


@contextlib.contextmanager
def _interrupts():
    """Ctrl-C and SIGTERM as KeyboardInterrupt, even when a shell started us in the background
    (which leaves SIGINT ignored)."""

    def interrupt(*_args: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _by_host(replicas: list[Replica]) -> dict[str, list[Replica]]:
    hosts: dict[str, list[Replica]] = {}
    for r in replicas:
        hosts.setdefault(r.host, []).append(r)
    return hosts


def _start(replicas: list[Replica], connections: dict[str, Connection], events: queue.Queue,
           work: Callable[[Session, Replica], None], sessions: list[Session]) -> None:
    """One thread per host: connect, then one thread per replica running `work`."""

    def host_thread(host: str, mine: list[Replica]) -> None:
        try:
            session = Session(connections[host]).open()
        except ConnectionError as exc:
            for r in mine:
                events.put(("unreachable", r, str(exc)))
            return
        sessions.append(session)
        for r in mine:
            threading.Thread(target=_guarded, args=(work, session, r, events), daemon=True).start()

    for host, mine in _by_host(replicas).items():
        threading.Thread(target=host_thread, args=(host, mine), daemon=True).start()


def _guarded(work, session: Session, replica: Replica, events: queue.Queue) -> None:
    try:
        work(session, replica)
    except Exception as exc:  # a dropped connection: reported as the replica's end
        events.put(("end", replica, -1, f"connection lost: {exc}"))


def logs(args: argparse.Namespace, inventory: Inventory, become_password: str | None = None) -> int:
    replicas = select(args.target, inventory, args.host)
    connections = _connections(args, inventory, {r.host for r in replicas}, become_password)
    tail = args.tail if args.tail is not None else (None if args.since else DEFAULT_TAIL)
    printer = Printer(replicas, timestamps=args.timestamps)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    sessions: list[Session] = []

    def work(session: Session, replica: Replica) -> None:
        problems: list[str] = []

        def emit(line: str) -> None:
            parsed = log_line(replica.runtime, line)
            if parsed:
                events.put(("line", replica, *parsed))
            elif line.strip() and not line.startswith("-- "):  # journalctl's "-- No entries --"
                problems.append(line.strip())

        out, err = _Lines(emit), _Lines(emit)  # docker logs writes the container's stderr to stderr
        status = session.run(logs_command(replica, args.follow, args.since, tail), out.feed, err.feed,
                             pty=args.follow, stop=stop)
        out.close()
        err.close()
        events.put(("end", replica, status, "; ".join(problems)))

    pending: list[tuple[datetime, int, float, Replica, str]] = []  # time, order, arrival, replica, text
    ended: set[Replica] = set()
    heard: set[Replica] = set()
    failed = unreachable = interrupted = False
    seq = 0
    started = time.monotonic()
    try:
        with _interrupts():
            _start(replicas, connections, events, work, sessions)
            while len(ended) < len(replicas):
                try:
                    event = events.get(timeout=0.1)
                except queue.Empty:
                    event = None
                if event:
                    heard.add(event[1])
                if event and event[0] == "line":
                    _, replica, when, text = event
                    heapq.heappush(pending, (when, seq, time.monotonic(), replica, text))
                    seq += 1
                elif event:
                    kind, replica, *rest = event
                    ended.add(replica)
                    if kind == "unreachable":
                        unreachable = True
                        printer.line(replica, f"unreachable: {rest[0]}", stream=sys.stderr)
                    elif rest[0] != 0:
                        failed = True
                        why = rest[1] or f"exited {rest[0]}"
                        printer.line(replica, f"{'docker logs' if replica.runtime == 'docker' else 'journalctl'}: "
                                              f"{why}", stream=sys.stderr)
                # Followed lines wait FOLLOW_WINDOW for a possibly earlier line from another host.
                warm = len(heard) == len(replicas) or time.monotonic() - started > FOLLOW_WARMUP
                while args.follow and warm and pending and pending[0][2] < time.monotonic() - FOLLOW_WINDOW:
                    when, _, _, replica, text = heapq.heappop(pending)
                    printer.line(replica, text, when)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        for session in sessions:
            session.close()
    while pending:  # what came in before the end (or the Ctrl-C) is printed, in order
        when, _, _, replica, text = heapq.heappop(pending)
        printer.line(replica, text, when)
    if interrupted:
        return errors.EXIT_INTERRUPTED
    if unreachable:
        return errors.EXIT_UNREACHABLE
    return errors.EXIT_HOST_FAILED if failed else errors.EXIT_OK


# --- exec --------------------------------------------------------------------------------------


def parse_unit_show(text: str) -> dict[str, list[str]]:
    """`systemctl show` output: KEY=VALUE lines, a key repeated for each of its values."""
    props: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props.setdefault(key, []).append(value)
    return props


UNIT_PROPERTIES = ("LoadState", "User", "Group", "Environment", "EnvironmentFiles", "WorkingDirectory")


def systemd_exec_command(replica: Replica, props: dict[str, list[str]], command: list[str]) -> list[str]:
    """systemd-run of `command` as the unit's user, with its environment files and variables:
    systemd itself reads the files, exactly as for the unit."""
    first = {k: v[0] for k, v in props.items() if v}
    if first.get("LoadState") != "loaded":
        raise RuntimeError(f"no unit {replica.unit} on this host ({first.get('LoadState') or 'unknown'})")
    cmd = ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--service-type=exec"]
    if first.get("User"):
        cmd += ["-p", f"User={first['User']}"]
    if first.get("Group"):
        cmd += ["-p", f"Group={first['Group']}"]
    for entry in props.get("EnvironmentFiles", []):
        # "PATH (ignore_errors=no)"
        path, _, flag = entry.rpartition(" (ignore_errors=")
        cmd += ["-p", f"EnvironmentFile={'-' if flag.startswith('yes') else ''}{path or entry}"]
    for assignment in shlex.split(first.get("Environment", "")):
        cmd += ["-p", f"Environment={assignment}"]
    if first.get("WorkingDirectory"):
        cmd += ["-p", f"WorkingDirectory={first['WorkingDirectory']}"]
    return [*cmd, "--", *command]


def exec_(args: argparse.Namespace, inventory: Inventory, become_password: str | None = None,
          confirm: Callable[[str], str] = input) -> int:
    replicas = select(args.target, inventory, args.host)
    if len(replicas) > 1 and not args.all:
        where = ", ".join(r.label.replace(" ", ":") for r in replicas[:4]) + (", ..." if len(replicas) > 4 else "")
        raise errors.InvalidInput(
            f"{args.target} matches {len(replicas)} replicas ({where}): name one "
            f"(AGENT/REPLICA --host HOST) or pass --all")
    command = args.command
    if len(replicas) > 1 and not args.yes:
        question = f"Run {shlex.join(command)!r} in {len(replicas)} replicas of {replicas[0].agent}"
        if not sys.stdin.isatty():
            raise errors.InvalidInput(f"{question}? pass --yes to confirm (no terminal to ask)")
        if confirm(f"{question}? Type 'yes' to go on: ").strip().lower() != "yes":
            raise errors.AgentFactoryError("exec cancelled; nothing was run")
    connections = _connections(args, inventory, {r.host for r in replicas}, become_password)
    single = len(replicas) == 1
    printer = Printer(replicas)
    events: queue.Queue = queue.Queue()
    sessions: list[Session] = []

    def work(session: Session, replica: Replica) -> None:
        # One replica: its output exactly as it comes. Several: line by line, prefixed.
        if single:
            out = _Raw(sys.stdout)
            err = _Raw(sys.stderr)
        else:
            out = _Lines(lambda line: printer.line(replica, line))
            err = _Lines(lambda line: printer.line(replica, line, stream=sys.stderr))
        remote = ["docker", "exec", replica.name, *command]
        if replica.runtime == "systemd":
            shown = []
            status = session.run(["systemctl", "show", *(f"--property={p}" for p in UNIT_PROPERTIES), replica.unit],
                                 lambda d: shown.append(d), lambda d: None)
            try:
                remote = systemd_exec_command(replica, parse_unit_show(b"".join(shown).decode()), command)
            except RuntimeError as exc:
                events.put(("end", replica, 1 if status == 0 else status, str(exc)))
                return
        status = session.run(remote, out.feed, err.feed)
        out.close()
        err.close()
        events.put(("end", replica, status, ""))

    codes: dict[Replica, int] = {}
    try:
        with _interrupts():
            _start(replicas, connections, events, work, sessions)
            while len(codes) < len(replicas):
                try:
                    kind, replica, *rest = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind == "unreachable":
                    codes[replica] = EXIT_SSH_FAILED
                    printer.line(replica, f"unreachable: {rest[0]}", stream=sys.stderr)
                    continue
                status, why = rest
                codes[replica] = status if status >= 0 else EXIT_SSH_FAILED
                if why:
                    printer.line(replica, why, stream=sys.stderr)
                elif not single and status:
                    printer.line(replica, f"exited {status}", stream=sys.stderr)
    except KeyboardInterrupt:
        return errors.EXIT_INTERRUPTED
    finally:
        for session in sessions:
            session.close()
    return max(codes.values())


class _Raw:
    """Bytes straight to a text stream's buffer."""

    def __init__(self, stream):
        self.stream = stream

    def feed(self, data: bytes) -> None:
        self.stream.flush()
        self.stream.buffer.write(data)
        self.stream.buffer.flush()

    def close(self) -> None:
        self.stream.flush()
