"""The inventory `lab up` writes: two gateway hosts sharing a floating address on the lab network."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from agentfactory_cli.errors import LabError
from agentfactory_cli.lab import Lab, LabHost


def _fake_docker(subnets: str):
    def docker(*args, **kwargs):
        out = subnets if "{{range .IPAM.Config}}{{.Subnet}} {{end}}" in args else "172.20.0.1 "
        return type("R", (), {"returncode": 0, "stdout": out})()
    return docker


def _inventory(tmp_path, monkeypatch, count: int, subnets: str = "172.20.0.0/16 ") -> dict:
    monkeypatch.setenv("AGENTFACTORY_HOME", str(tmp_path))
    monkeypatch.setattr("agentfactory_cli.lab.docker", _fake_docker(subnets))
    lab = Lab()
    hosts = [LabHost(name=lab.host_name(i), index=i, state="running", ports={22: 2200 + i})
             for i in range(1, count + 1)]
    lab._write_inventory(hosts)
    return yaml.safe_load(lab.inventory_path.read_text())["all"]


def test_two_gateways_share_an_address_high_in_the_lab_network(tmp_path, monkeypatch):
    inventory = _inventory(tmp_path, monkeypatch, 3)
    assert list(inventory["children"]["gateway"]["hosts"]) == ["af-lab-1", "af-lab-2"]
    assert list(inventory["children"]["agent_hosts"]["hosts"]) == ["af-lab-1", "af-lab-2", "af-lab-3"]
    vip = inventory["vars"]["gateway_virtual_address"]
    assert vip == "172.20.255.253/16"
    assert ipaddress.ip_interface(vip).network == ipaddress.ip_network("172.20.0.0/16")


def test_a_single_host_lab_has_one_gateway_and_no_floating_address(tmp_path, monkeypatch):
    inventory = _inventory(tmp_path, monkeypatch, 1)
    assert list(inventory["children"]["gateway"]["hosts"]) == ["af-lab-1"]
    assert "gateway_virtual_address" not in inventory["vars"]


def test_the_ipv4_subnet_is_taken_beside_an_ipv6_one(tmp_path, monkeypatch):
    inventory = _inventory(tmp_path, monkeypatch, 2, subnets="fd00:1::/64 10.9.8.0/24 ")
    assert inventory["vars"]["gateway_virtual_address"] == "10.9.8.253/24"


def test_a_network_without_ipv4_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(LabError, match="no IPv4 subnet"):
        _inventory(tmp_path, monkeypatch, 2, subnets="fd00:1::/64 ")
