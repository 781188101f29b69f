"""Hostile and surprising inventories through the real CLI path: one kind of mistake per case, each
refused with exit 4, a message naming the file (and line), the agent and the field, no traceback,
quickly, and no host contacted (the hosts point at a closed port and running a playbook fails)."""

from __future__ import annotations

import time

import pytest
import yaml
from conftest import no_task

from agentfactory_cli import cli, errors

HOSTS = """\
all:
  vars: {ansible_host: 127.0.0.1, ansible_port: 9}
  children:
    agent_hosts: {hosts: {h1: null, h2: null}}
    gateway: {hosts: {h1: null}}
"""

AGENT = """\
agentfactory_agents:
  - name: bot
    image: registry.lab:5000/agents/bot:1.0
    replicas: 2
    host_port: 18080
"""


def inventory(tmp_path, agents: str = AGENT, hosts: str = HOSTS, **files: str):
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(hosts)
    (inv / "group_vars" / "all.yml").write_text(agents)
    for name, text in files.items():
        path = inv / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return inv


@pytest.fixture
def refused(tmp_path, capsys, monkeypatch):
    """Run the CLI, assert exit 4 before any host within a second or two; the stderr text."""
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", no_task)

    def run(inv, *argv: str) -> str:
        started = time.monotonic()
        code = cli.main([*(argv or ["deploy"]), "-i", str(inv)])
        err = capsys.readouterr().err
        assert code == errors.EXIT_INVALID_INPUT, err
        assert "Traceback" not in err
        assert time.monotonic() - started < 5
        return err
    return run


def with_field(line: str) -> str:
    return AGENT + f"    {line}\n"


# Values the schema lets through (as written): each is (catalog text, what the message says).
VALUES = {
    "nan": (with_field("health: {timeout: .nan}"), ["all.yml:6", "agent 'bot'", "field 'health.timeout'"]),
    "inf": (with_field("resources: {cpus: .inf}"), ["all.yml:6", "agent 'bot'", "field 'resources.cpus'"]),
    "octal": (with_field("port: 0100"), ["all.yml:6", "agent 'bot'", "field 'port'", "64"]),
    "hex": (with_field("port: 0x1F90"), ["all.yml:6", "field 'port'", "8080"]),
    "yes": (with_field("update: {rollback: yes}"), ["all.yml:6", "field 'update.rollback'", "read as true"]),
    "on-key": (with_field("config: {on: 1}"), ["all.yml:6", "field 'config'", "key on"]),
    "colliding-keys": (with_field("config: {1: a, '1': b}"), ["all.yml:6", "field 'config'", "both become '1'"]),
    "bool-keys": (with_field("config: {true: a, 'true': b}"), ["all.yml:6", "both become 'true'"]),
    "one-and-true": (with_field("config: {1: a, true: b}"), ["all.yml:6", "field 'config'", "are one key"]),
    "duplicate-key": (AGENT + "agentfactory_agents: []\n", ["all.yml:6", "'agentfactory_agents' appears twice"]),
    "duplicate-field": (with_field("replicas: 3"), ["all.yml:6", "agent 'bot'", "'replicas' appears twice"]),
    "trailing-newline": (AGENT.replace("name: bot", 'name: "bot\\n"'), ["field 'name'", "all.yml"]),
    "memory-newline": (with_field('resources: {memory: "512m\\n"}'), ["agent 'bot'", "field 'resources.memory'"]),
    "too-many-replicas": (AGENT.replace("replicas: 2", "replicas: 60000"), ["field 'replicas'", "at most 100"]),
    "null-catalog": ("agentfactory_agents:\n", ["agentfactory_agents is null", "all.yml:1", "write []"]),
    "ssh-port": (AGENT.replace("18080", "21"), ["field 'host_port'", "host port 22", "SSH (firewall_ssh_port)"]),
    "node-exporter-port": (AGENT.replace("18080", "9099"), ["host port 9100", "node_exporter"]),
    "gateway-metrics-port": (with_field("gateway: {port: 8405}"),
                             ["field 'gateway.port'", "port 8405", "gateway's metrics (gateway_metrics_port)"]),
    "yaml-syntax": (AGENT + "  - [unclosed\n", ["all.yml:", "YAML parsing failed"]),
    "agent-a-name": ("agentfactory_agents: [bot, other]\n", ["all.yml:1", "agent #1", "is 'bot'", "a mapping"]),
    "agent-a-list": (AGENT + "  - [bot, 2]\n", ["all.yml:6", "agent #2", "is a list"]),
    "agent-empty": (AGENT + "  -\n", ["all.yml:", "agent #2", "is empty"]),
    "number-too-long": (with_field("config: {size: " + "9" * 5000 + "}"),
                        ["all.yml:6", "field 'config.size'", "5000 digits"]),
    "key-too-long": (with_field("config:\n      ? " + "9" * 5000 + "\n      : x"),
                     ["all.yml:7", "field 'config'", "5000 digits"]),
    "control-character": (with_field("config: {a: x\x1by}"), ["all.yml:6", "does not allow the character '\\x1b'"]),
}


@pytest.mark.parametrize("kind", VALUES)
def test_bad_values_are_refused_with_file_line_agent_and_field(refused, tmp_path, kind):
    text, expected = VALUES[kind]
    err = refused(inventory(tmp_path, text))
    for fragment in expected:
        assert fragment in err, err


def test_a_file_that_is_not_utf8_is_named_with_its_line(refused, tmp_path):
    inv = inventory(tmp_path)
    (inv / "group_vars" / "all.yml").write_bytes(AGENT.encode() + b"    config: {a: \xff}\n")
    err = refused(inv)
    assert "all.yml:6: is not UTF-8 text (byte 0xff)" in err, err


def test_a_catalog_set_in_two_files_of_one_group_is_refused(refused, tmp_path):
    """Ansible keeps the catalog of the last file without a word: the first file's agents would
    be removed by the deploy."""
    other = "agentfactory_agents:\n  - {name: extra, image: r/x:1, host_port: 19500}\n"
    err = refused(inventory(tmp_path, **{"group_vars__all__zz.yml": other}))
    assert "agentfactory_agents is set in 2 files of group_vars/all" in err, err
    assert "all.yml:1" in err and "zz.yml:1" in err, err


def test_a_catalog_in_two_groups_is_an_override_not_an_error(tmp_path):
    from agentfactory_cli import inventory as inv

    other = "agentfactory_agents:\n  - {name: bot, image: r/x:1, host_port: 19500, replicas: 1}\n"
    loaded = inv.load([inventory(tmp_path, **{"group_vars__agent_hosts.yml": other})])
    assert loaded.agent_names == ["bot"]


def test_group_vars_behind_a_symlink_are_checked_too(refused, tmp_path):
    real = tmp_path / "shared"
    real.mkdir()
    (real / "agents.yml").write_text(with_field("replicas: 0"))
    inv = inventory(tmp_path)
    (inv / "group_vars" / "all.yml").unlink()
    (inv / "group_vars" / "all").symlink_to(real, target_is_directory=True)
    (real / "loop").symlink_to(real, target_is_directory=True)  # a link loop ends the walk
    err = refused(inv)
    assert "agents.yml:6" in err and "'replicas' appears twice" in err, err


def test_an_empty_catalog_is_fine(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", lambda req, display: seen.append(req) or
                        pytest.skip("reached the runner"))
    from agentfactory_cli import inventory as inv

    loaded = inv.load([inventory(tmp_path, "agentfactory_agents: []\n")])
    assert loaded.agent_names == []


def test_ports_follow_the_inventory_not_a_fixed_list(refused, tmp_path):
    # The inventory moves node_exporter to 9200: 9100 is free for agents, 9200 is not.
    moved = "node_exporter_listen_address: '0.0.0.0:9200'\nfirewall_node_exporter_port: 9200\n"
    ok = inventory(tmp_path, AGENT.replace("18080", "9100") + moved)
    from agentfactory_cli import inventory as inv

    inv.load([ok])
    err = refused(inventory(tmp_path / "b", AGENT.replace("18080", "9199") + moved))
    assert "host port 9200" in err and "node_exporter (node_exporter_listen_address)" in err, err
    # ansible_port set per host is that host's SSH port.
    err = refused(inventory(tmp_path / "c", AGENT, HOSTS.replace("ansible_port: 9", "ansible_port: 18081")))
    assert "host port 18081" in err and "SSH (ansible_port)" in err


def test_alias_bomb_is_refused_at_once(refused, tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 1024
    started = time.monotonic()
    err = refused(inventory(tmp_path, AGENT + bomb))
    assert time.monotonic() - started < 1
    assert "all.yml:" in err and "aliases" in err


def test_deep_nesting_is_refused_with_a_message(refused, tmp_path):
    err = refused(inventory(tmp_path, AGENT + "deep: " + "[" * 600 + "]" * 600 + "\n"))
    assert "all.yml:6" in err and "nested more than" in err


# Jinja rendered in the preflight, with the variables of the hosts the agent is placed on.
def image(expression: str) -> str:
    return AGENT.replace("image: registry.lab:5000", f'image: "{expression}:5000').replace(":1.0", ':1.0"')


RENDERED = {
    "undefined": (image("{{ no_such_registry }}"),
                  ["all.yml:2", "agent 'bot'", "field 'image'", "no_such_registry", "for host h1"]),
    "spaces": ("registry: 'a b'\n" + image("{{ registry }}"),
               ["agent 'bot'", "field 'image'", "without spaces", "rendered for host h1"]),
    "port": ("base: 21\n" + AGENT.replace("host_port: 18080", "host_port: '{{ base }}'"),
             ["all.yml:3", "agent 'bot'", "field 'host_port'"]),
    "undefined-secret": (AGENT + "    secrets: {KEY: '{{ vault_nothing }}'}\n",
                         ["field 'secrets'", "'vault_nothing' is undefined"]),
}


@pytest.mark.parametrize("kind", RENDERED)
def test_jinja_is_rendered_before_any_host(refused, tmp_path, kind):
    text, expected = RENDERED[kind]
    err = refused(inventory(tmp_path, text))
    for fragment in expected:
        assert fragment in err, err


def test_an_expression_is_rendered_with_the_variables_of_its_own_hosts(tmp_path):
    from agentfactory_cli import inventory as inv

    text = image("{{ registry }}")
    inv.load([inventory(tmp_path, text, **{"group_vars__agent_hosts.yml": "registry: reg.lab\n"})])


# Inventory problems: one line each.
CONNECTION = {
    "port-abc": (HOSTS.replace("ansible_port: 9", "ansible_port: abc"), ["host h1", "ansible_port", "'abc'"]),
    "undefined-host": (HOSTS.replace("ansible_host: 127.0.0.1", "ansible_host: '{{ nowhere }}'"),
                       ["host h1", "ansible_host", "nowhere"]),
    "null-host": (HOSTS.replace("ansible_host: 127.0.0.1", "ansible_host: null"),
                  ["host h1", "ansible_host: is empty"]),
    # An undefined variable that happens to be named vault_*: no vault hint.
    "vault-named-variable": (HOSTS.replace("ansible_host: 127.0.0.1", "ansible_host: '{{ vault_gw }}'"),
                             ["ansible_host: 'vault_gw' is undefined"]),
}


@pytest.mark.parametrize("kind", CONNECTION)
def test_connection_variables_are_checked(refused, tmp_path, kind):
    hosts, expected = CONNECTION[kind]
    err = refused(inventory(tmp_path, AGENT, hosts))
    for fragment in expected:
        assert fragment in err, err


@pytest.mark.parametrize("limit", ["~(", "&"])
def test_a_broken_limit_is_one_line(refused, tmp_path, limit):
    err = refused(inventory(tmp_path), "deploy", "--limit", limit)
    assert "--limit" in err and len(err.strip().splitlines()) == 1, err


# Limits Ansible reads as every host, or whose part it only warns about.
@pytest.mark.parametrize(("limit", "says"), [("", "is empty"), (",", "is empty"), ("~", "'~' is empty"),
                                             ("h1,nosuch", "'nosuch' matches no host"),
                                             ("h1,!h9", "'!h9' matches no host")])
def test_a_limit_that_would_widen_or_name_nothing_is_refused(refused, tmp_path, limit, says):
    err = refused(inventory(tmp_path), "deploy", "--limit", limit)
    assert says in err and len(err.strip().splitlines()) == 1, err


def test_a_good_limit_with_several_parts_is_kept(tmp_path):
    from agentfactory_cli import inventory as inv

    assert inv.load([inventory(tmp_path)], limit="agent_hosts,!h2").limited == ["h1"]


# Vault: a wrong password is not a missing one, inline or whole-file.
def _vault_text(password: bytes, plaintext: str) -> str:
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password))]).encrypt(plaintext).decode()


def _inline(password: bytes) -> str:
    block = "\n".join("        " + line for line in _vault_text(password, "s3cret").splitlines())
    return AGENT + f"    secrets:\n      API_KEY: !vault |\n{block}\n"


@pytest.mark.parametrize("where", ["inline", "whole-file"])
def test_a_wrong_vault_password_says_so(refused, tmp_path, where):
    password_file = tmp_path / "pw"
    password_file.write_text("not-the-password\n")
    if where == "inline":
        inv = inventory(tmp_path, _inline(b"right"))
    else:
        inv = inventory(tmp_path, AGENT, **{"group_vars__agent_hosts.yml": _vault_text(b"right", "x: 1\n")})
    err = refused(inv, "deploy", "--vault-password-file", str(password_file))
    assert "does not decrypt" in err and "needs --vault-password-file" not in err, err
    assert ("all.yml:2" if where == "inline" else "agent_hosts.yml") in err


@pytest.mark.parametrize("where", ["inline", "whole-file"])
def test_a_missing_vault_password_says_so(refused, tmp_path, where):
    if where == "inline":
        inv = inventory(tmp_path, _inline(b"right"))
    else:
        inv = inventory(tmp_path, AGENT, **{"group_vars__agent_hosts.yml": _vault_text(b"right", "x: 1\n")})
    err = refused(inv, "deploy")
    assert "needs --vault-password-file" in err, err
    if where == "inline":
        assert "all.yml:2" in err and "agent 'bot'" in err and "field 'secrets'" in err
    else:
        assert "agent_hosts.yml" in err


# No silent removal: a deploy lists what it would remove and asks, like destroy.
class FakeRuns:
    """run_playbook stand-in: the listing run reports `pending`; every request is kept."""

    def __init__(self, tmp_path, pending: dict[str, list[str]], listing_ok: bool = True):
        self.tmp_path, self.pending, self.listing_ok = tmp_path, pending, listing_ok
        self.requests = []

    def __call__(self, req, display):
        from agentfactory_cli.prune import LIST_TASK, PENDING_FACT
        from agentfactory_cli.runner import RunEvents, RunResult

        self.requests.append(req)
        events = RunEvents(req.extract)
        if req.extravars.get("agentfactory_action") == "prune":
            assert req.check, "the listing run changes nothing"
            for host, agents in self.pending.items():
                events.add({"event": "runner_on_ok", "event_data": {
                    "host": host, "task": LIST_TASK, "res": {"ansible_facts": {PENDING_FACT: agents}}}})
            if not self.listing_ok:
                return RunResult("failed", 2, {"h1": {"ok": 0, "changed": 0, "failed": 1, "unreachable": 0,
                                                      "skipped": 0}}, self.tmp_path)
        return events.result("successful", 0, self.tmp_path)

    def deploys(self):
        return [r for r in self.requests if r.extravars.get("agentfactory_action") != "prune"]


def _deploy(tmp_path, monkeypatch, pending, *argv, tty=False, answer="", listing_ok=True):
    runs = FakeRuns(tmp_path, pending, listing_ok)
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", runs)
    monkeypatch.setattr("sys.stdin.isatty", lambda: tty)
    monkeypatch.setattr("builtins.input", lambda *a: answer)
    code = cli.main(["deploy", "-i", str(inventory(tmp_path)), "--json", *argv])
    return code, runs


def test_deploy_that_would_remove_agents_refuses_without_a_terminal(tmp_path, monkeypatch, capsys):
    code, runs = _deploy(tmp_path, monkeypatch, {"h1": ["old"], "h2": ["old", "legacy"]})
    err = capsys.readouterr().err
    assert code == errors.EXIT_INVALID_INPUT
    assert "h1: old" in err and "h2: old, legacy" in err and "--yes" in err
    assert runs.deploys() == [], "nothing but the listing ran"


def test_deploy_asks_and_goes_on_only_after_yes(tmp_path, monkeypatch, capsys):
    code, runs = _deploy(tmp_path, monkeypatch, {"h1": ["old"]}, tty=True, answer="yes")
    assert code == 0
    assert [r.extravars.get("agentfactory_prune_confirmed") for r in runs.deploys()] == [True]
    code, runs = _deploy(tmp_path / "again", monkeypatch, {"h1": ["old"]}, tty=True, answer="no")
    assert code == errors.EXIT_ERROR and runs.deploys() == []
    assert "cancelled; nothing was changed" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--yes", "--prune", "-y"])
def test_deploy_yes_confirms_without_a_listing(tmp_path, monkeypatch, flag):
    code, runs = _deploy(tmp_path, monkeypatch, {"h1": ["old"]}, flag)
    assert code == 0
    assert [r.extravars.get("agentfactory_action") for r in runs.requests] == ["deploy"]
    assert runs.requests[0].extravars["agentfactory_prune_confirmed"] is True


def test_nothing_to_remove_deploys_unconfirmed(tmp_path, monkeypatch):
    code, runs = _deploy(tmp_path, monkeypatch, {})
    assert code == 0
    assert [r.extravars.get("agentfactory_prune_confirmed") for r in runs.deploys()] == [None]


def test_a_failed_listing_leaves_the_refusal_to_the_role(tmp_path, monkeypatch, capsys):
    code, runs = _deploy(tmp_path, monkeypatch, {}, listing_ok=False)
    assert code == 0
    assert [r.extravars.get("agentfactory_prune_confirmed") for r in runs.deploys()] == [None]
    assert "refuses any removal" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--agent", "bot"], ["--check"]])
def test_deploys_that_prune_nothing_or_change_nothing_do_not_ask(tmp_path, monkeypatch, argv):
    code, runs = _deploy(tmp_path, monkeypatch, {"h1": ["old"]}, *argv)
    assert code == 0
    assert [r.extravars.get("agentfactory_action") for r in runs.requests] == ["deploy"]


def test_the_role_removes_only_when_confirmed():
    """roles/agent/tasks/prune.yml: every removing task is gated, and an unconfirmed run fails."""
    from agentfactory_cli.paths import project_root

    tasks = yaml.safe_load((project_root() / "roles/agent/tasks/prune.yml").read_text())
    removing = [t for t in tasks if "docker_container" in str(t) or "remove.yml" in str(t)]
    assert len(removing) == 2
    assert all(t["when"] == "agent_prune_confirmed | bool" for t in removing)
    refusal = next(t for t in tasks if "ansible.builtin.fail" in t)
    assert "not agent_prune_confirmed | bool" in refusal["when"]
    defaults = yaml.safe_load((project_root() / "roles/agent/defaults/main.yml").read_text())
    assert "agentfactory_prune_confirmed | default(false)" in defaults["agent_prune_confirmed"]


def test_host_vars_that_place_an_agent_on_no_host_are_refused(refused, tmp_path):
    # h1's own catalog (host_vars) has 'solo' placed on h2; h2's catalog (group_vars) has no 'solo'.
    solo = AGENT + "  - name: solo\n    image: reg/solo:1\n    hosts: h2\n    host_port: 19000\n"
    err = refused(inventory(tmp_path, AGENT, **{"host_vars__h1.yml": solo}))
    assert "h1.yml:6" in err and "agent 'solo'" in err and "field 'hosts'" in err and "run nowhere" in err, err


def test_schema_problems_name_the_file_and_the_agents_line(refused, tmp_path):
    err = refused(inventory(tmp_path, AGENT + "  - name: two\n    image: x:1\n    replicas: -1\n"))
    assert "all.yml:6: agent 'two': field 'replicas'" in err, err


def test_scale_has_the_same_bound(refused, tmp_path):
    err = refused(inventory(tmp_path), "scale", "--agent", "bot", "--replicas", "60000")
    assert "at most 100 per host" in err


def test_ctrl_c_during_the_listing_runs_nothing_more(tmp_path, monkeypatch):
    from agentfactory_cli.runner import RunResult

    requests = []

    def interrupted(req, display):
        requests.append(req)
        return RunResult("canceled", None, {}, tmp_path, canceled=True)

    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", interrupted)
    assert cli.main(["deploy", "-i", str(inventory(tmp_path))]) == errors.EXIT_INTERRUPTED
    assert [r.extravars["agentfactory_action"] for r in requests] == ["prune"]


@pytest.mark.parametrize("password", [None, b"wrong"])
def test_a_vaulted_connection_variable_must_decrypt(refused, tmp_path, password):
    block = "\n".join("    " + line for line in _vault_text(b"right", "sudo-pw").splitlines())
    inv = inventory(tmp_path, AGENT, **{"group_vars__agent_hosts.yml": f"ansible_become_password: !vault |\n{block}\n"})
    argv = ["check"]
    if password:
        (tmp_path / "pw").write_bytes(password)
        argv += ["--vault-password-file", str(tmp_path / "pw")]
    err = refused(inv, *argv)
    assert "host h1: ansible_become_password" in err and "agent_hosts.yml:1" in err, err
    assert ("does not decrypt" if password else "needs --vault-password-file") in err
    assert "sudo-pw" not in err


def test_a_whole_file_vault_is_checked_once_decrypted(refused, tmp_path):
    (tmp_path / "pw").write_text("right\n")
    vaulted = _vault_text(b"right", AGENT + "    port: 0100\n")
    inv = inventory(tmp_path, "x: 1\n", **{"group_vars__agent_hosts.yml": vaulted})
    err = refused(inv, "check", "--vault-password-file", str(tmp_path / "pw"))
    assert "agent_hosts.yml:6: agent 'bot': field 'port'" in err, err


@pytest.mark.parametrize("text", [
    "mode: 0644\nenabled: yes\n",  # outside the catalog: other roles' YAML 1.1 as Ansible reads it
    "base: &base {a: 1}\nmore:\n  <<: *base\n  a: 2\n",  # a merge key overridden: no duplicate
    "x:\n  !unsafe a: 1\n  b: !unsafe '{{ c }}'\n",  # Ansible's own tags
    AGENT + "    config: {'on': 1, enabled: true, ratio: 0.5, big: 1.5e+3}\n",
])
def test_what_is_not_refused(text):
    from agentfactory_cli import yamlcheck

    assert yamlcheck.check_text(text, "f.yml") == []
