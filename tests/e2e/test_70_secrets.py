"""Secrets on the lab: the vault value `lab up` generated lands in its file on every host, and
nowhere on the controller's side: not in any run artifact, not on stdout or stderr, with -v and
--diff too.

The agent `reference` (the reference image, as test_20's agents) gets the lab's
`vault_reference_api_key` as its secret API_KEY. Then: deploy; deploy -v --diff changing
nothing; deploy -v --diff after the file went missing on one host (so the secret file is
written again under --diff, with no restart); a rolling update -v --diff with a new config;
status. Every file of those runs' artifacts and everything they printed is searched for the
value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labcli import LAB, agentfactory, host_names, on_host
from test_20_agents import catalog, containers, write_catalog

from agentfactory_cli.lab import Lab
from agentfactory_cli.lab import secrets as labsecrets
from agentfactory_cli.paths import state_dir

SECRET_FILE = "/etc/agentfactory/agents/reference/secrets/API_KEY"


def reference(model: str) -> dict:
    """test_20's catalog with one agent instead: `reference`, its API_KEY from the lab's vault."""
    beta = catalog()["agentfactory_agents"][1]
    agent = {**beta, "name": "reference", "host_port": 18300, "config": {"model": model},
             "secrets": {"API_KEY": "{{ vault_reference_api_key }}"}}
    agent["update"] = {**agent["update"], "health_timeout": 60}
    return {"agentfactory_agents": [agent]}


def new_runs(before: set[Path]) -> list[Path]:
    return sorted(set((state_dir() / "runs").iterdir()) - before)


def run(*args: str) -> tuple[list[Path], str]:
    """One CLI call: (its run artifact directories, what it printed on stdout and stderr)."""
    before = set((state_dir() / "runs").iterdir()) if (state_dir() / "runs").exists() else set()
    res = agentfactory(*args)
    assert res.returncode == 0, f"agentfactory {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    runs = new_runs(before)
    assert runs, f"agentfactory {' '.join(args)} left no run artifacts"
    return runs, res.stdout + "\n" + res.stderr


@pytest.fixture(scope="module")
def secret(bootstrapped) -> str:
    lab = Lab(LAB)
    value = labsecrets.read(lab.vault_file, lab.vault_password_file)["vault_reference_api_key"]
    assert len(value) >= 24
    return value


def test_secret_is_delivered_and_never_on_the_controller(secret):
    write_catalog(reference("small"))
    calls = [run("deploy", "--yes"), run("deploy", "-v", "--diff")]  # the second changes nothing
    # The file goes missing on one host: deploy -v --diff writes it again (a diff of a secret
    # file), and restarts nothing (the fingerprint holds its checksum, which did not change).
    before = containers(1)["reference-0"]["id"]
    on_host(1, "rm", "-f", SECRET_FILE)
    calls.append(run("deploy", "-v", "--diff"))
    assert containers(1)["reference-0"]["id"] == before
    write_catalog(reference("large"))  # the update replaces every replica
    calls.append(run("update", "--agent", "reference", "-v", "--diff"))
    calls.append(run("status", "--agent", "reference"))
    runs = [d for dirs, _ in calls for d in dirs]
    outputs = [printed for _, printed in calls]

    # Delivered: on every host, mode 0600, owned by the image's user, the vault's value.
    for index, host in enumerate(host_names(), start=1):
        mode = on_host(index, "stat", "-c", "%a %u", SECRET_FILE).stdout.split()
        assert mode == ["600", "10001"]
        assert on_host(index, "cat", SECRET_FILE).stdout.rstrip("\n") == secret
        info = json.loads(on_host(index, "curl", "-s", f"http://{host}:18300/").stdout)
        assert info["secrets_loaded"] == 1, info
    env = on_host(1, "docker", "inspect", "--format", "{{json .Config.Env}}", "reference-0").stdout
    assert secret not in env

    # Never on the controller: every artifact file of those runs, and everything printed.
    files = [f for d in runs for f in d.rglob("*") if f.is_file()]
    hits = [str(f) for f in files if secret.encode() in f.read_bytes()]
    hits += [f"output of call {i + 1}" for i, text in enumerate(outputs) if secret in text]
    print(f"searched {len(files)} artifact files of {len(runs)} runs and {len(outputs)} outputs: {len(hits)} hit(s)")
    assert len(files) > 100  # the events really are there
    assert not hits, hits
    for d in runs:
        assert d.stat().st_mode & 0o777 == 0o700
        command = json.loads((d / "command").read_text())
        assert not [k for k in command["env"] if k.startswith(("SSH_", "PYTEST_", "VIRTUAL_ENV"))]
