"""Run the real `agentfactory` command against the end-to-end lab, as an operator would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = "e2e"
# Three hosts: enough for batches (a bad update stops after the first; two hosts stay untouched).
HOSTS = 3


def cli_executable() -> str:
    return shutil.which("agentfactory") or str(Path(sys.executable).with_name("agentfactory"))


def agentfactory(*args: str, timeout: float = 1200, check: bool = False) -> subprocess.CompletedProcess:
    """Run the real CLI as an operator would, against the e2e lab."""
    exe = cli_executable()
    env = {**os.environ, "AGENTFACTORY_LAB": LAB}
    res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        pytest.fail(f"agentfactory {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def run_json(*args: str) -> tuple[int, dict]:
    res = agentfactory(*args, "--json")
    try:
        return res.returncode, json.loads(res.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document:\n{res.stdout}\n--- stderr\n{res.stderr}")


def lab_dir() -> Path:
    from agentfactory_cli.lab import Lab

    return Lab(LAB).dir


def host_name(index: int) -> str:
    return f"af-{LAB}-{index}"


def host_names() -> list[str]:
    """Every lab host, in inventory order."""
    return [host_name(i) for i in range(1, HOSTS + 1)]


def on_host(index: int, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command on a lab host (as its console would), not through Ansible."""
    res = subprocess.run(["docker", "exec", host_name(index), *command], capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(command)} on {host_name(index)} exited {res.returncode}: {res.stderr}")
    return res


def lab_secrets() -> dict:
    """The lab's generated secrets, decrypted (its vault file with its vault password file)."""
    from agentfactory_cli.lab import Lab
    from agentfactory_cli.lab import secrets as labsecrets

    lab = Lab(LAB)
    return labsecrets.read(lab.vault_file, lab.vault_password_file)


def gateway_credentials(client: str = "demo") -> dict:
    """What a client of the gateway needs: the lab CA's certificate (PEM, from the controller:
    the gateway's certificate must chain to it) and the API key of `client` from the lab's vault."""
    return {"ca": (lab_dir() / "pki" / "ca.crt").read_text(),
            "key": lab_secrets()["vault_gateway_api_keys"][client]}


# Requests through the gateway (HTTPS, the lab CA, an API key), from a lab host, until told to
# stop (bounded). The CA and the key come on stdin, never on a command line. Besides the counts it
# reports the outage (outage_ms): from the last success before the first failure to the first
# success after the last failure, so that every failure lies within it (the failover window when
# the gateway moves); with no failure, the longest time between two successful requests.
LOAD_LOOP = r"""
import http.client, json, os, socket, ssl, sys, time
ADDRESS, PORT, SECONDS, CONNECT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
creds = json.loads(sys.stdin.read())
tls = ssl.create_default_context(cadata=creds["ca"])
headers = {"Authorization": "Bearer " + creds["key"]}

def one_request():
    # The TCP connection within CONNECT seconds (a dead address fails fast), the rest within 5.
    sock = socket.create_connection((ADDRESS, PORT), timeout=CONNECT)
    sock.settimeout(5)
    conn = http.client.HTTPConnection(ADDRESS, PORT)
    conn.sock = tls.wrap_socket(sock, server_hostname=ADDRESS)
    try:
        conn.request("GET", "/healthz", headers=headers)
        answer = conn.getresponse()
        answer.read()
        if not 200 <= answer.status < 400:
            raise RuntimeError(f"HTTP {answer.status}")
    finally:
        conn.close()

ok = failed = 0
errors, latencies, results = [], [], []
begin = time.monotonic()
deadline = begin + SECONDS
while time.monotonic() < deadline and not os.path.exists("/tmp/stop-load") and ok + failed < 30000:
    started = time.monotonic()
    try:
        one_request()
        ok += 1
        results.append((started, True))
    except Exception as exc:
        failed += 1
        errors.append(f"{started - begin:.2f}s: {str(exc)[:120]}")
        results.append((started, False))
    latencies.append(time.monotonic() - started)
    time.sleep(0.04)  # about 20 requests a second
latencies.sort()
p99 = round(latencies[int(len(latencies) * 0.99)] * 1000) if latencies else None
slowest = round(latencies[-1] * 1000) if latencies else None
good = [t for t, success in results if success]
bad = [t for t, success in results if not success]
if bad:  # from the last success before the first failure to the first success after the last one
    after, before = [t for t in good if t > bad[-1]], [t for t in good if t < bad[0]]
    outage = min(after or [time.monotonic()]) - max(before or [begin])
else:  # the longest time between two successful requests
    outage = max([b - a for a, b in zip(good, good[1:])] or [0.0])
print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5], "p99_ms": p99, "max_ms": slowest,
                  "outage_ms": round(outage * 1000)}))
"""

# One request through the gateway, from the gateway host: prints {"status", "body"}.
ONE_REQUEST = r"""
import json, ssl, sys, urllib.error, urllib.request
creds = json.loads(sys.stdin.read())
tls = ssl.create_default_context(cadata=creds["ca"])
headers = {"Authorization": "Bearer " + creds["key"]} if creds["key"] else {}
data = creds["data"].encode() if creds["data"] is not None else None
request = urllib.request.Request(creds["url"], data=data, headers=headers, method=creds["method"])
try:
    with urllib.request.urlopen(request, timeout=10, context=tls) as answer:
        status, body = answer.status, answer.read()
except urllib.error.HTTPError as exc:
    status, body = exc.code, exc.read()
print(json.dumps({"status": status, "body": body.decode(errors="replace")}))
"""


def through_gateway(port: int, path: str, data: str | None = None, client: str | None = "demo",
                    key: str | None = None) -> tuple[int, str]:
    """One HTTPS request to gateway port `port` from the gateway host, with the API key of
    `client` (None: no key) or the given `key`: (HTTP status, body). POST when `data` is given."""
    creds = gateway_credentials(client or "demo")
    key = key if key is not None else creds["key"] if client else ""
    payload = {"ca": creds["ca"], "key": key, "data": data,
               "url": f"https://127.0.0.1:{port}{path}", "method": "POST" if data is not None else "GET"}
    res = subprocess.run(["docker", "exec", "-i", host_name(1), "python3", "-c", ONE_REQUEST],
                         input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        pytest.fail(f"request to the gateway port {port} failed: {res.stderr}")
    answer = json.loads(res.stdout)
    return answer["status"], answer["body"]


def start_load(port: int, seconds: int = 400, client: int = 1, address: str = "127.0.0.1",
               connect_timeout: float = 5) -> subprocess.Popen:
    """Requests to a gateway frontend at `address` (default: the gateway on the client host
    itself), from lab host `client`, until stop_load (at most `seconds` and 30,000 requests, each
    connected within `connect_timeout` seconds and answered within 5 more), with the demo
    client's key as it is now."""
    on_host(client, "rm", "-f", "/tmp/stop-load")
    proc = subprocess.Popen(["docker", "exec", "-i", host_name(client), "python3", "-c", LOAD_LOOP,
                             address, str(port), str(seconds), str(connect_timeout)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(gateway_credentials()))
    proc.stdin.close()
    proc.stdin = None  # written and closed: stop_load's communicate() must not touch it
    proc.client = client
    return proc


def stop_load(proc: subprocess.Popen) -> dict:
    """{ok, failed, errors, p99_ms, max_ms, outage_ms} of the requests start_load sent."""
    on_host(proc.client, "touch", "/tmp/stop-load")
    out, err = proc.communicate(timeout=60)
    return json.loads(out or "{}") if out.strip() else {"ok": 0, "failed": -1, "errors": [err]}


def under_load(port: int, verb: str, *args: str) -> tuple[int, dict, dict]:
    """`agentfactory VERB ARGS --json` while requests go to gateway port `port`: (exit code,
    the JSON document, what the requests met)."""
    load = start_load(port)
    try:
        code, doc = run_json(verb, *args)
    finally:
        requests = stop_load(load)
    return code, doc, requests
