"""The registry from a flat release tarball: Debian's unit name and config path, own user,
custom listen address, port and storage path, TLS with the host certificate of the scenario's CA,
htpasswd auth, and blobs really written under that path."""

import hashlib

SERVICE = "docker-registry"
BINARY = "/usr/local/bin/registry"
API = "https://127.0.0.1:5050"
STORAGE = "/srv/registry-data"
CA = "/etc/agentfactory/pki/ca.crt"
# curl checks the certificate against the scenario's CA; -u with the push account.
CURL = f"curl -s --max-time 5 --cacert {CA}"
PUSH = "-u push:molecule-push-secret"


def status(host, args):
    return host.check_output(f"{CURL} -o /dev/null -w '%{{http_code}}' {args}")


def test_no_distro_package(host):
    assert not host.package("docker-registry").is_installed


def test_unit_from_tarball_under_debian_name(host):
    svc = host.service(SERVICE)
    assert svc.is_running
    assert svc.is_enabled
    unit = host.file(f"/etc/systemd/system/{SERVICE}.service").content_string
    assert f"ExecStart={BINARY} $ARGS" in unit
    assert host.file(BINARY).mode == 0o755
    args = host.file(f"/etc/default/{SERVICE}").content_string
    assert 'ARGS="serve /etc/docker/registry/config.yml"' in args


def test_runs_as_own_user_hardened(host):
    pid = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    assert host.check_output(f"ps -o user= -p {pid}") == "docker-registry"
    props = host.check_output(f"systemctl show -p NoNewPrivileges -p ProtectSystem -p ReadWritePaths {SERVICE}")
    assert set(props.splitlines()) == {"NoNewPrivileges=yes", "ProtectSystem=strict", f"ReadWritePaths={STORAGE}"}
    # SIGHUP would stop the registry, so the drop-in clears the tarball unit's ExecReload.
    dropin = host.file(f"/etc/systemd/system/{SERVICE}.service.d/agentfactory.conf").content_string
    assert "\nExecReload=\n" in dropin


def test_listens_only_on_configured_address(host):
    assert host.socket("tcp://127.0.0.1:5050").is_listening
    assert not host.socket("tcp://0.0.0.0:5050").is_listening
    assert not host.socket("tcp://0.0.0.0:5000").is_listening


def test_api_answers_over_tls_with_credentials(host):
    headers = host.check_output(f"{CURL} -fi {PUSH} {API}/v2/")
    assert "docker-distribution-api-version: registry/2.0" in headers.lower()  # HTTP/2: lowercase
    assert status(host, f"-u pull:molecule-pull-secret {API}/v2/") == "200"


def test_certificate_issued_by_the_ca(host):
    out = host.run(f"openssl s_client -connect 127.0.0.1:5050 -CAfile {CA} -verify_return_error </dev/null")
    assert out.rc == 0, out.stdout + out.stderr
    assert "issuer=CN = agentfactory fleet CA" in out.stdout
    assert "Verify return code: 0 (ok)" in out.stdout
    assert host.run("curl -sf --max-time 5 http://127.0.0.1:5050/v2/").rc != 0


def test_anonymous_pull_and_push_refused(host):
    assert status(host, f"{API}/v2/") == "401"
    assert status(host, f"{API}/v2/molecule/test/tags/list") == "401"
    assert status(host, f"-X POST {API}/v2/molecule/test/blobs/uploads/") == "401"
    assert status(host, f"-u push:wrong {API}/v2/") == "401"


def test_htpasswd_file(host):
    f = host.file("/etc/agentfactory/registry/htpasswd")
    assert (f.user, f.group, f.mode) == ("root", "docker-registry", 0o640)
    assert [line.split(":")[0] for line in f.content_string.splitlines()] == ["push", "pull"]
    assert "molecule-p" not in f.content_string


def test_blob_upload_lands_in_storage_path(host):
    """Upload a blob through the API (no Docker on this host): the hardened unit may write there."""
    blob = b"agentfactory registry tarball test\n"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    start = host.check_output(f"{CURL} -fi {PUSH} -X POST {API}/v2/molecule/test/blobs/uploads/")
    location = next(line.split(":", 1)[1].strip() for line in start.splitlines()
                    if line.lower().startswith("location:"))
    sep = "&" if "?" in location else "?"
    put = host.run(
        f"printf 'agentfactory registry tarball test\\n' | {CURL} -f {PUSH} -X PUT "
        f"-H 'Content-Type: application/octet-stream' --data-binary @- '{location}{sep}digest={digest}'"
    )
    assert put.rc == 0, put.stderr
    head = host.run(f"{CURL} -fI {PUSH} {API}/v2/molecule/test/blobs/{digest}")
    assert head.rc == 0
    data = f"{STORAGE}/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data"
    assert host.file(data).content == blob
    assert host.file(STORAGE).user == "docker-registry"
