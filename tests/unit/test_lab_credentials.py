"""What an operator types to reach the lab's services: URLs (TLS unless plain on purpose) and
the accounts from the lab's vault, printed only on request."""

import json

import pytest

from agentfactory_cli import cli
from agentfactory_cli.errors import LabError
from agentfactory_cli.lab import CREDENTIALS, PUBLISHED_PORTS, Lab, LabHost
from agentfactory_cli.lab import secrets as labsecrets


def _host():
    return LabHost(name="af-unittest-1", index=1, state="running",
                   ports={port: 40000 + i for i, port in enumerate(PUBLISHED_PORTS.values())})


def test_urls_are_https_except_grafana():
    lab, host = Lab("unittest"), _host()
    assert lab.url("prometheus", host) == f"https://127.0.0.1:{host.ports[9090]}"
    assert lab.url("gateway", host).startswith("https://")
    assert lab.url("grafana", host).startswith("http://")
    assert lab.url("registry", LabHost(name="x", index=2, state="running")) is None


def test_every_account_comes_from_the_vault():
    lab = Lab("unittest")
    labsecrets.ensure_vault(lab.vault_file, lab.vault_password_file)
    secrets = labsecrets.read(lab.vault_file, lab.vault_password_file)
    found = {(c["service"], c["user"]): c["secret"] for c in lab.credentials()}
    for service, accounts in CREDENTIALS.items():
        for user, var in accounts:
            assert found[(service, user)] == secrets[var]
    assert found[("gateway", "demo")] == secrets["vault_gateway_api_keys"]["demo"]
    assert found[("gateway", "limited")] == secrets["vault_gateway_api_keys"]["limited"]
    # Every name the credentials table refers to is one the lab generates.
    assert {var for accounts in CREDENTIALS.values() for _, var in accounts} <= set(labsecrets.GENERATORS)


def test_no_vault_yet_is_a_clear_error():
    with pytest.raises(LabError, match="lab up"):
        Lab("unittest").credentials()


def test_credentials_verb_prints_json(monkeypatch, capsys):
    lab = Lab("unittest")
    labsecrets.ensure_vault(lab.vault_file, lab.vault_password_file)
    monkeypatch.setattr(Lab, "hosts", lambda self: [_host()])
    assert cli.main(["lab", "credentials", "--name", "unittest", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ca"].endswith("/lab/unittest/pki/ca.crt")
    prom = next(a for a in doc["accounts"] if a["service"] == "prometheus")
    assert prom["user"] == "admin" and prom["url"].startswith("https://127.0.0.1:")
