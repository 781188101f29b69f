"""The monitoring pipeline with the real services: node exporter -> Prometheus -> Alertmanager.

Runs once, on the monitoring host; the plain host is driven through its own testinfra handle.
Every wait is a bounded polling loop.
"""

import json
import os
import time

import pytest
import testinfra

testinfra_hosts = ["ansible://af-mol-mon-1"]

PROM = "https://127.0.0.1:9090"
AM = "https://127.0.0.1:9093"
# Every endpoint speaks TLS with a certificate of the scenario's CA and asks for credentials.
CA = "/etc/agentfactory/pki/ca.crt"
CREDENTIALS = {PROM: "admin:molecule-prom-pw", AM: "admin:molecule-am-pw"}
PLAIN = "af-mol-mon-2"
NODE_EXPORTER = "prometheus-node-exporter"


@pytest.fixture(scope="module")
def plain():
    return testinfra.get_host(f"ansible://{PLAIN}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def get_json(host, url):
    auth = next((f"-u {cred}" for base, cred in CREDENTIALS.items() if url.startswith(base)), "")
    out = host.run(f"curl -sf --max-time 5 --cacert {CA} {auth} '{url}'")
    assert out.rc == 0, f"GET {url} failed: {out.stderr}"
    return json.loads(out.stdout)


def wait_for(predicate, timeout, interval=1.0):
    """Poll predicate() until it returns a truthy value, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def query(host, promql):
    from urllib.parse import quote

    return get_json(host, f"{PROM}/api/v1/query?query={quote(promql)}")["data"]["result"]


def node_up(host):
    # host!="": for five minutes after the first install, the series that Debian's default
    # configuration scraped (job node, localhost:9100, no host label) are still visible.
    return {r["metric"]["host"]: r["value"][1] for r in query(host, 'up{job="node",host!=""}')}


def host_down_alerts(host):
    alerts = get_json(host, f"{AM}/api/v2/alerts?filter=alertname%3D%22HostDown%22")
    return [a for a in alerts if a["labels"].get("host") == PLAIN and a["status"]["state"] == "active"]


def webhook_notifications(host, status):
    log = host.file("/var/tmp/webhook-sink.jsonl")
    if not log.exists:
        return []
    found = []
    for line in log.content_string.splitlines():
        body = json.loads(line)
        for alert in body.get("alerts", []):
            labels = alert["labels"]
            if labels.get("alertname") == "HostDown" and labels.get("host") == PLAIN and alert["status"] == status:
                found.append(alert)
    return found


def test_every_node_exporter_target_is_up(host):
    expected = {"af-mol-mon-1": "1", PLAIN: "1"}
    got = wait_for(lambda: node_up(host) == expected and node_up(host), timeout=60)
    assert got == expected, f"node targets: {node_up(host)}"


def test_agent_replica_scraped_with_catalog_labels(host):
    def scraped():
        return [r["metric"] for r in query(host, 'up{job="agents"} == 1')]

    metrics = wait_for(scraped, timeout=30)
    assert metrics == [{
        "__name__": "up", "job": "agents", "agent": "support-bot", "host": PLAIN, "replica": "0",
        "instance": f"{PLAIN}:18080",
    }]


def test_grafana_double_serves_with_provisioned_datasource(host):
    health = get_json(host, "http://127.0.0.1:3000/api/health")
    assert health["version"].endswith("-test-double")
    ds = json.loads(host.check_output(
        "curl -sf -u admin:molecule-monitoring-password http://127.0.0.1:3000/api/datasources"))
    assert [(d["uid"], d["url"], d["basicAuth"]) for d in ds] == [
        ("agentfactory-prometheus", "https://127.0.0.1:9090", True)]


@pytest.mark.parametrize("url", [f"{PROM}/api/v1/targets", f"{AM}/api/v2/status", "https://127.0.0.1:9100/metrics"])
def test_every_endpoint_asks_for_credentials(host, url):
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 --cacert {CA} '{url}'")
    assert status == "401"
    plain = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 '{url.replace('https://', 'http://')}'")
    assert plain.stdout != "200"


def test_every_target_is_scraped_over_tls_with_credentials(host):
    targets = get_json(host, f"{PROM}/api/v1/targets")["data"]["activeTargets"]
    secured = [t for t in targets if t["labels"]["job"] in ("prometheus", "alertmanager", "node")]
    assert len(secured) == 4  # Prometheus, Alertmanager, two node exporters
    assert all(t["scrapeUrl"].startswith("https://") for t in secured)
    assert all(t["health"] == "up" for t in secured), [(t["scrapeUrl"], t["lastError"]) for t in secured]


def test_old_rules_still_serving_after_refused_broken_rule(host):
    """side_effect.yml fed a broken rule; Prometheus must still run its previous rules."""
    assert host.service("prometheus").is_running
    groups = [g["name"] for g in get_json(host, f"{PROM}/api/v1/rules")["data"]["groups"]]
    assert sorted(groups) == ["agentfactory-agents", "agentfactory-hosts", "molecule-user"]
    runtime = get_json(host, f"{PROM}/api/v1/status/runtimeinfo")["data"]
    assert runtime["reloadConfigSuccess"] is True


def test_host_down_alert_fires_and_resolves(host, plain):
    assert not host_down_alerts(host), "HostDown already active before the test"
    stopped_at = time.monotonic()
    plain.run(f"systemctl stop {NODE_EXPORTER}")
    try:
        # scrape 2s + for 5s + evaluation 2s: allow generous slack, but bounded.
        active = wait_for(lambda: host_down_alerts(host), timeout=60)
        assert active, "HostDown did not become active in Alertmanager within 60 s"
        fired_after = time.monotonic() - stopped_at
        assert active[0]["labels"]["severity"] == "critical"
        assert wait_for(lambda: webhook_notifications(host, "firing"), timeout=30), \
            "the webhook receiver got no firing HostDown notification"
        # The alert honours for: 5s; it cannot have fired before the host was down that long.
        assert fired_after >= 5, f"HostDown fired after {fired_after:.1f}s, before its for: 5s"
    finally:
        plain.run(f"systemctl start {NODE_EXPORTER}")

    assert wait_for(lambda: not host_down_alerts(host), timeout=60), \
        "HostDown still active in Alertmanager 60 s after node exporter was started again"
    assert wait_for(lambda: webhook_notifications(host, "resolved"), timeout=30), \
        "the webhook receiver got no resolved HostDown notification"
    assert wait_for(lambda: node_up(host).get(PLAIN) == "1", timeout=30)
