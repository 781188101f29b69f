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


def on_host(index: int, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command on a lab host (as its console would), not through Ansible."""
    res = subprocess.run(["docker", "exec", host_name(index), *command], capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(command)} on {host_name(index)} exited {res.returncode}: {res.stderr}")
    return res
