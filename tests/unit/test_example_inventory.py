"""inventory/example is production-shaped: a catalog of two agents that validates (strictly), and
secrets that are all vault-encrypted with the documented example password."""

from __future__ import annotations

import re

from agentfactory_cli import inventory as inv
from agentfactory_cli.paths import project_root

EXAMPLE = project_root() / "inventory" / "example"
PASSWORD = b"agentfactory-example"  # documented in inventory/example/README.md


def test_the_example_validates_strictly_without_the_password():
    loaded = inv.load([EXAMPLE], strict=True)
    assert loaded.agent_names == ["support-bot", "summarizer"]
    assert {a["runtime"] for a in loaded.agents.values()} == {"docker", "systemd"}
    assert set(loaded.groups) >= {"agent_hosts", "rack1", "rack2", "monitoring", "registry", "gateway"}
    assert "agentfactory-example" in (EXAMPLE / "README.md").read_text()


def test_every_example_secret_is_vault_encrypted_with_the_documented_password():
    from ansible.parsing.vault import VaultLib, VaultSecret

    text = (EXAMPLE / "group_vars" / "all" / "vault.yml").read_text()
    names = re.findall(r"^\s*(\w+): !vault \|$", text, re.M)
    blocks = re.findall(r"\$ANSIBLE_VAULT;1\.1;AES256\n(?:[ ]+[0-9a-f]+\n?)+", text)
    assert len(names) == len(blocks) >= 9
    vault = VaultLib([("default", VaultSecret(PASSWORD))])
    for block in blocks:
        assert vault.decrypt("\n".join(line.strip() for line in block.splitlines())).startswith(b"example-")
    referenced = set(re.findall(r"vault_\w+", "".join(p.read_text() for p in EXAMPLE.rglob("*.yml")
                                                      if p.name != "vault.yml")))
    assert referenced <= set(re.findall(r"^(vault_\w+):", text, re.M))


def test_connection_settings_reach_logs_and_exec():
    loaded = inv.load([EXAMPLE], connections=True)
    conn = loaded.connections["agent-01.example.internal"]
    assert conn["ansible_host"] == "192.0.2.11" and conn["ansible_user"] == "deploy"
    assert conn["ansible_become"] is True and conn["ansible_ssh_private_key_file"] == "~/.ssh/agentfactory_deploy"
