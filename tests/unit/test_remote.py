"""logs and exec without hosts: which replicas, how each host is reached, the remote commands,
the merge in time order, exit codes, and no password on any command line or in any output."""

from __future__ import annotations

import argparse
import io
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentfactory_cli import cli, errors, remote
from agentfactory_cli.inventory import Inventory
from agentfactory_cli.remote import Connection, Replica


def fleet(runtime: str = "docker", replicas: int = 2) -> Inventory:
    return Inventory(
        paths=[], groups={"all": ["h1", "h2", "h3"], "agent_hosts": ["h1", "h2"], "ops": ["h3"]},
        agent_names=["bot"], agents={"bot": {"name": "bot", "hosts": "agent_hosts", "replicas": replicas,
                                             "runtime": runtime}},
        limited=["h1", "h2", "h3"],
        connections={h: {"ansible_host": "127.0.0.1", "ansible_user": "root"} for h in ("h1", "h2", "h3")},
    )


# --- which replicas ------------------------------------------------------------------------------


def test_an_agent_means_every_replica_where_it_is_placed():
    assert [r.label for r in remote.select("bot", fleet(), None)] == ["h1 bot-0", "h1 bot-1", "h2 bot-0", "h2 bot-1"]


@pytest.mark.parametrize("target", ["bot/bot-1", "bot/1"])
def test_one_replica_by_name_or_number(target):
    assert [r.label for r in remote.select(target, fleet(), ["h2"])] == ["h2 bot-1"]


def test_limit_keeps_its_hosts():
    inventory = fleet()
    inventory.limited = ["h2"]
    assert {r.host for r in remote.select("bot", inventory, None)} == {"h2"}


@pytest.mark.parametrize(
    ("target", "hosts", "message"),
    [
        ("nobot", None, "unknown agent: nobot (the catalog has: bot)"),
        ("bot", ["h3"], "agent bot is not placed on h3 (it is on: h1, h2)"),
        ("bot/zero", None, "replica 'zero': expected bot-N or N"),
    ],
)
def test_bad_targets_are_invalid_input(target, hosts, message):
    with pytest.raises(errors.InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        remote.select(target, fleet(), hosts)


# --- how each host is reached ----------------------------------------------------------------------


def test_lab_style_connection():
    conn = remote.connection("af-lab-1", {
        "ansible_host": "127.0.0.1", "ansible_port": "32771", "ansible_user": "root",
        "ansible_ssh_private_key_file": "/k/id_ed25519",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    })
    assert (conn.address, conn.port, conn.user, conn.key_file) == ("127.0.0.1", 32771, "root", "/k/id_ed25519")
    assert conn.check_host_key is False and conn.known_hosts is None and conn.jumps == []
    assert not conn.needs_sudo


def test_bastion_become_and_the_clis_defaults():
    conn = remote.connection("agent-01", {
        "ansible_host": "192.0.2.11", "ansible_become": True,
        "ansible_ssh_common_args": "-o ProxyJump=jump@bastion.example:2222,[2001:db8::1]",
    }, user="deploy", private_key="/keys/deploy")
    assert (conn.user, conn.key_file, conn.port) == ("deploy", "/keys/deploy", 22)
    assert [(j.address, j.port, j.user) for j in conn.jumps] == [("bastion.example", 2222, "jump"),
                                                                  ("2001:db8::1", 22, None)]
    assert conn.check_host_key is True and conn.needs_sudo


def test_inventory_variables_win_over_the_clis():
    conn = remote.connection("h", {"ansible_user": "inv", "ansible_ssh_private_key_file": "/inv/key"},
                             user="cli", private_key="/cli/key", ssh_args="-o ProxyCommand='nc %h %p' -p 2200")
    assert (conn.user, conn.key_file, conn.port, conn.proxy_command) == ("inv", "/inv/key", 2200, "nc %h %p")
    assert conn.address == "h"


def test_ssh_config_fills_what_the_inventory_leaves_out(tmp_path):
    import paramiko

    cfg = paramiko.SSHConfig.from_text("Host web1\n  HostName 10.0.0.5\n  User ops\n  Port 2022\n"
                                       "  ProxyJump gw.example\n")
    conn = remote.connection("web1", {}, ssh_config=cfg)
    assert (conn.address, conn.user, conn.port, [j.address for j in conn.jumps]) == \
        ("10.0.0.5", "ops", 2022, ["gw.example"])


def test_ansibles_host_key_checking_off_is_honoured():
    assert remote.connection("h", {}, host_key_checking=False).check_host_key is False


def test_only_ssh_hosts():
    assert remote.connection("h", {"ansible_connection": "ansible.builtin.ssh"}).address == "h"
    with pytest.raises(errors.InvalidInput, match="over SSH only"):
        remote.connection("h", {"ansible_connection": "community.docker.docker"})


def test_only_sudo_becomes():
    with pytest.raises(errors.InvalidInput, match="become with sudo only"):
        remote.connection("h", {"ansible_become": "yes", "ansible_become_method": "su"})


def test_ssh_options_forms():
    assert remote.ssh_options("-oStrictHostKeyChecking=no -o 'ProxyCommand ssh -W %h:%p gw' -J a,b -i k") == {
        "stricthostkeychecking": "no", "proxycommand": "ssh -W %h:%p gw", "proxyjump": "a,b", "identityfile": "k"}


# --- the remote commands ---------------------------------------------------------------------------


def test_docker_logs_command():
    r = Replica("bot", "docker", "h1", 0)
    assert remote.logs_command(r, follow=True, since=timedelta(minutes=10), tail=None) == \
        ["docker", "logs", "--timestamps", "--since", "600s", "--follow", "bot-0"]
    assert remote.logs_command(r, follow=False, since=datetime(2026, 1, 31, 13, 0, tzinfo=UTC), tail=5) == \
        ["docker", "logs", "--timestamps", "--since", "2026-01-31T13:00:00Z", "--tail", "5", "bot-0"]


def test_journalctl_command():
    r = Replica("bot", "systemd", "h1", 1)
    assert remote.logs_command(r, follow=True, since=timedelta(hours=2), tail=100) == [
        "env", "SYSTEMD_COLORS=0", "journalctl", "--no-pager", "--quiet", "-o", "short-iso-precise",
        "-u", "agentfactory-bot@1.service",
        "--since", "-7200s", "-n", "100", "--follow"]
    since = datetime(2026, 1, 31, 14, 0, tzinfo=timezone(timedelta(hours=1)))
    assert remote.logs_command(r, follow=False, since=since, tail=None)[-2:] == ["--since", "2026-01-31 13:00:00 UTC"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10m", timedelta(minutes=10)), ("30s", timedelta(seconds=30)), ("1d", timedelta(days=1)),
     ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
     ("2026-01-31 12:00", datetime(2026, 1, 31, 12, tzinfo=UTC))],
)
def test_since(text, expected):
    assert remote.parse_since(text) == expected


def test_bad_since_is_invalid_input(capsys):
    assert cli.main(["logs", "bot", "--since", "yesterday"]) == errors.EXIT_INVALID_INPUT
    assert "expected a duration like 10m" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("runtime", "line", "when", "text"),
    [
        ("docker", "2026-12-02T01:20:00.123456789Z GET /healthz 200", "2026-12-02T01:20:00.123456+00:00",
         "GET /healthz 200"),
        ("systemd", "2026-12-02T01:20:00.654321+0000 af-lab-1 python3[812]: started on :18300",
         "2026-12-02T01:20:00.654321+00:00", "python3[812]: started on :18300"),
        ("systemd", "2026-12-02T01:20:00.654321+00:00 af-lab-1 systemd[1]: Started x.",
         "2026-12-02T01:20:00.654321+00:00", "systemd[1]: Started x."),
    ],
)
def test_log_lines(runtime, line, when, text):
    assert remote.log_line(runtime, line) == (datetime.fromisoformat(when), text)


@pytest.mark.parametrize("line", ["Error response from daemon: No such container: bot-0", "-- No entries --", ""])
def test_other_lines_are_no_log_lines(line):
    assert remote.log_line("docker", line) is None


def test_printed_log_lines_cannot_drive_the_terminal():
    """An agent's output reaches the operator's terminal as text: escapes and a lone CR are shown,
    never obeyed (here a retitle, a clear screen and an overwritten line)."""
    out = io.StringIO()
    replicas = remote.select("bot", fleet(replicas=1), None)
    printer = remote.Printer(replicas, out=out)
    printer.line(replicas[0], "ok\x1b]0;owned\x07\x1b[2J\rFAKE line")
    printed = out.getvalue()
    assert "\x1b" not in printed and "\r" not in printed and "\x07" not in printed
    assert printed.endswith("ok\\x1b]0;owned\\x07\\x1b[2J\\rFAKE line\n")


SHOW = """LoadState=loaded
User=agentfactory
Group=agentfactory
Environment=AGENT_CONFIG_HASH=0123abcd
EnvironmentFiles=/etc/agentfactory/agents/bot/release-0123abcd.env (ignore_errors=no)
EnvironmentFiles=/etc/agentfactory/agents/bot/replica-1.env (ignore_errors=yes)
WorkingDirectory=
"""


def test_systemd_exec_runs_as_the_units_user_with_its_environment():
    r = Replica("bot", "systemd", "h1", 1)
    assert remote.systemd_exec_command(r, remote.parse_unit_show(SHOW), ["cat", "/etc/x"]) == [
        "systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--service-type=exec",
        "-p", "User=agentfactory", "-p", "Group=agentfactory",
        "-p", "EnvironmentFile=/etc/agentfactory/agents/bot/release-0123abcd.env",
        "-p", "EnvironmentFile=-/etc/agentfactory/agents/bot/replica-1.env",
        "-p", "Environment=AGENT_CONFIG_HASH=0123abcd", "--", "cat", "/etc/x"]


def test_systemd_exec_of_a_missing_unit():
    with pytest.raises(RuntimeError, match=r"no unit agentfactory-bot@7\.service on this host"):
        remote.systemd_exec_command(Replica("bot", "systemd", "h1", 7), {"LoadState": ["not-found"]}, ["true"])


# --- become: the password goes to sudo's input, never its command line -----------------------------


class FakeChannel:
    def __init__(self, output: bytes = b"", status: int = 0):
        self.sent = b""
        self.command = ""
        self.output = output
        self.status = status
        self.closed = False
        self.pty = False

    def get_pty(self, **kw):
        self.pty = True

    def exec_command(self, command):
        self.command = command

    def sendall(self, data):
        self.sent += data

    def shutdown_write(self):
        pass

    def recv_ready(self):
        return bool(self.output)

    def recv(self, n):
        data, self.output = self.output[:n], self.output[n:]
        return data

    def recv_stderr_ready(self):
        return False

    def exit_status_ready(self):
        return True

    def recv_exit_status(self):
        return self.status

    def close(self):
        self.closed = True


def session_with(channel: FakeChannel, **conn) -> remote.Session:
    session = remote.Session(Connection(host="h", address="a", port=22, **conn))

    class Client:
        def get_transport(self):
            class T:
                def open_session(self):
                    return channel
            return T()

    session._clients = [Client()]
    return session


def test_sudo_password_on_standard_input_only():
    chan = FakeChannel(b"ok\n", status=3)
    got = []
    session = session_with(chan, user="deploy", become=True, become_password="s3cret-pw")
    assert session.run(["docker", "logs", "bot-0"], got.append, got.append) == 3
    assert chan.command == "sudo -S -p '' -u root -- docker logs bot-0"
    assert chan.sent == b"s3cret-pw\n" and b"".join(got) == b"ok\n"


def test_sudo_password_answers_the_prompt_on_a_terminal():
    chan = FakeChannel(remote.SUDO_PROMPT.encode() + b"\r\n2026-01-01T00:00:00Z hello\r\n")
    got = []
    session = session_with(chan, user="deploy", become=True, become_password="s3cret-pw")
    session.run(["docker", "logs", "-f", "bot-0"], got.append, got.append, pty=True)
    assert "s3cret-pw" not in chan.command and chan.pty
    assert chan.sent == b"s3cret-pw\n" and b"".join(got) == b"2026-01-01T00:00:00Z hello\r\n"


def test_no_sudo_for_root_or_without_become():
    for conn in ({"user": "root", "become": True}, {"user": "deploy", "become": False}):
        chan = FakeChannel()
        session_with(chan, **conn).run(["true"], print, print)
        assert chan.command == "true"
    chan = FakeChannel()
    session_with(chan, user="deploy", become=True).run(["true"], print, print)
    assert chan.command == "sudo -n -u root -- true"


# --- logs and exec end to end, with fake sessions ----------------------------------------------------


class FakeSession:
    """Answers each command from `script`: (host, command word) -> (stdout, stderr, status)."""

    script: dict = {}
    commands: list = []
    unreachable: set = set()

    def __init__(self, conn):
        self.conn = conn

    def open(self):
        if self.conn.host in self.unreachable:
            raise ConnectionError(f"{self.conn.address}:22: Connection refused")
        return self

    def close(self):
        pass

    def run(self, command, on_out, on_err, pty=False, stop=None):
        FakeSession.commands.append((self.conn.host, command))
        key = next(k for k in self.script if k[0] == self.conn.host and k[1] in command)
        out, err, status = self.script[key]
        on_out(out)
        on_err(err)
        return status


@pytest.fixture
def fake_ssh(monkeypatch):
    FakeSession.script, FakeSession.commands, FakeSession.unreachable = {}, [], set()
    monkeypatch.setattr(remote, "Session", FakeSession)
    return FakeSession


def args_for(argv: list[str]) -> argparse.Namespace:
    args = cli.parse_args(argv)
    args.user = args.private_key = args.ssh_common_args = None
    return args


def test_logs_of_several_replicas_are_merged_in_time_order_and_prefixed(fake_ssh, capsys):
    fake_ssh.script = {
        ("h1", "bot-0"): (b"2026-01-01T00:00:01.000000000Z one\n2026-01-01T00:00:04.000000000Z four\n", b"", 0),
        ("h1", "bot-1"): (b"", b"2026-01-01T00:00:03.000000000Z three (stderr)\n", 0),
        ("h2", "bot-0"): (b"2026-01-01T00:00:02.000000000Z two\n", b"", 0),
        ("h2", "bot-1"): (b"2026-01-01T00:00:05.000000000Z five", b"", 0),  # no final newline
    }
    assert remote.logs(args_for(["logs", "bot"]), fleet()) == 0
    assert capsys.readouterr().out.splitlines() == [
        "h1 bot-0 | one", "h2 bot-0 | two", "h1 bot-1 | three (stderr)", "h1 bot-0 | four", "h2 bot-1 | five"]
    assert ("h1", ["docker", "logs", "--timestamps", "--tail", "100", "bot-0"]) in fake_ssh.commands


def test_logs_of_one_replica_are_plain_and_timestamps_on_request(fake_ssh, capsys):
    fake_ssh.script = {("h2", "bot-1"): (b"2026-01-01T00:00:01.5Z hello\n", b"", 0)}
    assert remote.logs(args_for(["logs", "bot/bot-1", "--host", "h2", "-t", "-n", "5"]), fleet()) == 0
    assert capsys.readouterr().out == "2026-01-01T00:00:01.500000Z hello\n"
    assert fake_ssh.commands == [("h2", ["docker", "logs", "--timestamps", "--tail", "5", "bot-1"])]


def test_logs_exit_codes_unreachable_beats_failed(fake_ssh, capsys):
    fake_ssh.script = {("h1", "bot-0"): (b"", b"Error response from daemon: No such container: bot-0\n", 1),
                       ("h1", "bot-1"): (b"", b"", 0)}
    fake_ssh.unreachable = {"h2"}
    assert remote.logs(args_for(["logs", "bot"]), fleet()) == errors.EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert "h1 bot-0 | docker logs: Error response from daemon: No such container: bot-0" in err
    assert "h2 bot-0 | unreachable: 127.0.0.1:22: Connection refused" in err
    fake_ssh.unreachable = set()
    fake_ssh.script.update({("h2", "bot"): (b"", b"", 0)})
    assert remote.logs(args_for(["logs", "bot"]), fleet()) == errors.EXIT_HOST_FAILED


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_logs_follow_stops_cleanly_on_ctrl_c_even_started_in_the_background(fake_ssh, monkeypatch, sig):
    """A shell that starts a command with & leaves SIGINT ignored: logs -f still stops on it."""
    stopped = []

    def follow_forever(self, command, on_out, on_err, pty=False, stop=None):
        assert pty and "--follow" in command
        on_out(b"2026-01-01T00:00:01Z x\n")
        stop.wait(10)
        stopped.append(stop.is_set())
        return -1

    monkeypatch.setattr(FakeSession, "run", follow_forever)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        threading.Timer(0.5, os.kill, (os.getpid(), sig)).start()
        assert remote.logs(args_for(["logs", "bot", "-f"]), fleet()) == errors.EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.2)
    assert stopped == [True] * 4  # every follower was told to stop
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_exec_in_one_replica_passes_its_output_through(fake_ssh, capsys):
    fake_ssh.script = {("h1", "exec"): (b"model: small\n", b"no prefix", 0)}
    assert remote.exec_(args_for(["exec", "bot/bot-0", "--host", "h1", "--", "cat", "/etc/agent/config.yml"]),
                        fleet()) == 0
    assert capsys.readouterr() == ("model: small\n", "no prefix")
    assert fake_ssh.commands == [("h1", ["docker", "exec", "bot-0", "cat", "/etc/agent/config.yml"])]


def test_exec_needs_one_replica_or_all(fake_ssh):
    with pytest.raises(errors.InvalidInput, match=r"bot matches 4 replicas .* or pass --all"):
        remote.exec_(args_for(["exec", "bot", "--", "true"]), fleet())
    with pytest.raises(errors.InvalidInput, match="bot/0 matches 2 replicas"):
        remote.exec_(args_for(["exec", "bot/0", "--", "true"]), fleet())


def test_exec_everywhere_asks_first_and_returns_the_worst(fake_ssh, capsys, monkeypatch):
    fake_ssh.script = {("h1", "exec"): (b"a\n", b"", 0), ("h2", "exec"): (b"b\n", b"oops\n", 7)}
    monkeypatch.setattr(remote.sys.stdin, "isatty", lambda: True, raising=False)
    asked = []
    code = remote.exec_(args_for(["exec", "bot", "--all", "--", "sh", "-c", "x"]), fleet(),
                        confirm=lambda q: asked.append(q) or "yes")
    assert code == 7
    assert asked == ["Run 'sh -c x' in 4 replicas of bot? Type 'yes' to go on: "]
    captured = capsys.readouterr()
    assert "h1 bot-0 | a" in captured.out and "h2 bot-1 | b" in captured.out
    assert "h2 bot-0 | oops" in captured.err and "h2 bot-0 | exited 7" in captured.err


def test_exec_without_a_terminal_needs_yes(fake_ssh, monkeypatch):
    monkeypatch.setattr(remote.sys, "stdin", io.StringIO())
    with pytest.raises(errors.InvalidInput, match="pass --yes"):
        remote.exec_(args_for(["exec", "bot", "--all", "--", "true"]), fleet())
    fake_ssh.script = {("h1", "exec"): (b"", b"", 0), ("h2", "exec"): (b"", b"", 0)}
    assert remote.exec_(args_for(["exec", "bot", "--all", "-y", "--", "true"]), fleet()) == 0


def test_exec_unreachable_is_255(fake_ssh, capsys):
    fake_ssh.unreachable = {"h1"}
    assert remote.exec_(args_for(["exec", "bot/0", "--host", "h1", "--", "true"]), fleet()) == 255


def test_exec_in_a_systemd_replica(fake_ssh, capsys):
    fake_ssh.script = {("h1", "show"): (SHOW.encode(), b"", 0), ("h1", "systemd-run"): (b"hi\n", b"", 0)}
    assert remote.exec_(args_for(["exec", "bot/1", "--host", "h1", "--", "id", "-un"]), fleet("systemd")) == 0
    (_, show), (_, run) = fake_ssh.commands
    assert show[:2] == ["systemctl", "show"] and show[-1] == "agentfactory-bot@1.service"
    assert run[0] == "systemd-run" and run[-3:] == ["--", "id", "-un"] and "User=agentfactory" in run


def test_exec_needs_a_command(capsys):
    assert cli.main(["exec", "bot"]) == errors.EXIT_INVALID_INPUT
    assert "the command to run goes after --" in capsys.readouterr().err


def test_followed_backlogs_are_merged_though_one_host_answers_late(fake_ssh, monkeypatch, capsys):
    def follow(self, command, on_out, on_err, pty=False, stop=None):
        if self.conn.host == "h2":
            time.sleep(1.0)  # a slow link: its older lines arrive after h1's
            on_out(b"2026-01-01T00:00:01Z early on h2\n")
        else:
            on_out(b"2026-01-01T00:00:02Z later on h1\n")
        stop.wait(10)
        return -1

    monkeypatch.setattr(FakeSession, "run", follow)
    monkeypatch.setattr(remote, "FOLLOW_WARMUP", 5.0)
    real_get = remote.queue.Queue.get
    deadline = time.monotonic() + 2.5

    def get(self, *a, **kw):
        if time.monotonic() > deadline:
            raise KeyboardInterrupt
        return real_get(self, *a, **kw)

    monkeypatch.setattr(remote.queue.Queue, "get", get)
    assert remote.logs(args_for(["logs", "bot/0", "-f"]), fleet()) == errors.EXIT_INTERRUPTED
    assert capsys.readouterr().out.splitlines() == ["h2 bot-0 | early on h2", "h1 bot-0 | later on h1"]
