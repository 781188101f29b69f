"""The on-prem registry: Debian's docker-registry on af-mol-reg-1, the reference agent image pushed
into it over Ansible's connection, and af-mol-reg-2 pulling it by the registry host's name (the
docker role's trust of the `registry` group)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

testinfra_hosts = ["ansible://af-mol-reg-1"]

SCENARIO = Path(__file__).resolve().parent.parent
SERVICE = "docker-registry"
REGISTRY = "http://127.0.0.1:5000"
CONFIG = "/etc/docker/registry/config.yml"
REMOTE_IMAGE = "af-mol-reg-1:5000/agents/reference:1.0.0"


@pytest.fixture(scope="module")
def other():
    return testinfra.get_host("ansible://af-mol-reg-2", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def get_json(host, url):
    out = host.run(f"curl -sf --max-time 5 '{url}'")
    assert out.rc == 0, f"GET {url} failed: {out.stderr}"
    return json.loads(out.stdout)


def test_registry_active_and_enabled(host):
    svc = host.service(SERVICE)
    assert svc.is_running
    assert svc.is_enabled


def test_runs_as_own_user_hardened(host):
    pid = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    assert pid != "0"
    assert host.check_output(f"ps -o user= -p {pid}") == "docker-registry"
    props = host.check_output(f"systemctl show -p NoNewPrivileges -p ProtectSystem -p ReadWritePaths {SERVICE}")
    assert set(props.splitlines()) == {
        "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/docker-registry",
    }


def test_config_rendered(host):
    config = yaml.safe_load(host.file(CONFIG).content_string)
    assert config["version"] == "0.1"
    assert config["http"]["addr"] == ":5000"
    assert config["storage"]["filesystem"] == {"rootdirectory": "/var/lib/docker-registry"}
    assert config["storage"]["delete"] == {"enabled": True}
    assert "auth" not in config


def test_catalog_lists_the_pushed_repository(host):
    assert "agents/reference" in get_json(host, f"{REGISTRY}/v2/_catalog")["repositories"]
    assert get_json(host, f"{REGISTRY}/v2/agents/reference/tags/list")["tags"] == ["1.0.0"]
    repo = "/var/lib/docker-registry/docker/registry/v2/repositories/agents/reference"
    assert host.file(repo).is_directory


def test_both_hosts_trust_the_registry_group(host, other):
    for h in (host, other):
        daemon = json.loads(h.file("/etc/docker/daemon.json").content_string)
        assert daemon["insecure-registries"] == ["af-mol-reg-1:5000"]
        info = json.loads(h.check_output("docker info --format '{{json .RegistryConfig}}'"))
        assert info["IndexConfigs"]["af-mol-reg-1:5000"]["Secure"] is False


def test_other_host_pulls_by_name_and_runs(other):
    assert other.run(f"docker image rm {REMOTE_IMAGE}").rc in (0, 1)  # start clean
    pull = other.run(f"docker pull {REMOTE_IMAGE}")
    assert pull.rc == 0, pull.stdout + pull.stderr
    run = other.run(f"docker run --rm {REMOTE_IMAGE} python3 -c 'print(1)'")
    assert run.rc == 0, run.stderr
    assert run.stdout.strip() == "1"


def test_broken_config_refused_before_it_lands(host):
    """A second storage driver passes the role's preflight but not the config validator."""
    before = host.file(CONFIG).sha256sum
    pid_before = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"),
         "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "converge.yml"),
         "--limit", "af-mol-reg-1", "--tags", "registry",
         "-e", json.dumps({"registry_config_extra": {"storage": {"inmemory": {}}}})],
        capture_output=True, text=True, env=os.environ, timeout=300,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Write the registry configuration" in out
    assert "storage needs exactly one driver, found: filesystem, inmemory" in out, out
    assert host.file(CONFIG).sha256sum == before
    assert host.check_output(f"systemctl show -p MainPID --value {SERVICE}") == pid_before
    assert get_json(host, f"{REGISTRY}/v2/_catalog")["repositories"] == ["agents/reference"]
