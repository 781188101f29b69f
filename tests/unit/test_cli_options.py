"""ansible-playbook's own options on every playbook verb: each flag -> the ansible-runner kwargs
that mean the same, prompts answered through runner's passwords and nowhere else."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from agentfactory_cli import cli, errors
from agentfactory_cli.runner import build_runner_kwargs


@pytest.fixture
def typed(monkeypatch):
    """The operator's answers to getpass, by prompt; the prompts asked are recorded."""
    answers = {"BECOME password: ": "become-pw-1", "Vault password: ": "vault-pw-2",
               "Vault password (dev): ": "dev-pw-3"}
    asked = []

    def fake(prompt="Password: "):
        asked.append(prompt)
        return answers[prompt]

    monkeypatch.setattr(cli.getpass, "getpass", fake)
    return asked


def kwargs_for(argv: list[str]) -> dict:
    return build_runner_kwargs(cli.playbook_request(cli.parse_args(argv)), ident="X")


def cmdline(argv: list[str]) -> list[str]:
    return shlex.split(kwargs_for(argv).get("cmdline", ""))


def test_extra_vars_in_order_with_files_made_absolute(inventory, tmp_path, monkeypatch):
    (tmp_path / "more.yml").write_text("a: 1\n")
    monkeypatch.chdir(tmp_path)
    argv = ["deploy", "-i", str(inventory), "-e", "foo=bar", "--extra-vars", "@more.yml", "-e", '{"n": 2}']
    assert cmdline(argv) == ["--extra-vars", "foo=bar", "--extra-vars", f"@{tmp_path / 'more.yml'}",
                             "--extra-vars", '{"n": 2}']


def test_missing_extra_vars_file_is_invalid_input(inventory, capsys):
    assert cli.main(["deploy", "-i", str(inventory), "-e", "@/no/such.yml"]) == errors.EXIT_INVALID_INPUT
    assert "-e @FILE: file not found: /no/such.yml" in capsys.readouterr().err


def test_tags_and_skip_tags_are_runner_kwargs(inventory):
    kwargs = kwargs_for(["bootstrap", "-i", str(inventory), "-t", "docker", "--tags", "pki,node_exporter",
                         "--skip-tags", "firewall"])
    assert kwargs["tags"] == "docker,pki,node_exporter"
    assert kwargs["skip_tags"] == "firewall"
    assert "cmdline" not in kwargs


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--start-at-task", "Install Docker"], ["--start-at-task", "Install Docker"]),
        (["-u", "deploy"], ["--user", "deploy"]),
        (["--user", "deploy"], ["--user", "deploy"]),
        (["-b"], ["--become"]),
        (["--become-user", "svc"], ["--become-user", "svc"]),
        (["--ssh-common-args=-o ProxyJump=bastion.example"], ["--ssh-common-args", "-o ProxyJump=bastion.example"]),
        (["--", "--flush-cache", "-vvv"], ["--flush-cache", "-vvv"]),
    ],
)
def test_pass_through_flags_reach_the_command_line(inventory, extra, expected):
    assert cmdline(["bootstrap", "-i", str(inventory), *extra]) == expected


def test_private_key_is_checked_and_absolute(inventory, tmp_path, monkeypatch, capsys):
    (tmp_path / "id_deploy").write_text("key\n")
    monkeypatch.chdir(tmp_path)
    assert cmdline(["bootstrap", "-i", str(inventory), "--private-key", "id_deploy"]) == \
        ["--private-key", str(tmp_path / "id_deploy")]
    assert cli.main(["bootstrap", "-i", str(inventory), "--private-key", "nope"]) == errors.EXIT_INVALID_INPUT
    assert "--private-key not found: nope" in capsys.readouterr().err


def test_vault_ids_files_made_absolute_prompts_answered(inventory, tmp_path, monkeypatch, typed):
    (tmp_path / "prod-pass").write_text("p\n")
    monkeypatch.chdir(tmp_path)
    kwargs = kwargs_for(["deploy", "-i", str(inventory), "--vault-id", "prod@prod-pass", "--vault-id", "dev@prompt"])
    assert shlex.split(kwargs["cmdline"]) == ["--vault-id", f"prod@{tmp_path / 'prod-pass'}",
                                              "--vault-id", "dev@prompt"]
    assert kwargs["passwords"] == {cli.vault_prompt("dev"): "dev-pw-3"}
    assert typed == ["Vault password (dev): "]


def test_ask_become_pass_and_ask_vault_pass_go_through_runner_passwords_only(inventory, typed):
    kwargs = kwargs_for(["deploy", "-i", str(inventory), "-K", "--ask-vault-pass"])
    assert shlex.split(kwargs["cmdline"]) == ["--ask-vault-pass", "--ask-become-pass"]
    assert kwargs["passwords"] == {cli.BECOME_PROMPT: "become-pw-1", cli.VAULT_PROMPT: "vault-pw-2"}
    assert typed == ["Vault password: ", "BECOME password: "]
    visible = repr({k: v for k, v in kwargs.items() if k != "passwords"})
    assert "become-pw-1" not in visible and "vault-pw-2" not in visible
    assert "become-pw-1" not in repr(cli.playbook_request(cli.parse_args(["deploy", "-i", str(inventory), "-K"])))


@pytest.mark.parametrize(
    ("pattern", "prompt"),
    [
        (cli.BECOME_PROMPT, "BECOME password: "),
        (cli.BECOME_PROMPT, "SUDO password: "),
        (cli.VAULT_PROMPT, "Vault password: "),
        (cli.vault_prompt("dev"), "Vault password (dev): "),
    ],
)
def test_prompt_patterns_match_ansible_playbooks_prompts(pattern, prompt):
    assert re.search(pattern, "some output\n" + prompt, re.M)


def test_vault_prompt_of_one_label_does_not_answer_another():
    assert not re.search(cli.vault_prompt("dev"), "Vault password (prod): ", re.M)
    assert not re.search(cli.VAULT_PROMPT, "Vault password (prod): ", re.M)


def test_no_terminal_for_a_prompt_is_invalid_input(inventory, monkeypatch, capsys):
    def no_tty(prompt=""):
        raise EOFError

    monkeypatch.setattr(cli.getpass, "getpass", no_tty)
    assert cli.main(["deploy", "-i", str(inventory), "-K"]) == errors.EXIT_INVALID_INPUT
    assert "no terminal to ask for the BECOME password" in capsys.readouterr().err


def test_the_verbs_own_variables_come_after_the_operators(inventory, tmp_path):
    """ansible-runner puts cmdline first and its extravars after: a later -e wins in Ansible."""
    from ansible_runner.config.runner import RunnerConfig

    kwargs = kwargs_for(["deploy", "-i", str(inventory), "-e", "agentfactory_action=destroy", "-t", "agent"])
    for key in ("quiet", "suppress_env_files", "rotate_artifacts"):
        kwargs.pop(key)
    config = RunnerConfig(**kwargs)
    config.prepare()
    assert config.command == [
        "ansible-playbook", "--extra-vars", "agentfactory_action=destroy", "-i", str(inventory.resolve()),
        "-e", '{"agentfactory_action":"deploy","agentfactory_only_agents":[]}', "--tags", "agent",
        kwargs["playbook"],
    ]


def test_prompts_are_answered_and_kept_out_of_every_artifact(tmp_path, inventory, monkeypatch, typed):
    """A real ansible-runner run with -K and --ask-vault-pass: ansible-playbook asks, runner answers,
    the vault-encrypted variable decrypts, and no password is in any file of the run."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    from agentfactory_cli import runner

    secret_vars = tmp_path / "secret.yml"
    vault = VaultLib([("default", VaultSecret(b"vault-pw-2"))])
    secret_vars.write_bytes(vault.encrypt("sealed: opened-by-vault\n"))
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        f"  vars_files: [{secret_vars}]\n"
        "  tasks:\n    - ansible.builtin.assert: {that: [\"sealed == 'opened-by-vault'\"], quiet: true}\n"
    )
    real = runner.build_runner_kwargs

    def kwargs_with_play(req, ident, **options):
        kwargs = real(req, ident, **options)
        kwargs["playbook"] = str(play)
        return kwargs

    monkeypatch.setattr(runner, "build_runner_kwargs", kwargs_with_play)

    class Display:
        oks = 0

        def start(self, req, progress):
            pass

        def note(self, message):
            pass

        def event(self, ev):
            Display.oks += ev.get("event") == "runner_on_ok"
            return True

    req = cli.playbook_request(cli.parse_args(["bootstrap", "-i", str(inventory), "-K", "--ask-vault-pass"]))
    result = runner.run_playbook(req, Display())
    assert (result.status, result.ansible_rc, Display.oks) == ("successful", 0, 1)
    assert "BECOME password" in (result.artifacts / "stdout").read_text()  # asked, and answered
    state = Path(runner.state_dir())
    for path in state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"become-pw-1" not in data and b"vault-pw-2" not in data, path


# --- what each verb accepts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["status", "--check"], ["status", "--diff"], ["status", "--strict"], ["check", "-C"], ["check", "--diff"]],
)
def test_read_only_verbs_refuse_options_meaningless_there(inventory, argv, capsys):
    assert cli.main([*argv, "-i", str(inventory)]) == errors.EXIT_INVALID_INPUT
    assert f"usage: agentfactory {argv[0]}" in capsys.readouterr().err


def test_check_keeps_strict(inventory):
    assert cli.parse_args(["check", "-i", str(inventory), "--strict"]).strict is True


def test_an_unknown_option_shows_the_verbs_usage(capsys):
    assert cli.main(["deploy", "--nope"]) == errors.EXIT_INVALID_INPUT
    err = capsys.readouterr().err
    assert err.startswith("usage: agentfactory deploy") and "unrecognized arguments: --nope" in err
    assert cli.main(["lab", "up", "--nope"]) == errors.EXIT_INVALID_INPUT
    assert capsys.readouterr().err.startswith("usage: agentfactory lab up")


def test_double_dash_is_for_playbook_verbs_and_exec_only(capsys):
    assert cli.main(["lab", "status", "--", "x"]) == errors.EXIT_INVALID_INPUT
    assert "only playbook verbs take it" in capsys.readouterr().err
    assert cli.parse_args(["image", "push", "--", "--flush-cache"]).ansible_args == ["--flush-cache"]


@pytest.mark.parametrize("verb", ["scale", "update"])
def test_one_agent_verbs_say_so(verb, capsys):
    assert cli.main([verb, "--help"]) == 0
    out = capsys.readouterr().out
    assert "the agent (exactly one)" in out and "repeatable" not in out.split("--agent NAME")[1].split("\n\n")[0]


@pytest.mark.parametrize("action", ["build", "push"])
def test_image_actions_have_a_description(action, capsys):
    assert cli.main(["image", action, "--help"]) == 0
    assert "reference agent's image" in capsys.readouterr().out


def test_every_playbook_verb_has_the_pass_through_options(capsys):
    for verb in [*cli.VERBS, "image push"]:
        assert cli.main([*verb.split(), "--help"]) == 0
        out = capsys.readouterr().out
        for flag in ("--extra-vars", "--tags", "--skip-tags", "--start-at-task", "--user", "--private-key",
                     "--become-user", "--ask-become-pass", "--ask-vault-pass", "--vault-id", "--ssh-common-args"):
            assert flag in out, (verb, flag)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_prints_a_script_naming_the_verbs(shell, capsys):
    assert cli.main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert "agentfactory" in out and "bootstrap" in out and "--extra-vars" in out
    if shell == "zsh":
        assert out.startswith("#compdef agentfactory")
