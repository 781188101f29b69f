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


# Requests through the gateway, from the gateway host itself, until told to stop (bounded).
LOAD_LOOP = r"""
import json, os, sys, time, urllib.request
PORT = int(sys.argv[1])
ok = failed = 0
errors = []
deadline = time.monotonic() + 400
while time.monotonic() < deadline and not os.path.exists("/tmp/stop-load") and ok + failed < 30000:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=5) as answer:
            ok += 1
    except Exception as exc:
        failed += 1
        errors.append(str(exc)[:120])
    time.sleep(0.02)
print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5]}))
"""


def start_load(port: int) -> subprocess.Popen:
    """Requests to a gateway frontend, from the gateway host, until stop_load (bounded)."""
    on_host(1, "rm", "-f", "/tmp/stop-load")
    return subprocess.Popen(["docker", "exec", host_name(1), "python3", "-c", LOAD_LOOP, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_load(proc: subprocess.Popen) -> dict:
    """{ok, failed, errors} of the requests start_load sent."""
    on_host(1, "touch", "/tmp/stop-load")
    out, err = proc.communicate(timeout=60)
    return json.loads(out or "{}") if out.strip() else {"ok": 0, "failed": -1, "errors": [err]}


def update_under_load(port: int, *args: str) -> tuple[int, dict, dict]:
    """`agentfactory update ARGS --json` while requests go to gateway port `port`: (exit code,
    the JSON document, what the requests met)."""
    load = start_load(port)
    try:
        code, doc = run_json("update", *args)
    finally:
        requests = stop_load(load)
    return code, doc, requests
