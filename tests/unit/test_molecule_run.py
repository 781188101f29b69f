"""molecule/_shared/run.py: each scenario's own test sequence, the steps under test on Mitogen,
create, prepare and destroy on Ansible's own strategy, and a failed step's instances destroyed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "molecule" / "_shared" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("af_molecule_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scenarios() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def test_a_scenario_with_its_own_sequence_runs_that_one(run):
    assert run.test_sequence("firewall") == yaml.safe_load(
        (ROOT / "molecule" / "firewall" / "molecule.yml").read_text())["scenario"]["test_sequence"]
    assert "side_effect" in run.test_sequence("firewall")


def test_a_scenario_without_one_runs_the_shared_sequence(run):
    shared = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())["scenario"]["test_sequence"]
    assert "scenario" not in (yaml.safe_load((ROOT / "molecule" / "node_exporter" / "molecule.yml").read_text()) or {})
    assert run.test_sequence("node_exporter") == shared


@pytest.mark.parametrize("scenario", scenarios())
def test_every_scenario_starts_and_ends_with_destroy_and_checks_on_fresh_hosts(run, scenario):
    sequence = run.test_sequence(scenario)
    assert sequence[0] == sequence[-1] == "destroy"
    assert sequence.index("create") < sequence.index("verify")
    if "converge" in sequence:
        assert sequence.index("converge") < sequence.index("idempotence") < sequence.index("verify")


def test_ansible_steps_on_mitogen_create_and_destroy_on_ansible(run, monkeypatch):
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    for step in ("check", "converge", "idempotence", "side_effect", "verify"):
        assert run.step_env(step, mitogen=True)["ANSIBLE_STRATEGY"] == "agentfactory.fleet.stoppable_mitogen"
    for step in ("create", "prepare", "destroy"):
        assert "ANSIBLE_STRATEGY" not in run.step_env(step, mitogen=True)
    assert "ANSIBLE_STRATEGY" not in run.step_env("converge", mitogen=False)


def test_each_molecule_command_runs_its_step_alone(run):
    steps = yaml.safe_load(run.STEPS.read_text())["scenario"]
    for name in ("create", "check", "converge", "destroy"):
        assert steps[f"{name}_sequence"] == [name]


def test_a_failed_step_destroys_the_instances_and_exits_1(run, monkeypatch):
    calls = []

    def molecule(step, scenario, mitogen):
        calls.append((step, mitogen))
        return 2 if step == "converge" else 0

    monkeypatch.setattr(run, "molecule", molecule)
    monkeypatch.setattr(run.importlib.util, "find_spec", lambda name: object())
    monkeypatch.delenv("MOLECULE_MITOGEN", raising=False)
    assert run.main(["node_exporter"]) == 1
    sequence = run.test_sequence("node_exporter")
    ran = sequence[:sequence.index("converge") + 1]
    assert calls == [(step, True) for step in ran] + [("destroy", False)]


def test_molecule_mitogen_0_runs_every_step_on_ansible(run, monkeypatch):
    calls = []
    monkeypatch.setattr(run, "molecule", lambda step, scenario, mitogen: calls.append(mitogen) or 0)
    monkeypatch.setenv("MOLECULE_MITOGEN", "0")
    assert run.main(["node_exporter"]) == 0
    assert calls and not any(calls)
