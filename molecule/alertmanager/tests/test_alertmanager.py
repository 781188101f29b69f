"""Alertmanager from Debian's package, configured by the alertmanager role."""

import json
import time

AM = "https://127.0.0.1:9093"
# TLS with the scenario CA, basic auth.
CURL = "curl -sf --max-time 5 --cacert /etc/agentfactory/pki/ca.crt -u admin:molecule-am-pw"


def wait_for(predicate, timeout=30, interval=1):
    """Poll predicate() until it returns a truthy value, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_service_running(host):
    service = host.service("prometheus-alertmanager")
    assert service.is_running
    assert service.is_enabled
    assert host.socket("tcp://0.0.0.0:9093").is_listening
    # Clustering is off unless asked for.
    assert not host.socket("tcp://0.0.0.0:9094").is_listening


def test_installed_from_the_tarball(host):
    assert not host.package("prometheus-alertmanager").is_installed
    for binary in ("alertmanager", "amtool"):
        assert host.file(f"/usr/local/bin/{binary}").mode == 0o755
    assert host.file("/etc/systemd/system/prometheus-alertmanager.service").contains(
        "^ExecStart=/usr/local/bin/alertmanager \\$ARGS$")
    assert host.check_output("systemctl show -p User --value prometheus-alertmanager") == "prometheus"


def test_config_checked_and_private(host):
    config = host.file("/etc/prometheus/alertmanager.yml")
    assert config.mode == 0o640
    assert config.user == "root"
    assert config.group == "prometheus"
    assert host.run("/usr/local/bin/amtool check-config /etc/prometheus/alertmanager.yml").rc == 0


def test_loaded_routes_and_receivers(host):
    status = json.loads(host.check_output(f"{CURL} {AM}/api/v2/status"))
    original = status["config"]["original"]
    assert "ops-webhook" in original
    assert "ops-mail" in original
    assert "smtp_smarthost: 127.0.0.1:25" in original
    receivers = json.loads(host.check_output(f"{CURL} {AM}/api/v2/receivers"))
    assert {r["name"] for r in receivers} == {"default", "ops-webhook", "ops-mail"}


def test_alert_reaches_webhook(host):
    alert = json.dumps([{
        "labels": {"alertname": "MoleculeProbe", "severity": "warning", "host": "af-mol-am-1"},
        "annotations": {"summary": "posted by the molecule verify step"},
    }])
    host.check_output(
        f"{CURL} -XPOST -H 'Content-Type: application/json' -d '{alert}' {AM}/api/v2/alerts"
    )

    def delivered():
        log = host.file("/var/tmp/webhook-sink.jsonl")
        if not log.exists:
            return None
        for line in log.content_string.splitlines():
            body = json.loads(line)
            if any(a["labels"].get("alertname") == "MoleculeProbe" for a in body.get("alerts", [])):
                return body
        return None

    body = wait_for(delivered)
    assert body, "the webhook receiver got no notification for the posted alert"
    assert body["receiver"] == "ops-webhook"
    assert body["_path"] == "/alerts"


def test_api_asks_for_credentials(host):
    ca = "/etc/agentfactory/pki/ca.crt"
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -m 5 --cacert {ca} {AM}/api/v2/status")
    assert status == "401"
    assert host.run("curl -sf --max-time 5 -u admin:molecule-am-pw http://127.0.0.1:9093/api/v2/status").rc != 0
