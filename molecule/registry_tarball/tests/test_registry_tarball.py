"""The registry from a flat release tarball: Debian's unit name and config path, own user,
custom listen address, port and storage path, and blobs really written under that path."""

import hashlib

SERVICE = "docker-registry"
BINARY = "/usr/local/bin/registry"
API = "http://127.0.0.1:5050"
STORAGE = "/srv/registry-data"


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


def test_api_answers(host):
    headers = host.check_output(f"curl -sfi --max-time 5 {API}/v2/")
    assert "Docker-Distribution-Api-Version: registry/2.0" in headers


def test_blob_upload_lands_in_storage_path(host):
    """Upload a blob through the API (no Docker on this host): the hardened unit may write there."""
    blob = b"agentfactory registry tarball test\n"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    start = host.check_output(f"curl -sfi --max-time 5 -X POST {API}/v2/molecule/test/blobs/uploads/")
    location = next(line.split(":", 1)[1].strip() for line in start.splitlines()
                    if line.lower().startswith("location:"))
    sep = "&" if "?" in location else "?"
    put = host.run(
        f"printf 'agentfactory registry tarball test\\n' | curl -sf --max-time 5 -X PUT "
        f"-H 'Content-Type: application/octet-stream' --data-binary @- '{location}{sep}digest={digest}'"
    )
    assert put.rc == 0, put.stderr
    head = host.run(f"curl -sfI --max-time 5 {API}/v2/molecule/test/blobs/{digest}")
    assert head.rc == 0
    data = f"{STORAGE}/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data"
    assert host.file(data).content == blob
    assert host.file(STORAGE).user == "docker-registry"
