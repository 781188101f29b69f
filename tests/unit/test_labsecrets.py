"""The lab's generated secrets: a vault password file and a vault-encrypted group_vars file."""

from __future__ import annotations

import re
import stat

from agentfactory_cli.lab import Lab
from agentfactory_cli.lab import secrets as labsecrets

URLSAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generates_every_name_encrypted(tmp_path):
    vault, password = tmp_path / "group_vars" / "all" / "vault.yml", tmp_path / "lab" / "vault-password"
    added = labsecrets.ensure_vault(vault, password)
    assert added == list(labsecrets.GENERATORS)
    assert _mode(password) == 0o600 and len(password.read_text().strip()) >= 32
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")  # whole file, no plain text
    values = labsecrets.read(vault, password)
    assert sorted(values) == sorted(labsecrets.GENERATORS)
    for name, value in values.items():
        assert str(value) not in vault.read_text()
        if name == "vault_gateway_api_keys":
            assert sorted(value) == ["demo", "limited"]
            assert all(URLSAFE.match(k) and len(k) >= 24 for k in value.values())
        elif name == "vault_keepalived_password":
            assert URLSAFE.match(value) and len(value) == 8
        elif name == labsecrets.PREVIOUS_API_KEYS:
            assert value == {}  # no rotation yet
        else:
            assert URLSAFE.match(value) and len(value) >= 24, name
    assert len({str(v) for v in values.values()}) == len(values)  # all different


def test_second_run_changes_nothing(tmp_path):
    vault, password = tmp_path / "vault.yml", tmp_path / "vault-password"
    labsecrets.ensure_vault(vault, password)
    before, pw_before, mtime = vault.read_bytes(), password.read_bytes(), vault.stat().st_mtime_ns
    assert labsecrets.ensure_vault(vault, password) == []
    assert vault.read_bytes() == before and vault.stat().st_mtime_ns == mtime
    assert password.read_bytes() == pw_before


def test_a_missing_name_is_added_and_existing_values_kept(tmp_path):
    vault, password = tmp_path / "vault.yml", tmp_path / "vault-password"
    labsecrets.ensure_vault(vault, password, {"vault_a": lambda: "first-a", "vault_b": lambda: "first-b"})
    generators = {"vault_a": lambda: "second-a", "vault_b": lambda: "second-b", "vault_c": lambda: "new-c"}
    assert labsecrets.ensure_vault(vault, password, generators) == ["vault_c"]
    assert labsecrets.read(vault, password) == {"vault_a": "first-a", "vault_b": "first-b", "vault_c": "new-c"}


def test_ansible_reads_the_file_with_the_password_file(tmp_path):
    from ansible.cli import CLI
    from ansible.parsing.dataloader import DataLoader

    vault, password = tmp_path / "vault.yml", tmp_path / "vault-password"
    labsecrets.ensure_vault(vault, password)
    loader = DataLoader()
    CLI.setup_vault_secrets(loader, vault_ids=[], vault_password_files=[str(password)], initialize_context=False)
    data = loader.load_from_file(str(vault))
    assert str(data["vault_reference_api_key"]) == labsecrets.read(vault, password)["vault_reference_api_key"]


def test_lab_paths_and_seed_leaves_out_the_default_labs_vault(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "inventory" / "lab" / "group_vars" / "all").mkdir(parents=True)
    (home / "inventory" / "lab" / "group_vars" / "all" / "agents.yml").write_text("agentfactory_agents: []\n")
    (home / "inventory" / "lab" / "group_vars" / "all" / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n")
    monkeypatch.setenv("AGENTFACTORY_HOME", str(home))
    default, named = Lab(), Lab("other")
    assert default.vault_file == home / "inventory" / "lab" / "group_vars" / "all" / "vault.yml"
    assert named.vault_file == named.dir / "group_vars" / "all" / "vault.yml"
    assert named.vault_password_file == named.dir / "vault-password"
    named._seed_group_vars()
    assert (named.dir / "group_vars" / "all" / "agents.yml").exists()
    assert not named.vault_file.exists()


def test_down_removes_the_vault_and_password_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "inventory" / "lab").mkdir(parents=True)
    monkeypatch.setenv("AGENTFACTORY_HOME", str(home))
    monkeypatch.setattr("agentfactory_cli.lab.docker", lambda *a, **k: type("R", (), {"returncode": 1, "stdout": ""})())
    monkeypatch.setattr("agentfactory_cli.lab.aptcache.collect", lambda: None)
    lab = Lab()
    labsecrets.ensure_vault(lab.vault_file, lab.vault_password_file)
    assert lab.vault_file.exists() and lab.vault_password_file.exists()
    lab.down(log=lambda m: None)
    assert not lab.vault_file.exists() and not lab.vault_password_file.exists()


def test_rotate_gives_every_secret_a_new_value_and_keeps_the_replaced_api_keys(tmp_path):
    vault, password = tmp_path / "vault.yml", tmp_path / "vault-password"
    labsecrets.ensure_vault(vault, password)
    before = labsecrets.read(vault, password)
    assert before[labsecrets.PREVIOUS_API_KEYS] == {}
    rotated = labsecrets.rotate(vault, password)
    after = labsecrets.read(vault, password)
    assert sorted(rotated) == sorted(labsecrets.GENERATORS)
    for name in labsecrets.GENERATORS:
        if name != labsecrets.PREVIOUS_API_KEYS:
            assert after[name] != before[name], name
    # Each client's replaced key is still there, as its previous key; a second rotation drops it.
    assert after[labsecrets.PREVIOUS_API_KEYS] == {c: [k] for c, k in before[labsecrets.API_KEYS].items()}
    labsecrets.rotate(vault, password)
    again = labsecrets.read(vault, password)
    assert again[labsecrets.PREVIOUS_API_KEYS] == {c: [k] for c, k in after[labsecrets.API_KEYS].items()}
    assert vault.stat().st_mode & 0o777 == 0o600
    assert before[labsecrets.API_KEYS]["demo"].encode() not in vault.read_bytes()


def test_retire_forgets_the_replaced_api_keys_only(tmp_path):
    vault, password = tmp_path / "vault.yml", tmp_path / "vault-password"
    labsecrets.ensure_vault(vault, password)
    assert labsecrets.retire(vault, password) == []  # nothing to retire: the file stays as it was
    labsecrets.rotate(vault, password)
    current = labsecrets.read(vault, password)
    assert labsecrets.retire(vault, password) == ["demo", "limited"]
    assert labsecrets.read(vault, password) == {**current, labsecrets.PREVIOUS_API_KEYS: {}}
