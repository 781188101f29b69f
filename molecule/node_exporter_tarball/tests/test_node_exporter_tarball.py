"""node_exporter from a release tarball: same unit name and user as the distro install,
binary verified against its sha256, and a wrong sha256 fails before anything changes."""

import os
import subprocess
import sys
from pathlib import Path

SERVICE = "prometheus-node-exporter"
BINARY = "/usr/local/bin/node_exporter"
URL = "http://127.0.0.1:9100/metrics"
SCENARIO = Path(__file__).resolve().parent.parent


def test_no_distro_package(host):
    assert not host.package("prometheus-node-exporter").is_installed


def test_unit_from_tarball_under_debian_name(host):
    svc = host.service(SERVICE)
    assert svc.is_running
    assert svc.is_enabled
    unit = host.file(f"/etc/systemd/system/{SERVICE}.service").content_string
    assert f"ExecStart={BINARY} $ARGS" in unit
    assert host.file(BINARY).mode == 0o755


def test_runs_as_own_user_hardened(host):
    pid = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    assert host.check_output(f"ps -o user= -p {pid}") == "node-exporter"
    props = host.check_output(f"systemctl show -p NoNewPrivileges -p ProtectSystem {SERVICE}")
    assert set(props.splitlines()) == {"NoNewPrivileges=yes", "ProtectSystem=strict"}


def test_metrics_served(host):
    metrics = host.check_output(f"curl -fsS --max-time 10 {URL}")
    assert "node_cpu_seconds_total" in metrics
    assert 'collector="arp"' not in metrics


def test_wrong_sha256_fails_clearly_and_changes_nothing(host):
    before = host.file(BINARY).sha256sum
    pid_before = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"),
         "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "converge.yml"),
         "-e", "node_exporter_tarball_sha256=" + "0" * 64],
        capture_output=True, text=True, env=os.environ, timeout=300,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Download the release tarball of node_exporter" in out
    assert "did not match" in out, out
    assert host.file(BINARY).sha256sum == before
    assert host.check_output(f"systemctl show -p MainPID --value {SERVICE}") == pid_before
