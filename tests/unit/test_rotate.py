"""`agentfactory rotate`: which playbook runs, and what happens to a lab's secrets first."""

from __future__ import annotations

import pytest

from agentfactory_cli import cli
from agentfactory_cli.lab import Lab
from agentfactory_cli.lab import secrets as labsecrets
from agentfactory_cli.verbs import VERBS


@pytest.fixture
def lab():
    """A named lab (under the test's state dir) with generated secrets and one host."""
    lab = Lab("rot")
    lab.inventory_path.parent.mkdir(parents=True)
    lab.inventory_path.write_text("all:\n  hosts:\n    af-rot-1:\n")
    labsecrets.ensure_vault(lab.vault_file, lab.vault_password_file)
    return lab


def request_for(argv):
    """The run request, and the verb's own step before the run (done under the fleet's lock)."""
    args = cli.build_parser().parse_args(argv)
    req = cli.playbook_request(args)
    VERBS["rotate"].prepare(args, req.inventories, req.check)
    return req


def test_the_lab_keeps_its_secrets_until_the_rotation_runs(lab):
    before = secrets(lab)
    cli.playbook_request(cli.build_parser().parse_args(["rotate", "--lab", "rot"]))  # validation only
    assert secrets(lab) == before


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


def test_the_cli_renews_the_secrets_under_the_fleet_lock_right_before_the_run(lab, monkeypatch):
    import dataclasses
    from pathlib import Path

    from agentfactory_cli import lock
    from agentfactory_cli.runner import RunResult

    before = secrets(lab)
    seen = {}
    real_prepare = VERBS["rotate"].prepare

    def prepare(args, inventories, check):
        seen["locked"] = bool(lock._HELD)  # the fleet's lock is held by now
        real_prepare(args, inventories, check)

    def fake_run(req, display):
        seen["renewed"] = secrets(lab) != before
        return RunResult(status="successful", ansible_rc=0, hosts={}, artifacts=Path("/tmp/a"), canceled=False)

    monkeypatch.setitem(VERBS, "rotate", dataclasses.replace(VERBS["rotate"], prepare=prepare))
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", fake_run)
    assert cli.main(["rotate", "--lab", "rot", "--json"]) == 0
    assert seen == {"locked": True, "renewed": True}
