"""Docker from Debian's docker.io: daemon up, daemon.json in effect, a container runs inside."""

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

HOST = "af-mol-docker"
IMAGE = "agentfactory/molecule-busybox:test"
# Static busybox from Debian's busybox-static package on the controller (make deps installs it).
BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="module")
def info(host):
    return json.loads(host.check_output("docker info --format '{{json .}}'"))


@pytest.fixture(scope="module")
def busybox_image(host):
    """Build a one-binary image on the controller and hand it to the host's Docker."""
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} missing on the controller: apt-get install busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "echo", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    subprocess.run(
        ["docker", "import", "-c", 'ENTRYPOINT ["/bin/busybox"]', "-", IMAGE],
        input=buf.getvalue(), check=True, capture_output=True,
    )
    save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
    load = subprocess.run(
        ["docker", "exec", "-i", HOST, "docker", "load"], stdin=save.stdout, capture_output=True, text=True,
    )
    save.stdout.close()
    assert save.wait() == 0 and load.returncode == 0, load.stderr
    yield IMAGE
    subprocess.run(["docker", "image", "rm", IMAGE], capture_output=True)


def test_service_enabled_and_running(host):
    svc = host.service("docker")
    assert svc.is_running
    assert svc.is_enabled


def test_docker_answers(info):
    assert info["ServerVersion"]
    assert info["Driver"] == "overlay2"


def test_container_runs_inside_host(host, busybox_image):
    out = host.check_output(f"docker run --rm {busybox_image} echo hello-from-inner-docker")
    assert out == "hello-from-inner-docker"


def test_daemon_json_rendered(host):
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon == {
        "log-driver": "local",
        "log-opts": {"max-size": "20m", "max-file": "5"},
        "live-restore": True,
        "registry-mirrors": ["http://127.0.0.1:5001"],
        "insecure-registries": ["registry.lab:5000"],
    }
    assert host.file("/etc/docker/daemon.json").mode == 0o644


def test_daemon_json_in_effect(info):
    assert info["LoggingDriver"] == "local"
    assert info["LiveRestoreEnabled"] is True
    assert "http://127.0.0.1:5001/" in info["RegistryConfig"]["Mirrors"]
    assert "registry.lab:5000" in info["RegistryConfig"]["IndexConfigs"]
    assert info["RegistryConfig"]["IndexConfigs"]["registry.lab:5000"]["Secure"] is False


def test_python_sdk_for_community_docker(host):
    assert host.run("python3 -c 'import docker'").rc == 0


def test_user_in_docker_group(host):
    assert "docker" in host.user("deploy").groups
