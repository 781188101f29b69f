"""End-to-end fixtures: a real lab of systemd hosts, driven through the `agentfactory` command."""

from __future__ import annotations

import json

import pytest
from labcli import LAB, agentfactory


@pytest.fixture(scope="module")
def lab2():
    """Two fresh hosts for one test module, removed afterwards even when a test fails."""
    agentfactory("lab", "down", "--name", LAB)
    agentfactory("lab", "up", "--name", LAB, "--hosts", "2", check=True)
    res = agentfactory("lab", "status", "--name", LAB, "--json", check=True)
    yield json.loads(res.stdout)
    agentfactory("lab", "down", "--name", LAB)
