"""Unit tests see no config file of the operator's and none of the CLI's AGENTFACTORY_* settings."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_cli_config(tmp_path, monkeypatch):
    from agentfactory_cli import config

    monkeypatch.setattr(config, "project_root", lambda: tmp_path / "project")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    for setting in config.SETTINGS.values():
        if setting.name != "lab":  # tests/conftest.py points it at a lab of the tests' own
            monkeypatch.delenv(setting.env, raising=False)


@pytest.fixture(autouse=True)
def _no_vault_context():
    """Ansible's vault context is process-wide and set once (the CLI loads one inventory per
    process): each test starts without one, so that one test's password is not another's."""
    from agentfactory_cli import ansiblecore

    with ansiblecore.vault_context_cleared():
        yield


@pytest.fixture
def inventory(tmp_path) -> Path:
    """Two agent hosts, nothing else: enough for the CLI to read before it would run a play."""
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  children:\n    agent_hosts:\n      hosts:\n        web1:\n        web2:\n")
    return path


def no_task(*_args, gate=None, **_kwargs):
    """Stands in for runner.run_playbook (or runner._run) where the CLI must refuse before any
    task: a read-only verb's run starts with its preflight as the gate, which must raise."""
    if gate is not None:
        gate()
    pytest.fail("ran Ansible")
