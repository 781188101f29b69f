"""node_exporter from the Debian package: hardened unit, own user, metrics on the listen address."""

import pytest

SERVICE = "prometheus-node-exporter"
URL = "http://127.0.0.1:9100/metrics"


@pytest.fixture(scope="module")
def metrics(host):
    return host.check_output(f"curl -fsS --max-time 10 {URL}")


def test_unit_active_and_enabled(host):
    svc = host.service(SERVICE)
    assert svc.is_running
    assert svc.is_enabled


def test_runs_as_own_non_root_user(host):
    user = host.check_output(f"systemctl show -p User --value {SERVICE}")
    assert user == "node-exporter"
    pid = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    assert pid != "0"
    owner = host.check_output(f"ps -o user= -p {pid}")
    assert owner == "node-exporter"
    assert host.user("node-exporter").shell == "/usr/sbin/nologin"


def test_unit_is_hardened(host):
    props = host.check_output(
        f"systemctl show -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp {SERVICE}"
    ).splitlines()
    assert set(props) >= {
        "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes",
    }


def test_listens_only_on_configured_address(host):
    assert host.socket("tcp://127.0.0.1:9100").is_listening
    assert not host.socket("tcp://0.0.0.0:9100").is_listening


def test_metrics_served(metrics):
    assert "node_cpu_seconds_total" in metrics


def test_enabled_collector_present(metrics):
    assert 'node_scrape_collector_success{collector="processes"} 1' in metrics
    assert "node_processes_threads" in metrics


def test_disabled_collectors_absent(metrics):
    assert 'collector="arp"' not in metrics
    assert 'collector="entropy"' not in metrics
    assert "node_entropy_available_bits" not in metrics
