"""Malformed catalogs through the real CLI path: one precise message each, exit 4, no host contacted.

The inventory's hosts point at a closed port, and running a playbook fails the test: a bad
catalog must be refused while reading the inventory, before anything would connect.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import no_task

from agentfactory_cli import cli, errors

GOOD = {"name": "bot", "image": "registry.lab:5000/agents/bot:1.0", "replicas": 2, "host_port": 18080}


def agent(**changes):
    result = {**GOOD, **changes}
    return {k: v for k, v in result.items() if v is not None}


CASES = [
    ([agent(name="Bad_Name")], "field 'name'"),
    ([agent(name="x" * 41)], "field 'name'"),
    ([agent(), agent()], "both named 'bot'"),
    ([agent(replicas=-1)], "field 'replicas'"),
    ([agent(replicas="two")], "field 'replicas'"),
    ([agent(image=None)], "field 'image'"),
    ([agent(runtime="podman")], "field 'runtime'"),
    ([agent(port=70000)], "field 'port'"),
    ([agent(host_port=65535)], "65535"),
    ([agent(hosts="gpu_hosts")], "gpu_hosts"),
    ([agent(env={"LOG_LEVEL": 3})], "field 'env.LOG_LEVEL'"),
    ([agent(config="model=small")], "field 'config'"),
    ([agent(health={"path": "healthz"})], "field 'health.path'"),
    ([agent(health={"interval": 0})], "field 'health.interval'"),
    ([agent(resources={"memory": "lots"})], "field 'resources.memory'"),
    ([agent(resources={"cpus": 0})], "field 'resources.cpus'"),
    ([agent(update={"batch": "150%"})], "field 'update.batch'"),
    ([agent(replica=2)], "did you mean 'replicas'"),
    ([agent(image_source="archive")], "image_archive"),
    ([agent(runtime="systemd", image=None)], "command"),
    ([agent(name="a", host_port=18080), agent(name="b", host_port=18081)], "host port"),
    ("not a list", "agentfactory_agents"),
]


def write_inventory(tmp_path, agents):
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_host": "127.0.0.1", "ansible_port": 9},  # nothing listens there
        "children": {"agent_hosts": {"hosts": {"h1": None, "h2": None}}},
    }}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({"agentfactory_agents": agents}))
    return inv


@pytest.mark.parametrize(("agents", "expected"), CASES, ids=[c[1] for c in CASES])
def test_malformed_catalog_is_refused_before_any_host(tmp_path, capsys, monkeypatch, agents, expected):
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", no_task)
    inv = write_inventory(tmp_path, agents)
    assert cli.main(["deploy", "-i", str(inv)]) == errors.EXIT_INVALID_INPUT
    err = capsys.readouterr().err
    assert "the agent catalog has" in err
    assert expected in err, err


def test_all_problems_are_reported_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", no_task)
    inv = write_inventory(tmp_path, [agent(replicas=-1, port=0), agent(name="ok", host_port=19000, hosts="nope")])
    assert cli.main(["status", "-i", str(inv)]) == errors.EXIT_INVALID_INPUT
    err = capsys.readouterr().err
    assert "has 3 problem(s)" in err
    assert "field 'replicas'" in err and "field 'port'" in err and "nope" in err


def test_valid_catalog_reaches_the_runner_with_agent_extravars(tmp_path, monkeypatch):
    seen = {}

    def fake_run(req, display):
        seen["req"] = req
        from agentfactory_cli.runner import RunResult

        return RunResult("successful", 0, {}, tmp_path)

    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", fake_run)
    inv = write_inventory(tmp_path, [agent()])
    assert cli.main(["scale", "-i", str(inv), "--agent", "bot", "--replicas", "0", "--json"]) == 0
    assert seen["req"].playbook == "agents.yml"
    assert seen["req"].extravars == {"agentfactory_action": "deploy", "agentfactory_only_agents": ["bot"],
                                     "agentfactory_replicas": {"bot": 0}}


@pytest.mark.parametrize(("argv", "message"), [
    (["scale", "--agent", "bot"], "--replicas"),
    (["scale", "--replicas", "2"], "exactly one --agent"),
    (["stop", "--agent", "nobody"], "unknown agent(s): nobody (the catalog has: bot)"),
    (["destroy"], "pass --yes"),
])
def test_agent_verbs_refuse_bad_requests(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr("agentfactory_cli.runner.run_playbook", no_task)
    inv = write_inventory(tmp_path, [agent()])
    assert cli.main([*argv, "-i", str(inv)]) == errors.EXIT_INVALID_INPUT
    assert message in capsys.readouterr().err
