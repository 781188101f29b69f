"""The security probe: what an outsider on the lab's network reaches of the whole site.

After `agentfactory site` (monitoring, registry, gateway, a container agent and a systemd agent
behind the gateway), every TCP port listening on every lab host (`ss -ltn` on the host) is
probed from a container on the lab network that is not a fleet host. Each must be filtered or
refused, or speak TLS with a certificate of the lab's CA for that host and answer 401 or 403
without credentials. SSH is the only exception. The table of what was found is printed. Then
Docker restarts on one host: its agents' ports must stay guarded (the firewall's table is not
one of the chains Docker rebuilds).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml
from labcli import LAB, agentfactory, host_name, host_names, on_host
from test_20_agents import catalog as container_catalog
from test_30_systemd_agent import gamma

from agentfactory_cli.lab import Lab
from agentfactory_cli.paths import project_root

CATALOG_DIR = Lab(LAB).inventory_path.parent / "group_vars" / "all"
OUTSIDER = f"af-{LAB}-outsider"

# Runs in the outsider: for each [host, port], TCP connect (no answer in 3 s: filtered), then a
# TLS handshake verified against the lab CA for that host name, then GET / without credentials.
PROBE = r"""
import json, socket, ssl, sys
from concurrent.futures import ThreadPoolExecutor

def probe(target):
    host, port = target
    try:
        sock = socket.create_connection((host, port), timeout=3)
    except socket.timeout:
        return "filtered"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"filtered ({exc.strerror})"
    with sock:
        sock.settimeout(5)
        try:
            banner = sock.recv(8, socket.MSG_PEEK) if port == 22 else b""
        except OSError:
            banner = b""
        if banner.startswith(b"SSH-"):
            return "ssh"
        context = ssl.create_default_context(cafile="/tmp/lab-ca.crt")
        try:
            tls = context.wrap_socket(sock, server_hostname=host)
        except (ssl.SSLError, OSError) as exc:
            return f"no TLS of the lab CA ({type(exc).__name__}: {exc})"
        with tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            head = tls.recv(64).decode(errors="replace")
            status = head.split(" ")[1] if head.startswith("HTTP/") else head[:20]
            return f"tls {status}"

targets = json.load(sys.stdin)
with ThreadPoolExecutor(max_workers=16) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
"""


def listening(index: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP listener on a lab host, from the host itself."""
    found = set()
    for line in on_host(index, "ss", "-Htln").stdout.splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        found.add((address.strip("[]").split("%")[0], int(port)))
    return sorted(found, key=lambda item: (item[1], item[0]))


def probe(outsider: str, targets: list[list]) -> list[str]:
    """What the outsider meets at each [host, port]."""
    res = subprocess.run(["docker", "exec", "-i", outsider, "python3", "-c", PROBE], input=json.dumps(targets),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def reachable(address: str) -> bool:
    """Whether a listener's address is one another machine could connect to."""
    return not (address.startswith("127.") or address == "::1")


@pytest.fixture(scope="module")
def site(bootstrapped):
    """The whole site, with a container and a systemd agent behind the gateway."""
    path = CATALOG_DIR / "agents.yml"
    original = path.read_text() if path.exists() else None
    agents = [container_catalog()["agentfactory_agents"][0], gamma("small", host_port=18400, gateway={"port": 28400})]
    path.write_text(yaml.safe_dump({
        "agentfactory_agents": agents,
        "agent_systemd_packages": ["python3-yaml", "python3-prometheus-client"],
        "agent_systemd_files": [{"src": str(project_root() / "agents/reference/agent.py"),
                                 "dest": "/opt/agentfactory/bin/reference-agent", "mode": "0755"}],
    }, sort_keys=False))
    res = agentfactory("site", "--yes")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    yield
    if original is not None:
        path.write_text(original)


@pytest.fixture(scope="module")
def outsider(site):
    """A container on the lab's network that is no fleet host, with the lab's CA certificate."""
    lab = Lab(LAB)
    subprocess.run(["docker", "rm", "-f", OUTSIDER], capture_output=True)
    subprocess.run(["docker", "run", "-d", "--name", OUTSIDER, "--network", lab.network, "--entrypoint", "sleep",
                    "agentfactory/testhost:bookworm", "600"], check=True, capture_output=True)
    subprocess.run(["docker", "cp", str(lab.ca_file), f"{OUTSIDER}:/tmp/lab-ca.crt"], check=True, capture_output=True)
    yield OUTSIDER
    subprocess.run(["docker", "rm", "-f", OUTSIDER], capture_output=True)


def test_outsider_reaches_nothing_plain_or_unauthenticated(outsider):
    rows = []
    targets = []
    for index, host in enumerate(host_names(), start=1):
        for address, port in listening(index):
            if reachable(address):
                targets.append([host, port])
                rows.append([host, f"{address}:{port}"])
            else:
                rows.append([host, f"{address}:{port}", "loopback only"])
    results = iter(probe(outsider, targets))
    for row in rows:
        if len(row) == 2:
            row.append(next(results))
    width = max(len(row[1]) for row in rows)
    print("\nhost            listener" + " " * (width - 8) + "  from the outsider")
    for host, listener, result in rows:
        print(f"{host:<15} {listener:<{width}}  {result}")

    def acceptable(port: int, result: str) -> bool:
        if result.startswith(("filtered", "refused", "loopback only")):
            return True
        if result == "ssh":
            return port == 22
        return result in ("tls 401", "tls 403")

    bad = [row for row in rows if not acceptable(int(row[1].rsplit(":", 1)[1]), row[2])]
    assert not bad, f"reachable without TLS of the lab CA or without asking for credentials: {bad}"
    # The probe saw what it should: the gateway's frontends answer the outsider, over TLS.
    results_by_port = {int(listener.rsplit(":", 1)[1]): result for _, listener, result in rows}
    assert results_by_port.get(28100) == "tls 401", results_by_port
    assert results_by_port.get(28400) == "tls 401", results_by_port


def test_agent_ports_stay_guarded_across_a_docker_restart(outsider):
    # Docker rebuilds its own chains when it starts; the firewall's table is not among them.
    on_host(2, "systemctl", "restart", "docker")
    deadline = time.monotonic() + 60
    while True:
        answer = on_host(1, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                         f"http://{host_name(2)}:18100/healthz", check=False).stdout
        if answer == "200" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert answer == "200", "the replica on host 2 did not come back for the gateway host"
    assert probe(outsider, [[host_name(2), 18100], [host_name(2), 18101]]) == ["filtered", "filtered"]
