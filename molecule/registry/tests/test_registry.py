"""The on-prem registry: Debian's docker-registry on af-mol-reg-1 serving TLS with its host
certificate (the scenario's CA) and asking for credentials, the reference agent image pushed into
it over Ansible's connection with the push account, and af-mol-reg-2 pulling it by the registry
host's name (the docker role trusts the CA and logs Docker in with the pull account)."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

testinfra_hosts = ["ansible://af-mol-reg-1"]

SCENARIO = Path(__file__).resolve().parent.parent
SERVICE = "docker-registry"
REGISTRY = "https://127.0.0.1:5000"
CA = "/etc/agentfactory/pki/ca.crt"
CA_NAME = "agentfactory fleet CA"
CONFIG = "/etc/docker/registry/config.yml"
HTPASSWD = "/etc/agentfactory/registry/htpasswd"
NAME = "af-mol-reg-1:5000"
REMOTE_IMAGE = f"{NAME}/agents/reference:1.0.0"
PUSH = ("push", "molecule-push-secret")
PULL = ("pull", "molecule-pull-secret")


@pytest.fixture(scope="module")
def other():
    return testinfra.get_host("ansible://af-mol-reg-2", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def curl(host, url, *args, user=None):
    """(status, body) of a request checked against the scenario's CA."""
    auth = ["-u", f"{user[0]}:{user[1]}"] if user else []
    cmd = ["curl", "-s", "--max-time", "5", "--cacert", CA, "-o", "/tmp/af-body", "-w", "%{http_code}",
           *auth, *args, url]
    out = host.run(shlex.join(cmd) + "; echo; cat /tmp/af-body")
    assert out.rc == 0, f"{url}: {out.stderr}"
    status, _, body = out.stdout.partition("\n")
    return int(status), body


def get_json(host, url, user=PULL):
    status, body = curl(host, url, user=user)
    assert status == 200, f"GET {url}: {status} {body}"
    return json.loads(body)


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
    assert config["http"]["tls"] == {"certificate": "/etc/agentfactory/registry/tls.crt",
                                     "key": "/etc/agentfactory/registry/tls.key", "minimumtls": "tls1.2"}
    assert config["auth"] == {"htpasswd": {"realm": "agentfactory-registry", "path": HTPASSWD}}
    assert config["storage"]["filesystem"] == {"rootdirectory": "/var/lib/docker-registry"}
    assert config["storage"]["delete"] == {"enabled": True}


def test_secrets_readable_by_the_registry_only(host):
    for path, mode in ((HTPASSWD, 0o640), ("/etc/agentfactory/registry/tls.key", 0o640),
                       ("/etc/agentfactory/registry/tls.crt", 0o644)):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "docker-registry", mode), path
    assert host.file("/etc/agentfactory/registry").mode == 0o750
    lines = host.file(HTPASSWD).content_string.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["push", "pull"]
    assert all(line.split(":", 1)[1].startswith("$2b$10$") for line in lines)
    assert "molecule-p" not in host.file(HTPASSWD).content_string


def test_tls_with_a_certificate_of_the_ca(host, other):
    for h, address in ((host, "127.0.0.1:5000"), (other, NAME)):
        out = h.run(f"openssl s_client -connect {address} -servername {address.split(':')[0]} "
                    f"-CAfile {CA} -verify_return_error </dev/null")
        assert out.rc == 0, out.stdout + out.stderr
        assert f"issuer=CN = {CA_NAME}" in out.stdout
        assert "Verify return code: 0 (ok)" in out.stdout
    # TLS 1.2 at least (http.tls.minimumtls); plain HTTP is not served.
    # (the client side allows TLS 1.1 for this probe: OpenSSL 3 refuses it at its default level)
    old = host.run("openssl s_client -connect 127.0.0.1:5000 -tls1_1 -cipher DEFAULT@SECLEVEL=0 </dev/null")
    assert old.rc != 0 and "Cipher is (NONE)" in old.stdout + old.stderr, old.stdout + old.stderr
    assert host.run("curl -sf --max-time 5 http://127.0.0.1:5000/v2/").rc != 0


def test_anonymous_requests_refused(host, other):
    for h, base in ((host, REGISTRY), (other, f"https://{NAME}")):
        assert curl(h, f"{base}/v2/")[0] == 401
        assert curl(h, f"{base}/v2/agents/reference/tags/list")[0] == 401
        # The first step of a push: start a blob upload.
        assert curl(h, f"{base}/v2/molecule/anonymous/blobs/uploads/", "-X", "POST")[0] == 401
    assert curl(host, f"{REGISTRY}/v2/", user=("pull", "wrong"))[0] == 401


def test_credentials_accepted(host, other):
    assert curl(host, f"{REGISTRY}/v2/", user=PUSH)[0] == 200
    assert curl(other, f"https://{NAME}/v2/", user=PULL)[0] == 200


def test_catalog_lists_the_pushed_repository(host):
    assert "agents/reference" in get_json(host, f"{REGISTRY}/v2/_catalog")["repositories"]
    assert get_json(host, f"{REGISTRY}/v2/agents/reference/tags/list")["tags"] == ["1.0.0"]
    repo = "/var/lib/docker-registry/docker/registry/v2/repositories/agents/reference"
    assert host.file(repo).is_directory


def test_both_hosts_trust_the_ca_not_insecure(host, other):
    ca = host.file(CA).content_string
    for h in (host, other):
        daemon = json.loads(h.file("/etc/docker/daemon.json").content_string)
        assert "insecure-registries" not in daemon
        assert h.file(f"/etc/docker/certs.d/{NAME}/ca.crt").content_string == ca
        info = json.loads(h.check_output("docker info --format '{{json .RegistryConfig}}'"))
        assert NAME not in info["IndexConfigs"] or info["IndexConfigs"][NAME]["Secure"] is True


def test_docker_logged_in_with_the_pull_account(host, other):
    for h in (host, other):
        auths = json.loads(h.file("/root/.docker/config.json").content_string)["auths"]
        assert NAME in auths
    # The registry host also holds the push login for its loopback address (playbooks/image.yml).
    assert "127.0.0.1:5000" in json.loads(host.file("/root/.docker/config.json").content_string)["auths"]


def test_other_host_pulls_by_name_and_runs(other):
    assert other.run(f"docker image rm {REMOTE_IMAGE}").rc in (0, 1)  # start clean
    pull = other.run(f"docker pull {REMOTE_IMAGE}")
    assert pull.rc == 0, pull.stdout + pull.stderr
    run = other.run(f"docker run --rm {REMOTE_IMAGE} python3 -c 'print(1)'")
    assert run.rc == 0, run.stderr
    assert run.stdout.strip() == "1"


def test_pull_and_push_need_a_login(other):
    """Without the stored login (an empty Docker config) pull and push are refused."""
    other.check_output("mkdir -p /tmp/af-nologin && echo '{}' > /tmp/af-nologin/config.json")
    pull = other.run(f"docker --config /tmp/af-nologin pull {NAME}/agents/reference:1.0.0")
    assert pull.rc != 0
    assert "no basic auth credentials" in pull.stderr or "unauthorized" in pull.stderr, pull.stderr
    other.check_output(f"docker tag {REMOTE_IMAGE} {NAME}/molecule/pushed:1")
    push = other.run(f"docker --config /tmp/af-nologin push {NAME}/molecule/pushed:1")
    assert push.rc != 0
    assert "no basic auth credentials" in push.stderr + push.stdout or "unauthorized" in push.stderr + push.stdout


def test_pull_account_can_push_too(host, other):
    """distribution's htpasswd auth has no per-user ACL (documented in the role's README)."""
    other.check_output(f"docker pull {REMOTE_IMAGE}")  # with the stored login
    other.check_output(f"docker tag {REMOTE_IMAGE} {NAME}/molecule/pushed:1")
    push = other.run(f"docker push {NAME}/molecule/pushed:1")
    assert push.rc == 0, push.stdout + push.stderr
    assert get_json(host, f"{REGISTRY}/v2/molecule/pushed/tags/list")["tags"] == ["1"]


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
    assert "molecule-push-secret" not in out and "molecule-pull-secret" not in out
    assert host.file(CONFIG).sha256sum == before
    assert host.check_output(f"systemctl show -p MainPID --value {SERVICE}") == pid_before
    assert "agents/reference" in get_json(host, f"{REGISTRY}/v2/_catalog")["repositories"]
