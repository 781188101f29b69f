"""A worker host dies abruptly under a request loop through the gateway, then comes back.

The agent `survivor` runs 2 replicas on every host behind the gateway (on the first host). The
third host is killed (`docker stop -t 0`) while requests go on: not one may fail, and their p99
latency stays under 1 s (the first failed connection to a dead replica marks it DOWN at once and
the request goes on to another one). When the host returns (`lab up`), its replicas rejoin the
backend with no operator step. Last in the suite: it restarts a host.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from labcli import HOSTS, LAB, agentfactory, host_name, on_host, start_load, stop_load
from test_20_agents import write_catalog
from test_70_secrets import reference

PORT = 28600
AGENT = "survivor"


def server_states() -> dict[str, str]:
    """server name -> its operational state (0 stopped ... 2 running) in HAProxy, on the gateway."""
    out = on_host(1, "sh", "-c", f"echo 'show servers state {AGENT}' | socat stdio /run/haproxy/admin.sock").stdout
    states = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == AGENT:
            states[fields[3]] = fields[5]
    return states


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


@pytest.fixture(scope="module")
def survivor(bootstrapped):
    doc = reference("small")
    doc["agentfactory_agents"][0].update(name=AGENT, replicas=2, host_port=18700, gateway={"port": PORT})
    write_catalog(doc)
    res = agentfactory("deploy", "--yes")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert wait_until(lambda: list(server_states().values()).count("2") == 2 * HOSTS, 60), server_states()


def test_worker_host_lost_under_load_fails_no_request(survivor):
    lost = host_name(HOSTS)
    load = start_load(PORT, seconds=300)
    try:
        time.sleep(3)
        subprocess.run(["docker", "stop", "-t", "0", lost], check=True, capture_output=True)
        # Its servers go DOWN on the first failed connections, or on the health checks.
        assert wait_until(lambda: all(state != "2" for name, state in server_states().items()
                                      if name.startswith(lost)), 30), server_states()
        time.sleep(5)
    finally:
        requests = stop_load(load)
    print(f"requests while {lost} died: {requests}")
    assert requests["failed"] == 0, requests
    assert requests["ok"] > 100, requests
    assert requests["p99_ms"] < 1000, requests

    # Back (a new SSH port: `lab up` rewrites the inventory): Docker restarts the replicas, the
    # gateway's health checks put them back in the backend by themselves.
    agentfactory("lab", "up", "--name", LAB, "--hosts", str(HOSTS), check=True)
    assert wait_until(lambda: list(server_states().values()).count("2") == 2 * HOSTS, 120), server_states()
