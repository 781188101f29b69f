"""End-to-end fixtures: one real lab of systemd hosts for the session, driven through the CLI."""

from __future__ import annotations

import json

import pytest
from labcli import LAB, agentfactory


@pytest.fixture(scope="session")
def lab2():
    """Two fresh hosts for the whole session, removed afterwards even when a test fails."""
    agentfactory("lab", "down", "--name", LAB)
    agentfactory("lab", "up", "--name", LAB, "--hosts", "2", check=True)
    res = agentfactory("lab", "status", "--name", LAB, "--json", check=True)
    yield json.loads(res.stdout)
    agentfactory("lab", "down", "--name", LAB)


@pytest.fixture(scope="session")
def bootstrapped(lab2):
    """The lab with Docker and node_exporter (a no-op when test_10_bootstrap already ran)."""
    agentfactory("bootstrap", check=True)
    return lab2
