"""End-to-end fixtures: one real lab of systemd hosts for the session, driven through the CLI."""

from __future__ import annotations

import json
import os

import pytest
from labcli import HOSTS, LAB, agentfactory


@pytest.fixture(scope="session")
def lab():
    """Fresh hosts for the whole session, removed afterwards even when a test fails.

    AGENTFACTORY_E2E_KEEP_LAB=1 keeps the lab between runs (for working on one test); the
    tests that expect bare hosts then skip.
    """
    keep = os.environ.get("AGENTFACTORY_E2E_KEEP_LAB") == "1"
    if not keep:
        agentfactory("lab", "down", "--name", LAB)
    agentfactory("lab", "up", "--name", LAB, "--hosts", str(HOSTS), check=True)
    res = agentfactory("lab", "status", "--name", LAB, "--json", check=True)
    yield {**json.loads(res.stdout), "kept": keep}
    if not keep:
        agentfactory("lab", "down", "--name", LAB)


@pytest.fixture(scope="session")
def bootstrapped(lab):
    """The lab with Docker and node_exporter: bootstrapped here unless every host already runs
    both (test_10_bootstrap ran, or a kept lab)."""
    res = agentfactory("lab", "status", "--name", LAB, "--json", check=True)
    hosts = json.loads(res.stdout)["hosts"]
    ready = len(hosts) == HOSTS and all(h["services"].get(s) == "active" for h in hosts
                                        for s in ("docker", "node_exporter"))
    if not ready:
        agentfactory("bootstrap", check=True)
    return lab
