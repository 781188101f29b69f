"""Sources of the host firewall (plugins/plugin_utils/firewall.py) and the resolver the role runs on
the hosts (roles/firewall/files/resolve_addresses.py)."""

from __future__ import annotations

import json
import runpy
import socket
from pathlib import Path

import pytest

from agentfactory_cli.model import firewall as fw

RESOLVER = Path(__file__).resolve().parents[2] / "roles" / "firewall" / "files" / "resolve_addresses.py"


def test_host_addresses_use_the_fleets_address_once_each():
    hostvars = {
        "mon1": {"agentfactory_host_address": "mon1.lab", "ansible_host": "127.0.0.1"},
        "gw1": {"ansible_host": "10.0.0.7"},
        "gw2": {},
        "dup": {"agentfactory_host_address": "mon1.lab"},
    }
    assert fw.host_addresses(["mon1", "gw1", "gw2", "dup"], hostvars) == ["mon1.lab", "10.0.0.7", "gw2"]
    assert fw.host_addresses(None, None) == []


def test_source_families_split_and_normalise():
    resolved = {"mon1.lab": ["172.18.0.2", "fd00::2"], "gw1": ["172.18.0.3"]}
    result = fw.source_families(
        ["mon1.lab", "gw1", "10.1.2.3/8", "0.0.0.0/0", "::/0", "172.18.0.2", "fe80::1%eth0"], resolved
    )
    assert result == {
        "v4": ["0.0.0.0/0", "10.0.0.0/8", "172.18.0.2/32", "172.18.0.3/32"],
        "v6": ["::/0", "fd00::2/128", "fe80::1/128"],
    }
    assert fw.source_families([], None) == {"v4": [], "v6": []}


def test_source_families_refuse_an_unresolved_name():
    with pytest.raises(fw.FirewallError, match="'ghost'"):
        fw.source_families(["ghost"], {})


def _resolver(monkeypatch, capsys, entries):
    namespace = runpy.run_path(str(RESOLVER))
    rc = namespace["main"](entries)
    out, err = capsys.readouterr()
    return rc, out, err


def test_resolver_passes_literals_and_resolves_names(monkeypatch, capsys):
    rc, out, _err = _resolver(monkeypatch, capsys, ["10.0.0.5", "192.168.1.7/16", "::1", "localhost"])
    assert rc == 0
    assert json.loads(out)["unresolved"] == []
    result = json.loads(out)["resolved"]
    assert result["10.0.0.5"] == ["10.0.0.5/32"]
    assert result["192.168.1.7/16"] == ["192.168.0.0/16"]
    assert result["::1"] == ["::1/128"]
    assert "127.0.0.1" in result["localhost"]


def test_resolver_fails_on_an_unknown_name(monkeypatch, capsys):
    def refuse(*_args, **_kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    rc, out, err = _resolver(monkeypatch, capsys, ["ghost.invalid", "--hosts", "10.0.0.5"])
    assert rc == 1
    assert out == ""
    assert "ghost.invalid" in err


def test_resolver_leaves_out_an_inventory_host_that_does_not_resolve(monkeypatch, capsys):
    # A host that is down may vanish from its DNS (Docker's does that): the others still get
    # their rules, without it, and the run says so.
    real = socket.getaddrinfo

    def lookup(name, *args, **kwargs):
        if name == "down-host":
            raise socket.gaierror(-2, "Name or service not known")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    rc, out, _err = _resolver(monkeypatch, capsys, ["10.9.0.0/16", "--hosts", "down-host", "localhost"])
    assert rc == 0
    doc = json.loads(out)
    assert doc["unresolved"] == ["down-host"]
    assert doc["resolved"]["down-host"] == [] and doc["resolved"]["10.9.0.0/16"] == ["10.9.0.0/16"]
    assert fw.source_families(["down-host", "localhost"], doc["resolved"])["v4"] == ["127.0.0.1/32"]
