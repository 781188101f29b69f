"""Bootstrap on fresh hosts: check mode first, then for real, then idempotent, over real SSH."""

from __future__ import annotations

import subprocess

import pytest
from labcli import HOSTS, LAB, agentfactory, host_name, host_names, run_json


def test_lab_has_bare_hosts(lab):
    if lab["kept"]:
        pytest.skip("AGENTFACTORY_E2E_KEEP_LAB: the hosts are not fresh")
    assert [h["name"] for h in lab["hosts"]] == host_names()
    for host in lab["hosts"]:
        assert host["state"] == "running"
        assert host["services"]["docker"] != "active"  # bare: nothing installed yet
        assert host["ports"]["22"] > 0


def test_check_diff_on_fresh_hosts_completes(lab):
    if lab["kept"]:
        pytest.skip("AGENTFACTORY_E2E_KEEP_LAB: the hosts are not fresh")
    code, doc = run_json("bootstrap", "--check", "--diff")
    assert code == 0, doc
    assert set(doc["hosts"]) == set(host_names())
    for counts in doc["hosts"].values():
        assert counts["failed"] == 0 and counts["unreachable"] == 0
        assert counts["changed"] > 0  # it reports what it would install...
    status = agentfactory("lab", "status", "--json").stdout
    assert '"docker": "active"' not in status  # ...and installed nothing


def test_bootstrap_installs_docker_and_node_exporter(lab):
    res = agentfactory("bootstrap")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Recap" in res.stdout and "Artifacts:" in res.stdout
    status = agentfactory("lab", "status", "--json").stdout
    assert status.count('"docker": "active"') == HOSTS
    assert status.count('"node_exporter": "active"') == HOSTS


def test_second_bootstrap_changes_nothing(lab):
    code, doc = run_json("bootstrap")
    assert code == 0
    assert doc["status"] == "successful"
    assert {h: c["changed"] for h, c in doc["hosts"].items()} == dict.fromkeys(host_names(), 0)
    assert all(c["ok"] > 0 for c in doc["hosts"].values())


def test_misspelled_inventory_is_one_line_and_exit_4(lab):
    res = agentfactory("bootstrap", "-i", "inventroy/example")
    assert res.returncode == 4
    assert res.stderr.strip() == "error: inventory not found: inventroy/example (no such file or directory)"
    assert res.stdout == ""


def test_unreachable_host_exits_3(lab):
    # A read-only run: the hosts that answer are left exactly as they were (test_50 loses a host
    # in the middle of a deploy).
    subprocess.run(["docker", "stop", host_name(2)], check=True, capture_output=True)
    try:
        code, doc = run_json("status")
        assert code == 3, doc
        assert doc["hosts"][host_name(2)]["unreachable"] >= 1
        assert all(doc["hosts"][host]["failed"] == 0 for host in host_names() if host != host_name(2))
    finally:
        agentfactory("lab", "up", "--name", LAB, "--hosts", str(HOSTS), check=True)
