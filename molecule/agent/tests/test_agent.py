"""The agent role after a deploy: what its replicas do, seen from outside.

The catalog comes from the inventory (molecule.yml), so the expectations follow it. The tests
look at ports, processes, users, unit states, container labels and file modes, never at the
systemd runtime's own file names or unit text (those are internal and may change).
"""

import json
import shlex
import time

import pytest
import yaml

CONTAINER_AGENT = "echo"
SYSTEMD_AGENT = "sysecho"
REPLICAS = [(CONTAINER_AGENT, 0), (CONTAINER_AGENT, 1), (SYSTEMD_AGENT, 0), (SYSTEMD_AGENT, 1)]
# Where an agent container finds its secrets (the agent role's contract with the image).
CONTAINER_SECRETS = "/run/secrets/agent"
CONTAINER_CONFIG = "/etc/agent/config.yml"
SYSTEMD_USER = "agentfactory"  # agent_systemd_user's default


def wait_for(predicate, timeout=30, interval=1):
    """Poll predicate() until it returns a truthy value, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="module")
def catalog(host):
    agents = host.ansible.get_variables()["agentfactory_agents"]
    return {agent["name"]: agent for agent in agents}


@pytest.fixture(scope="module")
def address(host):
    """The host's fleet address: its inventory name (the container's), resolved on the host."""
    return host.check_output("getent ahostsv4 $(hostname) | awk 'NR == 1 {print $1}'")


def host_port(agent, index):
    return agent["host_port"] + index


def health_path(agent):
    return agent.get("health", {}).get("path", "/healthz")


def get(host, url):
    """(status, body) of a GET from inside the test host."""
    out = host.check_output(f"curl -s --max-time 5 -w '\\n%{{http_code}}' {url}")
    body, _, status = out.rpartition("\n")
    return int(status), body


def inspect(host, name):
    return json.loads(host.check_output(f"docker inspect {name}"))[0]


def listener_pid(host, port):
    """The pid of the process listening on a TCP port, from ss."""
    out = host.check_output(f"ss -Htlnp 'sport = :{port}'")
    assert "pid=" in out, f"nothing listens on port {port}: {out!r}"
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


# ----- every replica, both runtimes ---------------------------------------------------------


@pytest.mark.parametrize(("name", "index"), REPLICAS)
def test_replica_answers_its_health_path(host, catalog, address, name, index):
    agent = catalog[name]
    status, body = get(host, f"http://{address}:{host_port(agent, index)}{health_path(agent)}")
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["agent"] == name
    assert health["replica"] == f"{name}-{index}"


@pytest.mark.parametrize(("name", "index"), REPLICAS)
def test_replica_listens_on_the_fleet_address_only(host, catalog, address, name, index):
    port = host_port(catalog[name], index)
    listening = host.check_output(f"ss -Htln 'sport = :{port}'").split()
    assert f"{address}:{port}" in listening, listening
    assert host.run(f"curl -s --max-time 2 http://127.0.0.1:{port}/").rc != 0  # not on loopback


@pytest.mark.parametrize(("name", "index"), REPLICAS)
def test_replica_serves_the_catalog_config(host, catalog, address, name, index):
    agent = catalog[name]
    status, body = get(host, f"http://{address}:{host_port(agent, index)}/")
    assert status == 200, body
    info = json.loads(body)
    assert info["model"] == agent["config"]["model"]
    # The replica read every secret of the catalog (it never serves their values).
    assert info["secrets_loaded"] == len(agent["secrets"])
    for value in agent["secrets"].values():
        assert value not in body


@pytest.mark.parametrize("name", [CONTAINER_AGENT, SYSTEMD_AGENT])
def test_no_other_replica_runs(host, catalog, name):
    """The replica after the last answers on no port."""
    agent = catalog[name]
    port = host_port(agent, agent["replicas"])
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


@pytest.mark.parametrize(("name", "owner"), [(CONTAINER_AGENT, "10001"), (SYSTEMD_AGENT, SYSTEMD_USER)])
def test_secret_files_are_private(host, catalog, name, owner):
    """Every file on the host holding one of the agent's secrets: 0600, owned by who runs the agent."""
    for key, value in catalog[name]["secrets"].items():
        found = host.run(f"grep -rlF -- {shlex.quote(value)} /etc/agentfactory")
        paths = found.stdout.split()
        assert paths, f"no file on the host holds the secret {key} of {name}"
        for path in paths:
            secret = host.file(path)
            assert secret.mode == 0o600, f"{path}: mode {secret.mode:o}"
            assert not secret.mode & 0o007, f"{path} is world-readable"
            owner_of = str(secret.uid) if owner.isdigit() else secret.user
            assert owner_of == owner, f"{path} belongs to {secret.user}, not {owner}"


# ----- the container agent ------------------------------------------------------------------


def test_only_the_catalog_replicas_are_agent_containers(host):
    names = host.check_output("docker ps -a --filter label=agentfactory.agent --format '{{.Names}}'").split()
    assert sorted(names) == [f"{CONTAINER_AGENT}-0", f"{CONTAINER_AGENT}-1"]


@pytest.mark.parametrize("index", [0, 1])
def test_container_labels_env_and_port(host, catalog, index):
    agent = catalog[CONTAINER_AGENT]
    container = inspect(host, f"{CONTAINER_AGENT}-{index}")
    assert container["State"]["Running"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    labels = container["Config"]["Labels"]
    assert labels["agentfactory.agent"] == CONTAINER_AGENT
    assert labels["agentfactory.replica"] == str(index)
    assert labels["agentfactory.image"] == agent["image"]
    assert labels["agentfactory.host-port"] == str(host_port(agent, index))
    assert labels["agentfactory.health-path"] == health_path(agent)
    assert len(labels["agentfactory.config-hash"]) == 64
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    for key, value in agent["env"].items():
        assert env[key] == value
    assert container["HostConfig"]["PortBindings"][f"{agent['port']}/tcp"][0]["HostPort"] == str(
        host_port(agent, index)
    )
    # No secret value in the container's definition (environment, labels, command).
    for value in agent["secrets"].values():
        assert value not in json.dumps(container)


def test_replicas_share_one_config_hash(host):
    hashes = {inspect(host, f"{CONTAINER_AGENT}-{i}")["Config"]["Labels"]["agentfactory.config-hash"] for i in (0, 1)}
    assert len(hashes) == 1


@pytest.mark.parametrize("index", [0, 1])
def test_container_config_and_secret_as_the_agent_sees_them(host, catalog, index):
    agent = catalog[CONTAINER_AGENT]
    name = f"{CONTAINER_AGENT}-{index}"
    config = yaml.safe_load(host.check_output(f"docker exec {name} cat {CONTAINER_CONFIG}"))
    assert config == agent["config"]
    for key in agent["secrets"]:
        assert host.check_output(f"docker exec {name} stat -c '%a %u' {CONTAINER_SECRETS}/{key}") == "600 10001"
    # The agent runs unprivileged in its container.
    assert host.check_output(f"docker exec {name} id -u") == "10001"


@pytest.mark.parametrize("index", [0, 1])
def test_docker_health_check_passes(host, index):
    def status():
        state = inspect(host, f"{CONTAINER_AGENT}-{index}")["State"]
        return state.get("Health", {}).get("Status") == "healthy" and state

    assert wait_for(status, timeout=20), inspect(host, f"{CONTAINER_AGENT}-{index}")["State"]


# ----- the systemd agent --------------------------------------------------------------------


def test_systemd_user_is_a_system_user(host):
    user = host.user(SYSTEMD_USER)
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"


@pytest.mark.parametrize("index", [0, 1])
def test_systemd_replica_active_and_enabled(host, index):
    unit = host.service(f"agentfactory-{SYSTEMD_AGENT}@{index}.service")
    assert unit.is_running
    assert unit.is_enabled


@pytest.mark.parametrize("index", [0, 1])
def test_systemd_replica_runs_the_catalog_command_unprivileged(host, catalog, index):
    agent = catalog[SYSTEMD_AGENT]
    pid = listener_pid(host, host_port(agent, index))
    assert host.check_output(f"ps -o user= -p {pid}") == SYSTEMD_USER
    assert host.check_output(f"ps -o args= -p {pid}").startswith(" ".join(agent["command"]))
    # The process serving the port belongs to this replica's unit.
    assert host.check_output(f"ps -o unit= -p {pid}") == f"agentfactory-{SYSTEMD_AGENT}@{index}.service"
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()
    for key, value in agent["env"].items():
        assert f"{key}={value}" in environ


@pytest.mark.parametrize("index", [0, 1])
def test_container_is_hardened(host, index):
    container = inspect(host, f"{CONTAINER_AGENT}-{index}")
    config, hostconfig = container["Config"], container["HostConfig"]
    assert config["User"] == "10001:10001"
    assert hostconfig["ReadonlyRootfs"] is True
    assert hostconfig["CapDrop"] == ["ALL"]
    assert hostconfig["CapAdd"] in (None, [])
    assert "no-new-privileges:true" in hostconfig["SecurityOpt"]
    assert list(hostconfig["Tmpfs"]) == ["/tmp"]
    # From inside: not root, and nothing but /tmp is writable.
    name = f"{CONTAINER_AGENT}-{index}"
    assert host.check_output(f"docker exec {name} id -u") == "10001"
    assert host.run(f"docker exec {name} touch /etc/agent-probe").rc != 0
    assert host.run(f"docker exec {name} touch /tmp/agent-probe").rc == 0
