"""node_exporter from the Debian package: hardened unit, own user, metrics over TLS with basic
auth on the listen address."""

import pytest

SERVICE = "prometheus-node-exporter"
URL = "https://127.0.0.1:9100/metrics"
CA = "/etc/agentfactory/pki/ca.crt"
AUTH = "prometheus:molecule-scrape-pw"


def _status(host, *args):
    """HTTP status of a request to the exporter (000 when no HTTP answer came)."""
    return host.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {' '.join(args)}").stdout


@pytest.fixture(scope="module")
def metrics(host):
    return host.check_output(f"curl -fsS --max-time 10 --cacert {CA} -u {AUTH} {URL}")


def test_metrics_need_credentials(host):
    assert _status(host, "--cacert", CA, URL) == "401"
    assert _status(host, "--cacert", CA, "-u prometheus:wrong", URL) == "401"
    assert _status(host, "--cacert", CA, "-u", AUTH, URL) == "200"


def test_serves_tls_with_a_certificate_of_the_ca(host):
    # Plain HTTP gets no metrics, and the certificate verifies against the fleet CA only.
    assert _status(host, "http://127.0.0.1:9100/metrics") != "200"
    # The pki role put the CA in the system trust store: curl verifies without --cacert.
    assert host.run(f"curl -fsS -o /dev/null --max-time 10 -u {AUTH} {URL}").rc == 0
    issuer = host.check_output("openssl s_client -connect 127.0.0.1:9100 -showcerts </dev/null 2>/dev/null"
                               " | openssl x509 -noout -issuer")
    assert "agentfactory fleet CA" in issuer


def test_web_config_holds_only_a_hash(host):
    web = host.file("/etc/agentfactory/web/node_exporter/web.yml")
    assert web.mode == 0o640
    assert web.group == "node-exporter"
    assert "molecule-scrape-pw" not in web.content_string
    assert "$2b$10$" in web.content_string
    assert host.file("/etc/agentfactory/web/node_exporter/tls.key").mode == 0o640


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
