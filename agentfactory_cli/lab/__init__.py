"""The local lab: Debian 12 "bare hosts" in containers, reachable over real SSH on loopback.

Each host runs systemd as PID 1 and sshd, with nothing else installed, so the roles meet what
they would meet on a fresh server. Hosts share a user-defined Docker network (they reach each
other by name, as servers on one LAN do) and publish SSH and the monitoring ports on 127.0.0.1.

The lab's tooling, beside the CLI: engine (the local Docker engine), hostimage (the hosts'
image), agentimage (the reference agent's image), aptcache (the package cache hosts share) and
secrets (the lab's generated, vault-encrypted secrets).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agentfactory_cli.errors import InvalidInput, LabError
from agentfactory_cli.lab import hostimage
from agentfactory_cli.lab import secrets as labsecrets
from agentfactory_cli.lab.engine import docker, ensure_engine
from agentfactory_cli.paths import project_root, state_dir

DEFAULT_LAB = "lab"
VAULT_FILE_NAME = "vault.yml"
# Container ports each host publishes on 127.0.0.1 (random free host ports, read back after start).
PUBLISHED_PORTS = {
    "ssh": 22,
    "node_exporter": 9100,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "registry": 5000,
    "gateway": 28080,  # the reference agent's frontend in the lab's catalog
    "gateway_metrics": 8405,
}
# The services `lab status` reports on each host: our name -> systemd unit (Debian's names).
SERVICE_UNITS = {
    "docker": "docker",
    "node_exporter": "prometheus-node-exporter",
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "grafana": "grafana-server",
    "registry": "docker-registry",
    "gateway": "haproxy",
}
# Services that serve plain HTTP in the lab (Grafana is not part of it); every other speaks TLS.
PLAIN_HTTP = {"grafana"}
# Who logs in where: service -> [(account, the lab's vault variable holding its password)].
# Gateway API keys are listed per client (vault_gateway_api_keys).
CREDENTIALS = {
    "node_exporter": [("prometheus", "vault_node_exporter_password")],
    "prometheus": [("admin", "vault_prometheus_password")],
    "alertmanager": [("admin", "vault_alertmanager_password")],
    "registry": [("push", "vault_registry_push_password"), ("pull", "vault_registry_pull_password")],
    "gateway_metrics": [("prometheus", "vault_gateway_stats_password")],
}
LABEL = "agentfactory.lab"
_RUN_OPTIONS = [
    # systemd as PID 1 without --privileged (TESTHOSTS.md: --privileged fails on our machines).
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    # SYS_PTRACE: the inner Docker's `docker exec` (and so container health checks) joins
    # the namespaces of a container's process, which fails with "setns" errors without it.
    "--cap-add", "SYS_PTRACE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--stop-signal", "SIGRTMIN+3",
    # The inner Docker gets a real volume, so it can use overlay2 instead of copying with vfs.
    "-v", "/var/lib/docker",
]


def lab_of_inventory(path: Path) -> Lab | None:
    """The lab whose inventory `path` is (its hosts.yml or the directory holding it), if any."""
    path = path.expanduser().resolve()
    where = path.parent if path.name == "hosts.yml" else path
    if where == (project_root() / "inventory" / "lab").resolve():
        return Lab(DEFAULT_LAB)
    if where.parent == (state_dir() / "lab").resolve():
        try:
            return Lab(where.name) if where.name != DEFAULT_LAB else None
        except InvalidInput:
            return None
    return None


@dataclass
class LabHost:
    name: str
    index: int
    state: str
    ports: dict[int, int] = field(default_factory=dict)

    @property
    def ssh_port(self) -> int | None:
        return self.ports.get(22)


class Lab:
    def __init__(self, name: str = DEFAULT_LAB):
        if not name.replace("-", "").isalnum() or not name[0].isalpha() or len(name) > 20:
            raise InvalidInput(f"lab name {name!r}: use letters, digits and '-', at most 20 characters")
        self.name = name
        self.dir = state_dir() / "lab" / name
        self.key = self.dir / "id_ed25519"
        # The vault password of the lab's generated secrets (lab/secrets.py); the CLI's default.
        self.vault_password_file = self.dir / "vault-password"
        self.network = f"agentfactory-{name}"

    @property
    def inventory_path(self) -> Path:
        if self.name == DEFAULT_LAB:
            return project_root() / "inventory" / "lab" / "hosts.yml"
        return self.dir / "hosts.yml"

    @property
    def vault_file(self) -> Path:
        """The lab's secrets, one vault-encrypted group_vars file beside its inventory."""
        return self.inventory_path.parent / "group_vars" / "all" / VAULT_FILE_NAME

    def host_name(self, index: int) -> str:
        return f"af-{self.name}-{index}"

    # --- queries ---------------------------------------------------------------------------

    def hosts(self) -> list[LabHost]:
        """The lab's containers, in index order (empty when the lab is down)."""
        res = docker("ps", "-a", "-q", "--filter", f"label={LABEL}={self.name}", check=False)
        ids = res.stdout.split()
        if res.returncode != 0 or not ids:
            return []
        found = []
        for info in json.loads(docker("inspect", *ids).stdout):
            ports = {}
            for spec, binds in (info["NetworkSettings"]["Ports"] or {}).items():
                if binds:
                    ports[int(spec.split("/")[0])] = int(binds[0]["HostPort"])
            found.append(LabHost(
                name=info["Name"].lstrip("/"),
                index=int(info["Config"]["Labels"].get(f"{LABEL}.index", 0)),
                state=info["State"]["Status"],
                ports=ports,
            ))
        return sorted(found, key=lambda h: h.index)

    def services(self, host: LabHost) -> dict[str, str]:
        """systemd state of the services our roles install (active, inactive, failed...)."""
        if host.state != "running":
            return {}
        res = docker("exec", host.name, "systemctl", "is-active", *SERVICE_UNITS.values(), check=False)
        states = res.stdout.split()
        if len(states) != len(SERVICE_UNITS):
            return {}
        return dict(zip(SERVICE_UNITS, states, strict=True))

    @property
    def ca_file(self) -> Path:
        """The lab CA's certificate on the controller (pki role): what clients verify against."""
        return self.dir / "pki" / "ca.crt"

    def url(self, service: str, host: LabHost) -> str | None:
        port = PUBLISHED_PORTS[service]
        if port not in host.ports:
            return None
        scheme = "http" if service in PLAIN_HTTP else "https"
        return f"{scheme}://127.0.0.1:{host.ports[port]}"

    def credentials(self) -> list[dict[str, str]]:
        """Every account of the lab with its decrypted password or key: what an operator types.
        Read on request only (`lab credentials`); nothing else prints them."""
        if not (self.vault_file.exists() and self.vault_password_file.exists()):
            raise LabError(f"lab {self.name!r} has no generated secrets yet: run `agentfactory lab up`")
        secrets = labsecrets.read(self.vault_file, self.vault_password_file)
        found = [{"service": service, "user": user, "secret": str(secrets[var])}
                 for service, accounts in CREDENTIALS.items() for user, var in accounts if var in secrets]
        found += [{"service": "gateway", "user": client, "secret": str(key)}
                  for client, key in sorted((secrets.get("vault_gateway_api_keys") or {}).items())]
        return found

    # --- lifecycle -------------------------------------------------------------------------

    def up(self, count: int = 3, log=print) -> list[LabHost]:
        """Make the lab have exactly `count` running hosts; harmless to repeat."""
        if not 1 <= count <= 20:
            raise InvalidInput(f"--hosts {count}: the lab takes 1 to 20 hosts")
        ensure_engine(log=log)
        hostimage.ensure_image(log=log)
        self._ensure_key()
        if docker("network", "inspect", self.network, check=False).returncode != 0:
            docker("network", "create", "--label", f"{LABEL}={self.name}", self.network)

        existing = {h.name: h for h in self.hosts()}
        for host in existing.values():
            if host.index > count:
                log(f"Removing {host.name} (the lab now has {count} hosts)")
                docker("rm", "-f", "-v", host.name)
        for i in range(1, count + 1):
            name = self.host_name(i)
            host = existing.get(name)
            if host is None:
                # Imported here, not with the package: `python -m agentfactory_cli.lab.aptcache` runs
                # it as __main__, and warns when importing the package has imported it already.
                from agentfactory_cli.lab import aptcache

                log(f"Creating {name}")
                publish = [arg for port in PUBLISHED_PORTS.values() for arg in ("-p", f"127.0.0.1::{port}")]
                docker(
                    "run", "-d", "--name", name, "--hostname", name, "--network", self.network,
                    "--label", f"{LABEL}={self.name}", "--label", f"{LABEL}.index={i}",
                    *_RUN_OPTIONS, "-v", f"{aptcache.host_dir(name)}:/var/cache/apt/archives", *publish,
                    hostimage.IMAGE,
                )
            elif host.state != "running":
                log(f"Starting {name}")
                docker("start", name)
        names = [self.host_name(i) for i in range(1, count + 1)]
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(self._make_ready, names))
        hosts = self.hosts()
        self._write_inventory(hosts)
        self._seed_group_vars()
        added = labsecrets.ensure_vault(self.vault_file, self.vault_password_file)
        if added:
            log(f"Generated {len(added)} lab secret(s) in {self.vault_file} (vault-encrypted)")
        return hosts

    def down(self, log=print) -> int:
        """Remove every host, the network, the key and the inventory. Returns hosts removed."""
        from agentfactory_cli.lab import aptcache  # as in up()

        hosts = self.hosts()
        aptcache.collect()
        if hosts:
            docker("rm", "-f", "-v", *[h.name for h in hosts])
            for h in hosts:
                log(f"Removed {h.name}")
        if docker("network", "inspect", self.network, check=False).returncode == 0:
            docker("network", "rm", self.network, check=False)
        self.inventory_path.unlink(missing_ok=True)
        for f in (self.key, self.key.with_suffix(".pub"), self.vault_file, self.vault_password_file):
            f.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "pki", ignore_errors=True)  # the lab's CA goes with its hosts
        if self.name != DEFAULT_LAB:
            shutil.rmtree(self.dir, ignore_errors=True)
        return len(hosts)

    # --- helpers ---------------------------------------------------------------------------

    def _ensure_key(self) -> None:
        if self.key.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"agentfactory-{self.name}",
             "-f", str(self.key)], capture_output=True, text=True)
        if res.returncode != 0:
            raise LabError(f"ssh-keygen failed: {res.stderr.strip()}")

    def _make_ready(self, name: str, timeout: float = 90) -> None:
        """Wait for systemd to finish booting, install the lab key, wait for sshd."""
        deadline = time.monotonic() + timeout
        state = ""
        # Right after start systemctl cannot reach systemd's bus yet and prints nothing: retry.
        while state not in ("running", "degraded") and time.monotonic() < deadline:
            res = subprocess.run(
                ["docker", "exec", name, "timeout", str(int(timeout)),
                 "systemctl", "is-system-running", "--wait"],
                capture_output=True, text=True)
            state = res.stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(0.5)
        if state not in ("running", "degraded"):
            raise LabError(f"{name}: systemd did not come up (state {state or 'unknown'}); "
                           f"see 'docker exec {name} systemctl --failed'")
        docker("exec", "-i", name, "sh", "-c",
               "install -d -m 0700 /root/.ssh && cat > /root/.ssh/authorized_keys"
               " && chmod 0600 /root/.ssh/authorized_keys",
               input=self.key.with_suffix(".pub").read_text())
        port = next(h.ssh_port for h in self.hosts() if h.name == name)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LabError(f"{name}: sshd does not answer on 127.0.0.1:{port}")
            time.sleep(0.3)

    def _seed_group_vars(self) -> None:
        """A named lab starts with a copy of the default lab's group_vars (its agent catalog...),
        which it may then change without touching the operator's lab. Not the default lab's
        secrets: each lab generates its own."""
        template = project_root() / "inventory" / "lab" / "group_vars"
        target = self.inventory_path.parent / "group_vars"
        if self.name != DEFAULT_LAB and template.is_dir() and not target.exists():
            shutil.copytree(template, target, ignore=shutil.ignore_patterns(VAULT_FILE_NAME, VAULT_FILE_NAME + ".tmp"))

    def controller_address(self) -> str:
        """The address the lab's hosts see the controller's connections come from: Docker's
        proxy of the published ports connects from the lab network's gateway."""
        res = docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", self.network)
        gateways = res.stdout.split()
        if not gateways:
            raise LabError(f"the lab network {self.network} has no gateway address")
        return gateways[0]

    def virtual_address(self) -> str:
        """The gateway's floating address (keepalived) with its prefix: the third address from
        the top of the lab network, far above the ones Docker hands out to the hosts (from the
        bottom)."""
        res = docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", self.network)
        subnets = [ipaddress.ip_network(s) for s in res.stdout.split()]
        subnet = next((s for s in subnets if s.version == 4 and s.num_addresses >= 8), None)
        if subnet is None:
            raise LabError(f"the lab network {self.network} has no IPv4 subnet for a floating address")
        return f"{subnet.broadcast_address - 2}/{subnet.prefixlen}"

    def _write_inventory(self, hosts: list[LabHost]) -> None:
        names = [h.name for h in hosts]
        # Two gateway hosts (when there are two) sharing a floating address: clients on the lab
        # network use it, and the loss of one gateway host moves it to the other.
        gateways = names[:2]
        ha = {"gateway_virtual_address": self.virtual_address()} if len(gateways) > 1 else {}
        inventory = {
            "all": {
                "vars": {
                    "ansible_host": "127.0.0.1",
                    "ansible_user": "root",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_ssh_private_key_file": str(self.key),
                    # Lab hosts are recreated often on the same ports: their host keys change.
                    "ansible_ssh_common_args": (
                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
                    ),
                    # The same for connections that do not read those options (Mitogen's).
                    "ansible_host_key_checking": False,
                    "agentfactory_lab": self.name,
                    # The lab's own CA (pki role), kept with its other state outside the tree.
                    "pki_ca_dir": str(self.dir / "pki"),
                    # The controller reaches the web UIs, the registry and the gateway's metrics
                    # through the published ports (firewall role).
                    "firewall_operator_sources": [self.controller_address()],
                    **ha,
                },
                "hosts": {
                    h.name: {
                        "ansible_port": h.ssh_port,
                        # How the other hosts reach this one (Docker's DNS on the lab network).
                        "agentfactory_host_address": h.name,
                        "agentfactory_lab_ports": dict(sorted(h.ports.items())),
                    }
                    for h in hosts
                },
                "children": {
                    "agent_hosts": {"hosts": {n: None for n in names}},
                    "monitoring": {"hosts": {names[0]: None}},
                    "registry": {"hosts": {names[0]: None}},
                    "gateway": {"hosts": dict.fromkeys(gateways)},
                },
            }
        }
        path = self.inventory_path
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (f"# Written by `agentfactory lab up` for the lab {self.name!r}; "
                  "rewritten on every `lab up`, removed by `lab down`.\n")
        path.write_text(header + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False))
