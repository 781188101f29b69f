"""The pki role: a host key that stays on the host, a certificate from the CA with the host's
names, the CA in the system trust store."""

import pytest

PKI = "/etc/agentfactory/pki"


@pytest.fixture(scope="module")
def cert_text(host):
    return host.check_output(f"openssl x509 -in {PKI}/host.crt -noout -text")


def test_key_is_private(host):
    key = host.file(f"{PKI}/host.key")
    assert key.is_file
    assert key.user == "root"
    assert key.mode == 0o600


def test_certificate_chains_to_the_ca(host):
    out = host.check_output(f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")
    assert out.endswith("OK")


def test_certificate_matches_the_host_key(host):
    cert_pub = host.check_output(f"openssl x509 -in {PKI}/host.crt -noout -pubkey")
    key_pub = host.check_output(f"openssl pkey -in {PKI}/host.key -pubout")
    assert cert_pub == key_pub


def test_certificate_names_the_host(host, cert_text):
    name = host.check_output("hostname")
    assert f"DNS:{name}" in cert_text
    assert "IP Address:127.0.0.2" in cert_text
    assert "DNS:pki.lab.internal" in cert_text
    assert "TLS Web Server Authentication" in cert_text


def test_ca_is_in_the_system_trust_store(host):
    # openssl verify without -CAfile uses the system store that update-ca-certificates builds.
    out = host.check_output(f"openssl verify {PKI}/host.crt")
    assert out.endswith("OK")


def test_ca_is_not_the_host_certificate(host):
    ca = host.check_output(f"openssl x509 -in {PKI}/ca.crt -noout -subject -ext basicConstraints")
    assert "agentfactory fleet CA" in ca
    assert "CA:TRUE" in ca


def test_ca_key_never_reaches_the_host(host):
    out = host.run(f"grep -rl 'PRIVATE KEY' {PKI} /usr/local/share/ca-certificates").stdout.split()
    assert out == [f"{PKI}/host.key"]
