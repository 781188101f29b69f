"""The CLI's config file: where it is found, and flag > environment > file > built-in default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentfactory_cli import cli, config, errors


@pytest.fixture
def inventories(tmp_path) -> dict[str, Path]:
    found = {}
    for name in ("flag", "env", "file"):
        path = tmp_path / f"{name}.yml"
        path.write_text(f"all:\n  hosts:\n    {name}-host:\n")
        found[name] = path
    return found


def project_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "project" / "agentfactory.toml"  # the project directory (conftest.py)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xdg" / "agentfactory" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def request(argv):
    return cli.playbook_request(cli.parse_args(argv))


def test_flag_beats_env_beats_file_beats_default(tmp_path, inventories, monkeypatch):
    project_file(tmp_path, f'inventory = ["{inventories["file"]}"]\nforks = 3\nuser = "file-user"\n')
    req = request(["bootstrap"])
    assert (req.inventories, req.forks, req.user) == ([inventories["file"]], 3, "file-user")

    monkeypatch.setenv("AGENTFACTORY_INVENTORY", str(inventories["env"]))
    monkeypatch.setenv("AGENTFACTORY_FORKS", "5")
    monkeypatch.setenv("AGENTFACTORY_USER", "env-user")
    req = request(["bootstrap"])
    assert (req.inventories, req.forks, req.user) == ([inventories["env"]], 5, "env-user")

    req = request(["bootstrap", "-i", str(inventories["flag"]), "-f", "7", "-u", "flag-user"])
    assert (req.inventories, req.forks, req.user) == ([inventories["flag"]], 7, "flag-user")


def test_built_in_defaults_without_file_or_env(inventories):
    req = request(["bootstrap", "-i", str(inventories["flag"])])
    assert (req.forks, req.user, req.limit, req.vault_ids) == (None, None, None, [])


def test_the_project_file_comes_before_the_users(tmp_path):
    project = project_file(tmp_path, "forks = 2\n")
    user_file(tmp_path, "forks = 9\nuser = 'u'\n")
    values, path = config.resolve({})
    assert path == project
    assert values["forks"].value == 2 and values["user"].value is None  # first found wins, no merge
    project.unlink()
    values, path = config.resolve({})
    assert path.name == "config.toml" and values["forks"].value == 9


def test_explicit_file_from_the_environment(tmp_path, monkeypatch, capsys):
    project_file(tmp_path, "forks = 2\n")
    mine = tmp_path / "mine.toml"
    mine.write_text("forks = 4\n")
    monkeypatch.setenv("AGENTFACTORY_CONFIG", str(mine))
    assert config.resolve({})[0]["forks"] == config.Value(4, "file", str(mine))
    monkeypatch.setenv("AGENTFACTORY_CONFIG", str(tmp_path / "nope.toml"))
    assert cli.main(["config"]) == errors.EXIT_INVALID_INPUT
    assert "nope.toml: no such file" in capsys.readouterr().err


def test_paths_in_the_file_are_relative_to_it(tmp_path):
    path = project_file(tmp_path, 'inventory = ["inv/prod", "/abs/inv"]\nprivate_key = "keys/id"\n'
                                  'vault_id = ["prod@pass/prod", "dev@prompt"]\n')
    (path.parent / "pass").mkdir()
    (path.parent / "pass" / "prod").write_text("x\n")
    values, _ = config.resolve({})
    assert values["inventory"].value == [str(path.parent / "inv/prod"), "/abs/inv"]
    assert values["private_key"].value == str(path.parent / "keys/id")
    assert values["vault_id"].value == [f"prod@{path.parent / 'pass/prod'}", "dev@prompt"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("forsk = 3\n", "unknown setting 'forsk' (did you mean 'forks'?)"),
        ("forks = 0\n", "forks: must be at least 1"),
        ("forks = 'many'\n", "forks: expected a whole number"),
        ("user = 3\n", "user: expected a non-empty string"),
        ("forks = \n", "config file"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_4(tmp_path, text, message, capsys):
    project_file(tmp_path, text)
    assert cli.main(["config"]) == errors.EXIT_INVALID_INPUT
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_bad_environment_value_is_invalid_input(monkeypatch, capsys):
    monkeypatch.setenv("AGENTFACTORY_FORKS", "0")
    assert cli.main(["config"]) == errors.EXIT_INVALID_INPUT
    assert "AGENTFACTORY_FORKS: must be at least 1" in capsys.readouterr().err


def test_lists_from_the_environment_are_comma_separated(monkeypatch, inventories):
    monkeypatch.setenv("AGENTFACTORY_INVENTORY", f"{inventories['env']},{inventories['file']}")
    assert request(["bootstrap"]).inventories == [inventories["env"], inventories["file"]]


def test_config_prints_each_setting_with_its_origin(tmp_path, monkeypatch, capsys):
    path = project_file(tmp_path, "forks = 3\nuser = 'file-user'\n")
    monkeypatch.setenv("AGENTFACTORY_USER", "env-user")
    assert cli.main(["config", "--limit", "rack1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Config file: {path}"
    lines = {line.split(" = ")[0].strip(): line for line in out[1:]}
    assert lines["forks"].endswith(f"= 3  [file: {path}]")
    assert lines["user"].endswith("= env-user  [env: AGENTFACTORY_USER]")
    assert lines["limit"].endswith("= rack1  [flag: -l/--limit]")
    assert lines["lab"].endswith("= unittest  [env: AGENTFACTORY_LAB]")
    assert lines["inventory"].endswith("= - (the lab's inventory while the lab is up)  [default]")


def test_config_json(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTFACTORY_LAB")
    path = project_file(tmp_path, "vault_id = ['dev@prompt']\n")
    assert cli.main(["config", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == str(path)
    assert doc["settings"]["vault_id"] == {"value": ["dev@prompt"], "origin": "file", "where": str(path)}
    assert doc["settings"]["lab"] == {"value": "lab", "origin": "default", "where": ""}
    assert set(doc["settings"]) == set(config.SETTINGS)


def test_config_without_a_file_says_where_it_looked(tmp_path, capsys):
    assert cli.main(["config"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("Config file: none (looked for $AGENTFACTORY_CONFIG, ")
    assert str(tmp_path / "project" / "agentfactory.toml") in first


def test_vault_password_file_from_the_file_replaces_the_labs_default(tmp_path, inventories):
    secret = tmp_path / "project" / "vault-pass"
    project_file(tmp_path, "vault_password_file = 'vault-pass'\n")
    secret.write_text("pw\n")
    req = request(["deploy", "-i", str(inventories["flag"])])
    assert req.vault_password_file == secret


def test_the_lab_verbs_take_the_lab_from_the_config_too(tmp_path, monkeypatch):
    monkeypatch.delenv("AGENTFACTORY_LAB")
    project_file(tmp_path, "lab = 'fromfile'\n")
    seen = []
    monkeypatch.setattr(cli, "_print_lab", lambda lab, json_mode: seen.append(lab.name))
    assert cli.main(["lab", "status"]) == 0
    assert cli.main(["lab", "status", "--name", "flagged"]) == 0
    monkeypatch.setenv("AGENTFACTORY_LAB", "fromenv")
    assert cli.main(["lab", "status"]) == 0
    assert seen == ["fromfile", "flagged", "fromenv"]
