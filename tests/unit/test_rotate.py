"""`agentfactory rotate`: which playbook runs, and what happens to a lab's secrets first."""

from __future__ import annotations

import pytest

from agentfactory_cli import cli, labsecrets
from agentfactory_cli.lab import Lab


@pytest.fixture
def lab():
    """A named lab (under the test's state dir) with generated secrets and one host."""
    lab = Lab("rot")
    lab.inventory_path.parent.mkdir(parents=True)
    lab.inventory_path.write_text("all:\n  hosts:\n    af-rot-1:\n")
    labsecrets.ensure_vault(lab.vault_file, lab.vault_password_file)
    return lab


def request_for(argv):
    return cli.playbook_request(cli.build_parser().parse_args(argv))


def secrets(lab):
    return labsecrets.read(lab.vault_file, lab.vault_password_file)


def test_rotate_on_a_lab_renews_its_secrets_then_runs_the_rotation(lab):
    before = secrets(lab)
    req = request_for(["rotate", "--lab", "rot"])
    assert req.playbook == "rotate.yml"
    after = secrets(lab)
    assert after["vault_prometheus_password"] != before["vault_prometheus_password"]
    assert after[labsecrets.PREVIOUS_API_KEYS]["demo"] == [before[labsecrets.API_KEYS]["demo"]]


def test_retire_drops_the_replaced_keys_and_runs_the_gateway_only(lab):
    request_for(["rotate", "--lab", "rot"])
    rotated = secrets(lab)
    req = request_for(["rotate", "--lab", "rot", "--retire"])
    assert req.playbook == "gateway.yml"
    assert secrets(lab) == {**rotated, labsecrets.PREVIOUS_API_KEYS: {}}


def test_check_mode_changes_no_secret(lab):
    before = lab.vault_file.read_bytes()
    req = request_for(["rotate", "--lab", "rot", "--check"])
    assert req.check and req.playbook == "rotate.yml"
    assert lab.vault_file.read_bytes() == before


def test_rotate_on_an_operators_inventory_leaves_its_vault_alone(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n")
    req = request_for(["rotate", "-i", str(inventory)])
    assert req.playbook == "rotate.yml"
    assert [p.name for p in tmp_path.iterdir()] == ["hosts.yml"]  # no vault written beside it
