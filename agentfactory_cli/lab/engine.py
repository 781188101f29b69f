"""The local Docker engine the lab runs on: found, or started when none is running."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from agentfactory_cli.errors import LabError
from agentfactory_cli.paths import state_dir


def docker(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the docker client; on failure raise LabError with docker's own message."""
    res = subprocess.run(["docker", *args], capture_output=True, text=True, input=input)
    if check and res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise LabError(f"docker {args[0]} failed: {msg[-1] if msg else 'exit ' + str(res.returncode)}")
    return res


def engine_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def ensure_engine(log=print, timeout: float = 60) -> None:
    """Make sure a Docker engine answers; start dockerd in the background if we can.

    Our machines have no init system to start it (PID 1 is not systemd), so the lab
    starts it itself, the way an operator would by hand.
    """
    if engine_running():
        return
    if shutil.which("docker") is None:
        raise LabError("the docker client is not installed: run 'make deps' (apt-get install docker.io)")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise LabError("no Docker engine is running and dockerd is not installed: run 'make deps'")
    if os.geteuid() != 0:
        raise LabError("no Docker engine is running; start dockerd (as root) and try again")
    _remove_stale_pidfiles()
    logfile = state_dir() / "dockerd.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    log(f"Starting the Docker engine (log: {logfile})...")
    with open(logfile, "ab") as out:
        subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_running():
            return
        time.sleep(0.5)
    raise LabError(f"dockerd did not answer within {timeout:.0f}s; see {logfile}")


def _remove_stale_pidfiles() -> None:
    """A dockerd that was killed (the machine's session ended) leaves pid files behind, and a
    new dockerd refuses to start while they name a process, even a dead one."""
    for pidfile in (Path("/var/run/docker.pid"), Path("/var/run/docker/containerd/containerd.pid")):
        try:
            pid = int(pidfile.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid <= 0 or not Path(f"/proc/{pid}").exists():
            pidfile.unlink(missing_ok=True)
