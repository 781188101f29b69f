"""docker_install_source=upstream in check mode on a fresh host: the run succeeds, shows the
repository source it would write, and changes nothing. (No real install: Docker's repository is
out of reach here.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def check_run():
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--check", "--diff",
         "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "converge.yml")],
        capture_output=True, text=True, env=os.environ, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_renders_the_repository_source(check_run):
    for line in ("Types: deb", "URIs: file:///srv/mirror/docker", "Suites: bookworm",
                 "Components: stable", "Architectures: amd64",
                 "Signed-By: /etc/apt/keyrings/docker.asc"):
        assert f"+{line}" in check_run


def test_renders_daemon_json(check_run):
    assert '"live-restore": true' in check_run
    assert '"log-driver": "json-file"' in check_run


def test_check_mode_changed_nothing(host, check_run):
    for path in ("/etc/apt/sources.list.d/docker.sources", "/etc/apt/keyrings/docker.asc",
                 "/etc/docker/daemon.json", "/usr/sbin/dockerd", "/usr/bin/dockerd"):
        assert not host.file(path).exists, path
