"""Credentials helpers: stable bcrypt hashes, and the web config checker the roles ship."""

import importlib.util
import json
from pathlib import Path

import bcrypt
import pytest
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.security import (
    SecurityError,
    basic_auth_hashes,
    bcrypt_hash,
)

CHECKER = Path(__file__).resolve().parents[2] / "roles" / "_common" / "files" / "check_web_config.py"


def test_hash_verifies_and_is_stable():
    digest = bcrypt_hash("s3cret-pw", "node_exporter/host-1/prometheus")
    assert bcrypt.checkpw(b"s3cret-pw", digest.encode())
    assert not bcrypt.checkpw(b"other", digest.encode())
    assert digest == bcrypt_hash("s3cret-pw", "node_exporter/host-1/prometheus")


def test_salt_depends_on_context_and_password():
    a = bcrypt_hash("pw-one", "ctx/a")
    assert a != bcrypt_hash("pw-one", "ctx/b")
    assert a[:29] != bcrypt_hash("pw-two", "ctx/a")[:29]  # $2b$10$ + 22 salt characters


def test_rounds_are_in_the_hash():
    assert bcrypt_hash("pw", "ctx", rounds=4).startswith("$2b$04$")
    with pytest.raises(SecurityError):
        bcrypt_hash("pw", "ctx", rounds=3)


@pytest.mark.parametrize("bad", ["", None, 42])
def test_empty_or_non_string_password_is_refused(bad):
    with pytest.raises(SecurityError, match="ctx"):
        bcrypt_hash(bad, "ctx")


def test_basic_auth_hashes_salts_per_user():
    hashes = basic_auth_hashes({"alice": "same", "bob": "same"}, "prometheus/h1", rounds=4)
    assert set(hashes) == {"alice", "bob"}
    assert hashes["alice"] != hashes["bob"]
    assert all(bcrypt.checkpw(b"same", h.encode()) for h in hashes.values())
    with pytest.raises(SecurityError):
        basic_auth_hashes(["alice"], "ctx")


@pytest.fixture()
def checker():
    spec = importlib.util.spec_from_file_location("check_web_config", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path, config):
    path = tmp_path / "web.yml"
    path.write_text(json.dumps(config))
    return str(path)


def test_checker_accepts_a_good_config(checker, tmp_path):
    (tmp_path / "tls.crt").write_text("cert")
    (tmp_path / "tls.key").write_text("key")
    config = {"tls_server_config": {"cert_file": str(tmp_path / "tls.crt"), "key_file": str(tmp_path / "tls.key")},
              "basic_auth_users": {"prometheus": bcrypt_hash("pw", "c", rounds=4)}}
    assert checker.problems(_write(tmp_path, config)) == []


def test_checker_names_every_problem(checker, tmp_path):
    config = {"tls_server_config": {"cert_file": str(tmp_path / "missing.crt")},
              "basic_auth_users": {"prometheus": "plaintext"}, "tls_config": {}}
    found = checker.problems(_write(tmp_path, config))
    assert "unknown key 'tls_config'" in found
    assert "tls_server_config has no key_file" in found
    assert any(p.startswith("tls_server_config.cert_file:") for p in found)
    assert "basic_auth_users.prometheus: not a bcrypt hash" in found


def test_checker_refuses_unreadable_json(checker, tmp_path):
    path = tmp_path / "web.yml"
    path.write_text("{not json")
    assert checker.problems(str(path))[0].startswith("cannot read")


def test_scrape_client_tls_and_password_file():
    from ansible_collections.agentfactory.fleet.plugins.plugin_utils.security import scrape_client

    got = scrape_client({"job": "node", "tls": "True", "username": "prometheus", "password": "pw"},
                        "/etc/ca.crt", "/etc/prometheus/secrets")
    assert got == {"scheme": "https", "tls_config": {"ca_file": "/etc/ca.crt"},
                   "basic_auth": {"username": "prometheus", "password_file": "/etc/prometheus/secrets/node"}}
    assert "pw" not in json.dumps(got)


def test_scrape_client_plain_without_password():
    from ansible_collections.agentfactory.fleet.plugins.plugin_utils.security import scrape_client

    assert scrape_client({"job": "x", "tls": False, "username": "u", "password": ""}, "ca", "dir") == {"scheme": "http"}
    with pytest.raises(SecurityError, match="password"):
        scrape_client({"job": "x", "tls": True, "username": "u"}, "ca", "dir")
