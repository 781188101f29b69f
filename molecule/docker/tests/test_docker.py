"""Docker from Debian's docker.io: daemon up, daemon.json in effect, a container runs inside, the
on-prem registry (here on the same host) trusted by its CA and pulled from and pushed to with the login."""

import base64
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


REGISTRY = f"{HOST}:5000"
CA = "/etc/agentfactory/pki/ca.crt"


def test_registry_group_trusted_by_its_ca_not_as_insecure(host, info):
    assert host.file(f"/etc/docker/certs.d/{REGISTRY}/ca.crt").content_string == host.file(CA).content_string
    assert host.file(f"/etc/docker/certs.d/{REGISTRY}/ca.crt").mode == 0o644
    configs = info["RegistryConfig"]["IndexConfigs"]
    assert REGISTRY not in configs or configs[REGISTRY]["Secure"] is True
    assert info["RegistryConfig"]["InsecureRegistryCIDRs"] == ["127.0.0.0/8"]


def test_logged_in_with_the_pull_account(host):
    config = json.loads(host.file("/root/.docker/config.json").content_string)
    user, _, password = base64.b64decode(config["auths"][REGISTRY]["auth"]).decode().partition(":")
    assert (user, password) == ("pull", "molecule-pull-secret")
    assert host.file("/root/.docker/config.json").mode == 0o600


def test_push_and_pull_through_the_registry_with_the_login(host, busybox_image):
    target = f"{REGISTRY}/molecule/busybox:test"
    host.check_output(f"docker tag {busybox_image} {target}")
    push = host.run(f"docker push {target}")
    assert push.rc == 0, push.stdout + push.stderr
    host.check_output(f"docker image rm {target}")
    pull = host.run(f"docker pull {target}")
    assert pull.rc == 0, pull.stdout + pull.stderr
    assert host.check_output(f"docker run --rm {target} echo pulled-over-tls") == "pulled-over-tls"


def test_registry_refuses_docker_without_the_login(host, busybox_image):
    host.check_output("mkdir -p /tmp/af-nologin && echo '{}' > /tmp/af-nologin/config.json")
    target = f"{REGISTRY}/molecule/anonymous:test"
    host.check_output(f"docker tag {busybox_image} {target}")
    push = host.run(f"docker --config /tmp/af-nologin push {target}")
    assert push.rc != 0
    assert "no basic auth credentials" in push.stdout + push.stderr
    pull = host.run(f"docker --config /tmp/af-nologin pull {REGISTRY}/molecule/busybox:test")
    assert pull.rc != 0
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA} https://{REGISTRY}/v2/")
    assert status == "401"


def test_registry_serves_tls_with_a_certificate_of_the_ca(host):
    out = host.run(f"openssl s_client -connect {REGISTRY} -servername {HOST} -CAfile {CA} "
                   "-verify_return_error </dev/null")
    assert out.rc == 0, out.stdout + out.stderr
    assert "issuer=CN = agentfactory fleet CA" in out.stdout
    status = host.check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA} -u pull:molecule-pull-secret https://{REGISTRY}/v2/")
    assert status == "200"
