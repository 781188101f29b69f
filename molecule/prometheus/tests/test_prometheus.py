"""Prometheus from Debian's package, configured by the prometheus role."""

import json
import time

PROM = "https://127.0.0.1:9090"


def api(host, path):
    auth = "--cacert /etc/agentfactory/pki/ca.crt -u admin:molecule-prom-pw"
    out = host.check_output(f"curl -sf --max-time 5 {auth} {PROM}{path}")
    return json.loads(out)


def wait_for(predicate, timeout=40, interval=1):
    """Poll predicate() until it returns a truthy value, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_service_running_and_listening(host):
    service = host.service("prometheus")
    assert service.is_running
    assert service.is_enabled
    assert host.socket("tcp://0.0.0.0:9090").is_listening


def test_installed_from_the_tarball(host):
    assert not host.package("prometheus").is_installed
    for binary in ("prometheus", "promtool"):
        f = host.file(f"/usr/local/bin/{binary}")
        assert f.exists and f.mode == 0o755 and f.user == "root"
    unit = host.file("/etc/systemd/system/prometheus.service")
    assert unit.contains("^ExecStart=/usr/local/bin/prometheus \\$ARGS$")
    assert host.user("prometheus").exists
    assert host.file("/var/lib/prometheus/metrics2").user == "prometheus"
    assert host.check_output("systemctl show -p User --value prometheus") == "prometheus"


def test_flags_from_variables(host):
    args = host.file("/etc/default/prometheus").content_string
    assert "--storage.tsdb.retention.time=2d" in args
    assert "--web.listen-address=0.0.0.0:9090" in args
    assert "--web.enable-lifecycle" not in args
    cmdline = host.check_output("cat /proc/$(systemctl show -p MainPID --value prometheus)/cmdline | tr '\\0' ' '")
    assert "--storage.tsdb.retention.time=2d" in cmdline


def test_live_config_checks_with_promtool(host):
    out = host.run("/usr/local/bin/promtool check config /etc/prometheus/prometheus.yml")
    assert out.rc == 0, out.stderr
    assert "3 rule files found" in out.stdout
    assert host.file("/etc/prometheus/prometheus.yml").contains("fleet: molecule")


def test_empty_and_generated_target_files(host):
    agents = json.loads(host.file("/etc/prometheus/file_sd/agents.json").content_string)
    assert [g["targets"] for g in agents] == [["af-mol-prom-1:18080"], ["af-mol-prom-1:18081"]]
    assert agents[1]["labels"] == {
        "agent": "support-bot", "host": "af-mol-prom-1", "replica": "1", "__metrics_path__": "/metrics",
    }
    nodes = json.loads(host.file("/etc/prometheus/file_sd/nodes.json").content_string)
    assert nodes == [{"targets": ["af-mol-prom-1:9100"], "labels": {"host": "af-mol-prom-1"}}]


def test_scrape_jobs_discovered(host):
    def jobs():
        data = api(host, "/api/v1/targets")["data"]["activeTargets"]
        return {(t["labels"]["job"], t["scrapeUrl"]) for t in data}

    found = wait_for(lambda: len(jobs()) >= 5 and jobs())
    assert ("prometheus", "https://127.0.0.1:9090/metrics") in found
    assert ("alertmanager", "https://127.0.0.1:9093/metrics") in found
    assert ("node", "https://af-mol-prom-1:9100/metrics") in found
    assert ("agents", "http://af-mol-prom-1:18080/metrics") in found
    assert ("agents", "http://af-mol-prom-1:18081/metrics") in found
    self_up = wait_for(lambda: [
        t for t in api(host, "/api/v1/targets")["data"]["activeTargets"]
        if t["labels"]["job"] == "prometheus" and t["health"] == "up"
    ])
    assert self_up


def test_rules_loaded(host):
    groups = {g["name"]: g for g in api(host, "/api/v1/rules")["data"]["groups"]}
    assert set(groups) == {"agentfactory-hosts", "agentfactory-agents", "molecule-user"}
    alerts = {r["name"] for g in groups.values() for r in g["rules"]}
    assert {"HostDown", "HostHighCpu", "HostHighMemory", "HostDiskFull", "AgentDown", "AgentRestarting",
            "AgentUnhealthy", "AgentHighMemory", "AgentHighCpu", "MoleculeAlwaysFiring"} <= alerts
    memory = [r["query"] for r in groups["agentfactory-agents"]["rules"] if r["name"] == "AgentHighMemory"]
    assert len(memory) == 2
    # 90% of support-bot's 512m; the default threshold for every agent without a memory limit.
    rules = host.file("/etc/prometheus/rules/agentfactory-agents.yml")
    assert rules.contains('process_resident_memory_bytes{job="agents",agent="support-bot"} > 483183820')
    assert rules.contains('process_resident_memory_bytes{job="agents",agent!~"support-bot"} > 1073741824')


def test_user_alert_fires(host):
    def firing():
        alerts = api(host, "/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "MoleculeAlwaysFiring" and a["state"] == "firing"]

    assert wait_for(firing, timeout=30)


def test_scrapes_itself_over_tls_with_credentials(host):
    def own_target():
        targets = api(host, "/api/v1/targets")["data"]["activeTargets"]
        return next((t for t in targets if t["labels"]["job"] == "prometheus" and t["health"] == "up"), None)
    assert wait_for(own_target), "Prometheus did not scrape itself over TLS with its credentials"


def test_scrape_passwords_stay_out_of_the_config(host):
    config = host.file("/etc/prometheus/prometheus.yml").content_string
    assert "molecule-prom-pw" not in config
    assert "password_file: /etc/prometheus/secrets/prometheus" in config
    secret = host.file("/etc/prometheus/secrets/prometheus")
    assert secret.mode == 0o640 and secret.group == "prometheus"
