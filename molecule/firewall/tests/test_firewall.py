"""The firewall on the host under test (af-mol-fw-1: agent host and gateway), seen from an
allowed host (af-mol-fw-2, monitoring) and from one in no fleet group (af-mol-fw-3).

Blocked connections are dropped, not refused: a connect times out (3 s)."""

import os

import pytest
import testinfra

testinfra_hosts = ["ansible://af-mol-fw-1"]

TARGET = "af-mol-fw-1"
CONNECT = (
    "python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)'"
)


def _host(name):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def monitoring():
    return _host("af-mol-fw-2")


@pytest.fixture(scope="module")
def outsider():
    return _host("af-mol-fw-3")


@pytest.fixture(scope="module")
def table(host):
    return host.check_output("nft list table inet agentfactory")


def reaches(client, port):
    return client.run(f"{CONNECT} {TARGET} {port}").rc == 0


@pytest.mark.parametrize("port", [9100, 18080, 8405])
def test_monitoring_host_reaches_its_ports(monitoring, port):
    assert reaches(monitoring, port)


@pytest.mark.parametrize("port", [9100, 18080, 8405])
def test_outsider_is_dropped(outsider, port):
    result = outsider.run(f"{CONNECT} {TARGET} {port}")
    assert result.rc != 0
    assert "timed out" in result.stderr


def test_outsider_still_has_ssh_and_the_gateway_frontend(outsider):
    assert reaches(outsider, 22)
    assert reaches(outsider, 28080)


def test_unit_enabled_before_docker(host):
    svc = host.service("agentfactory-firewall")
    assert svc.is_enabled
    assert host.check_output("systemctl is-active agentfactory-firewall") == "active"
    assert "docker.service" in host.check_output("systemctl show -p Before --value agentfactory-firewall")


def test_rules_file_is_ours_alone(host):
    rules = host.file("/etc/agentfactory/firewall.nft")
    assert rules.mode == 0o600
    commands = [line.strip() for line in rules.content_string.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if line.startswith("flush")]
    assert commands[:2] == ["table inet agentfactory {}", "delete table inet agentfactory"]
    # Debian's file (which flushes everything) is not used, and its unit stays off.
    assert not host.service("nftables").is_enabled


def test_agent_ports_are_this_hosts_replicas(table):
    ports = table.split("set agent_ports {", 1)[1].split("}", 1)[0]
    assert "18080, 18081, 18090" in ports
    assert "18500" not in ports


def test_forward_chain_guards_published_agent_ports(table):
    forward = table.split("chain forward {", 1)[1]
    assert "type filter hook forward priority filter - 1; policy accept;" in forward
    guard = "ct status dnat meta l4proto tcp ct original proto-dst @agent_ports"
    assert f"{guard} ip saddr != @agent_callers_v4 drop" in forward
    assert f"{guard} ip6 saddr != @agent_callers_v6 drop" in forward
    assert "ip6 saddr != @agent_callers_v6 drop" in forward


def in_set(host, name, address):
    """Whether the set (auto-merged: neighbours become one range) holds the address."""
    return host.run(f"nft get element inet agentfactory {name} '{{ {address} }}'").rc == 0


def test_sources_are_the_right_hosts(host, monitoring, outsider, table):
    fw2 = monitoring.interface("eth0", "inet").addresses[0]
    fw3 = outsider.interface("eth0", "inet").addresses[0]
    for name in ("agent_callers_v4", "monitoring_v4", "monitoring_operators_v4"):
        assert in_set(host, name, fw2), name
        assert not in_set(host, name, fw3), name
    assert in_set(host, "monitoring_operators_v4", "198.51.100.77")
    assert not in_set(host, "monitoring_v4", "198.51.100.77")
    assert 'tcp dport 28080 ip saddr @clients_v4 accept comment "gateway frontends"' in table
    assert 'tcp dport 7777 ip saddr 203.0.113.7 accept comment "extra"' in table
    # A gateway host without gateway_virtual_address: no VRRP rule (molecule/keepalived has one).
    assert "ip protocol vrrp" not in table


def test_outsider_host_gets_only_the_common_rules(outsider):
    rules = outsider.check_output("nft list table inet agentfactory")
    assert 'comment "node_exporter"' in rules
    for absent in ("gateway frontends", '"registry"', "Prometheus", 'accept comment "agent host ports"',
                   "ip protocol vrrp"):
        assert absent not in rules


def test_monitoring_host_opens_its_services_to_operators(monitoring):
    rules = monitoring.check_output("nft list table inet agentfactory")
    assert "tcp dport { 3000, 9090, 9093 } ip saddr @monitoring_operators_v4 accept" in rules
    assert "18500" in rules


def test_other_tables_stay(host):
    assert "table ip molecule_other" in host.check_output("nft list tables")


def test_table_survives_a_restart_of_the_unit(host, outsider):
    host.check_output("systemctl restart agentfactory-firewall")
    assert "chain input" in host.check_output("nft list table inet agentfactory")
    assert host.check_output("nft list tables").count("table inet agentfactory") == 1
    assert "table ip molecule_other" in host.check_output("nft list tables")
    assert not reaches(outsider, 9100)
