"""The grafana role against grafana-test-double, a STAND-IN for Grafana (not Grafana).

What these checks prove and what they do not: see roles/grafana/README.md, "Testing".
"""

import json

import pytest

GRAFANA = "http://127.0.0.1:3000"
PASSWORD = "molecule-second-password"  # set by side_effect.yml after converge used the first one


def get(host, path, auth=("admin", PASSWORD)):
    user = f"-u '{auth[0]}:{auth[1]}'" if auth else ""
    out = host.run(f"curl -s --max-time 5 -o /dev/stdout -w '\\n%{{http_code}}' {user} {GRAFANA}{path}")
    body, _, status = out.stdout.rpartition("\n")
    return int(status), (json.loads(body) if body.strip() else None)


def test_this_is_the_test_double(host):
    assert host.package("grafana-test-double").is_installed
    status, health = get(host, "/api/health", auth=None)
    assert status == 200
    assert health["database"] == "ok"
    assert health["version"].endswith("-test-double")


def test_service_running(host):
    service = host.service("grafana-server")
    assert service.is_running
    assert service.is_enabled


def test_grafana_ini_from_variables_and_private(host):
    ini = host.file("/etc/grafana/grafana.ini")
    assert ini.mode == 0o640
    assert ini.group == "grafana"
    assert ini.contains("^default_theme = dark$")
    assert ini.contains("^allow_sign_up = false$")


@pytest.mark.parametrize(
    ("password", "expected"),
    [(PASSWORD, 200), ("molecule-first-password", 401), ("admin", 401)],
)
def test_admin_password_changed_by_the_role(host, password, expected):
    status, _ = get(host, "/api/user", auth=("admin", password))
    assert status == expected


def test_datasource_provisioned(host):
    status, datasources = get(host, "/api/datasources")
    assert status == 200
    assert [(d["name"], d["uid"], d["type"], d["url"], d["isDefault"]) for d in datasources] == [
        ("Prometheus", "agentfactory-prometheus", "prometheus", "http://127.0.0.1:9090", True)
    ]


def test_fleet_dashboard_provisioned(host):
    status, found = get(host, "/api/search")
    assert status == 200
    assert [(d["uid"], d["folderTitle"]) for d in found] == [("agentfactory-fleet", "agentfactory")]
    status, dash = get(host, "/api/dashboards/uid/agentfactory-fleet")
    assert status == 200
    assert dash["meta"]["provisioned"]
    uids = {p["datasource"]["uid"] for p in dash["dashboard"]["panels"] if p.get("datasource")}
    assert uids == {"agentfactory-prometheus"}
