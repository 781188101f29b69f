"""The keepalived role's interface finder (roles/keepalived/files/find_interface.py), which runs
on the hosts, read-only, to put the floating address on the interface of its network."""

from __future__ import annotations

import json
import runpy
import subprocess
from pathlib import Path

import pytest

FINDER = Path(__file__).resolve().parents[2] / "roles" / "keepalived" / "files" / "find_interface.py"
NS = runpy.run_path(str(FINDER))

# `ip -j -4 address show` of a host with loopback, a fleet network and a second one; the floating
# address 172.30.0.250 is on eth0 (this host holds it).
IP_JSON = json.dumps([
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "eth0", "addr_info": [
        {"family": "inet", "local": "172.30.0.11", "prefixlen": 24},
        {"family": "inet", "local": "172.30.0.250", "prefixlen": 24},
    ]},
    {"ifname": "eth1", "addr_info": [{"family": "inet", "local": "10.9.0.5", "prefixlen": 16}]},
    {"ifname": "eth2", "addr_info": []},
])


def test_finds_the_interface_of_the_network_and_the_hosts_own_address():
    found = NS["addresses"](IP_JSON)
    assert NS["choose"]("172.30.0.250/24", found) == {"interface": "eth0", "address": "172.30.0.11", "holds": True}
    assert NS["choose"]("10.9.200.1/16", found) == {"interface": "eth1", "address": "10.9.0.5", "holds": False}


def test_no_network_contains_the_address():
    with pytest.raises(LookupError, match=r"192\.0\.2\.1 .*eth0 172\.30\.0\.0/24"):
        NS["choose"]("192.0.2.1/24", NS["addresses"](IP_JSON))


def test_a_named_interface_wins_and_must_exist():
    found = NS["addresses"](IP_JSON)
    assert NS["choose"]("192.0.2.1/24", found, "eth1") == {"interface": "eth1", "address": "10.9.0.5", "holds": False}
    with pytest.raises(LookupError, match="eth9"):
        NS["choose"]("192.0.2.1/24", found, "eth9")


def test_main_prints_json_and_fails_with_a_message(monkeypatch, capsys):
    def fake_run(argv, **_kwargs):
        assert argv == ["ip", "-j", "-4", "address", "show"]
        return subprocess.CompletedProcess(argv, 0, IP_JSON, "")

    monkeypatch.setitem(NS["main"].__globals__, "subprocess", type("S", (), {
        "run": staticmethod(fake_run), "CalledProcessError": subprocess.CalledProcessError}))
    assert NS["main"](["172.30.0.250/24"]) == 0
    assert json.loads(capsys.readouterr().out)["interface"] == "eth0"
    assert NS["main"](["not-an-address"]) == 1
    assert "not-an-address" in capsys.readouterr().err
    assert NS["main"]([]) == 2
