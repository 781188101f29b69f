"""Rotation on the lab, under a request loop through the gateway.

`agentfactory rotate` gives every generated secret of the lab a new value (service passwords,
registry accounts, gateway API keys, the agent's vault secret) and every host a new key and
certificate, then applies them: services pick them up, the agent's replicas are replaced host by
host behind the gateway. Requests with the old API key go on the whole time: none may fail.
Afterwards the old key still works until `rotate --retire`; Prometheus scrapes every target
with the new passwords; the agent reads its new secret; no secret, old or new, is in the runs'
artifacts or the CLI's output.
"""

from __future__ import annotations

import time

import pytest
from labcli import agentfactory, host_names, lab_secrets, on_host, start_load, stop_load, through_gateway
from test_20_agents import write_catalog
from test_60_monitoring import targets
from test_70_secrets import SECRET_FILE, reference, run

PORT = 28500


def flat(secrets: dict) -> list[str]:
    """Every secret value of the lab's vault (nested API keys included)."""
    values: list[str] = []
    for value in secrets.values():
        if isinstance(value, dict):
            values += flat(value)
        elif isinstance(value, list):
            values += [str(v) for v in value]
        else:
            values.append(str(value))
    return values


def serial(index: int) -> str:
    return on_host(index, "openssl", "x509", "-noout", "-serial", "-in", "/etc/agentfactory/pki/host.crt").stdout


def served_serial(port: int) -> str:
    """The serial of the certificate a TLS service on the first host presents."""
    return on_host(1, "sh", "-c", f"openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null"
                   " | openssl x509 -noout -serial").stdout


@pytest.fixture(scope="module")
def behind_gateway(bootstrapped):
    doc = reference("small")
    doc["agentfactory_agents"][0]["gateway"] = {"port": PORT}
    doc["agentfactory_agents"][0]["replicas"] = 2
    write_catalog(doc)
    res = agentfactory("deploy", "--yes")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert through_gateway(PORT, "/healthz")[0] == 200


def test_rotate_under_load_loses_no_request(behind_gateway):
    before = lab_secrets()
    serials = [serial(i) for i in range(1, len(host_names()) + 1)]
    load = start_load(PORT, seconds=900)
    try:
        runs, printed = run("rotate")
    finally:
        requests = stop_load(load)
    print(f"requests through the gateway during the rotation: {requests}")
    assert requests["failed"] == 0, requests
    assert requests["ok"] > 100, requests

    after = lab_secrets()
    for name in ("vault_reference_api_key", "vault_prometheus_password", "vault_node_exporter_password",
                 "vault_registry_pull_password", "vault_gateway_stats_password"):
        assert after[name] != before[name], name
    assert not set(serials) & {serial(i) for i in range(1, len(host_names()) + 1)}  # every host: a new one
    # The gateway, the registry and Prometheus serve the new certificate of their host.
    for port in (PORT, 5000, 9090):
        assert served_serial(port) == serial(1), port
    # The agent reads its new secret on every host.
    for index in range(1, len(host_names()) + 1):
        assert on_host(index, "cat", SECRET_FILE).stdout.rstrip("\n") == after["vault_reference_api_key"]

    # Both keys work until the old one is retired; then only the new one.
    old, new = before["vault_gateway_api_keys"]["demo"], after["vault_gateway_api_keys"]["demo"]
    assert through_gateway(PORT, "/healthz", key=old)[0] == 200
    assert through_gateway(PORT, "/healthz", key=new)[0] == 200
    retired, retire_printed = run("rotate", "--retire")
    assert through_gateway(PORT, "/healthz", key=old)[0] == 401
    assert through_gateway(PORT, "/healthz", key=new)[0] == 200

    # Prometheus scrapes every target again, with the new passwords (within a few intervals).
    deadline = time.monotonic() + 90
    while True:
        down = [t["scrapeUrl"] for t in targets() if t["health"] != "up"]
        if not down or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not down, down

    # No secret, old or new, in any artifact of the two runs or in what the CLI printed.
    values = [v for v in flat(before) + flat(after) if len(v) >= 8]
    files = [f for d in runs + retired for f in d.rglob("*") if f.is_file()]
    blobs = [f.read_bytes() for f in files]
    hits = [v[:4] + "..." for v in values if any(v.encode() in b for b in blobs) or v in printed + retire_printed]
    print(f"searched {len(files)} artifact files for {len(values)} secret values: {len(hits)} hit(s)")
    assert not hits, hits
