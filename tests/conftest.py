"""Shared fixtures: every test gets its own state directory, so nothing touches a real lab."""

import pytest

# Ansible's collection loader in place: tests import the fleet model (plugins/plugin_utils) as
# ansible_collections.agentfactory.fleet.plugins.plugin_utils, as the CLI and the filters do.
import agentfactory_cli.model  # noqa: F401


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch, request):
    if "e2e" in request.node.nodeid.split("/"):
        return  # end-to-end tests drive the real project state on purpose
    monkeypatch.setenv("AGENTFACTORY_STATE_DIR", str(tmp_path / "state"))
    for var in ("AGENTFACTORY_INVENTORY", "AGENTFACTORY_LIMIT", "AGENTFACTORY_FORKS",
                "AGENTFACTORY_VAULT_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)
    # A lab of the tests' own (under the temporary state dir), never the operator's default lab.
    monkeypatch.setenv("AGENTFACTORY_LAB", "unittest")
