"""Prometheus file_sd targets from the inventory and the fleet model (plugins/plugin_utils/targets.py)."""

from __future__ import annotations

import json

import pytest

from agentfactory_cli.model import targets as t

IMAGE = "registry.lab:5000/agents/sample:1.0"

GROUPS = {
    "all": ["mon1", "agent1", "agent2", "gpu1", "db1"],
    "ungrouped": ["db1"],
    "monitoring": ["mon1"],
    "agent_hosts": ["agent1", "agent2", "gpu1"],
    "gpu": ["gpu1"],
}


def test_host_address_prefers_override_then_ansible_host():
    hostvars = {
        "a": {"agentfactory_host_address": "10.0.0.5", "ansible_host": "127.0.0.1"},
        "b": {"ansible_host": "b.example"},
        "c": {},
    }
    assert t.host_address("a", hostvars) == "10.0.0.5"
    assert t.host_address("b", hostvars) == "b.example"
    assert t.host_address("c", hostvars) == "c"
    assert t.host_address("d", None) == "d"


def test_node_targets_every_host_with_port():
    got = t.node_targets(GROUPS, {"mon1": {"ansible_host": "fd00::1"}}, port=9100)
    assert got[0] == {"targets": ["[fd00::1]:9100"], "labels": {"host": "mon1"}}
    assert [g["labels"]["host"] for g in got] == GROUPS["all"]
    assert got[1]["targets"] == ["agent1:9100"]


def test_node_targets_pattern_and_port_checked():
    assert t.node_targets(GROUPS, port="9200", pattern="monitoring") == [
        {"targets": ["mon1:9200"], "labels": {"host": "mon1"}}
    ]
    with pytest.raises(t.TargetError, match="1-65535"):
        t.node_targets(GROUPS, port=70000)


@pytest.mark.parametrize("catalog", [None, []])
def test_empty_catalog_gives_empty_valid_file(catalog):
    got = t.agent_targets(catalog, GROUPS, {})
    assert got == []
    assert json.dumps(got) == "[]"


def test_agent_replicas_on_each_host():
    catalog = [
        {"name": "support-bot", "image": IMAGE, "replicas": 2, "host_port": 18080, "hosts": "agent_hosts:!gpu",
         "metrics": {"path": "/metrics"}},
        {"name": "trainer", "image": IMAGE, "replicas": 1, "host_port": 19000, "hosts": "gpu",
         "metrics": {"path": "/custom/metrics"}},
    ]
    got = t.agent_targets(catalog, GROUPS, {"agent2": {"agentfactory_host_address": "10.1.1.2"}})
    assert [(g["targets"][0], g["labels"]["agent"], g["labels"]["replica"]) for g in got] == [
        ("agent1:18080", "support-bot", "0"),
        ("agent1:18081", "support-bot", "1"),
        ("10.1.1.2:18080", "support-bot", "0"),
        ("10.1.1.2:18081", "support-bot", "1"),
        ("gpu1:19000", "trainer", "0"),
    ]
    assert got[2]["labels"] == {
        "agent": "support-bot", "host": "agent2", "replica": "0", "__metrics_path__": "/metrics",
    }
    assert got[4]["labels"]["__metrics_path__"] == "/custom/metrics"


def test_agent_defaults_hosts_and_metrics_path():
    got = t.agent_targets([{"name": "a", "image": IMAGE, "replicas": 1, "host_port": 8000}], GROUPS)
    assert [g["labels"]["host"] for g in got] == ["agent1", "agent2", "gpu1"]
    assert {g["labels"]["__metrics_path__"] for g in got} == {"/metrics"}


def test_agents_completed_like_the_agent_role_does():
    """host_port defaults to port (8080), and agentfactory_agent_defaults is a layer under the agent."""
    defaults = {"metrics": {"path": "/internal/metrics"}, "replicas": 2, "resources": {"memory": "1g"}}
    catalog = [{"name": "a", "image": IMAGE, "hosts": "gpu"},
               {"name": "b", "image": IMAGE, "hosts": "gpu", "port": 9000, "replicas": 1, "metrics": {"path": "/m"}}]
    got = t.agent_targets(catalog, GROUPS, {}, defaults)
    assert [(g["targets"][0], g["labels"]["__metrics_path__"]) for g in got] == [
        ("gpu1:8080", "/internal/metrics"), ("gpu1:8081", "/internal/metrics"), ("gpu1:9000", "/m"),
    ]
    assert t.agent_limits(catalog, GROUPS, defaults) == [
        {"name": "a", "memory_bytes": 1024**3, "cpus": None},
        {"name": "b", "memory_bytes": 1024**3, "cpus": None},
    ]


def test_zero_replicas_give_no_targets():
    catalog = [
        {"name": "idle", "image": IMAGE, "replicas": 0, "host_port": 8000, "hosts": "agent_hosts"},
    ]
    assert t.agent_targets(catalog, GROUPS) == []


def test_an_invalid_catalog_is_refused_with_every_problem():
    with pytest.raises(t.TargetError, match=r"2 problem\(s\)(.|\n)*agent 'x'(.|\n)*agent 'y'"):
        t.agent_targets([{"name": "x", "image": IMAGE, "replicas": -1},
                         {"name": "y", "image": IMAGE, "metrics": {"path": "m"}}], GROUPS)


def test_agent_limits():
    catalog = [
        {"name": "a", "image": IMAGE, "port": 8000, "resources": {"memory": "512m", "cpus": 0.5}},
        {"name": "b", "image": IMAGE, "port": 8100, "resources": {"cpus": 2}},
        {"name": "c", "image": IMAGE, "port": 8200},
    ]
    assert t.agent_limits(catalog, GROUPS) == [
        {"name": "a", "memory_bytes": 512 * 1024**2, "cpus": 0.5},
        {"name": "b", "memory_bytes": None, "cpus": 2},
        {"name": "c", "memory_bytes": None, "cpus": None},
    ]
    assert t.agent_limits(None, GROUPS) == []


def test_filter_plugin_exposes_the_functions():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "targets.py"
    spec = importlib.util.spec_from_file_location("af_filter_targets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters = module.FilterModule().filters()
    assert filters["agentfactory_agent_targets"](None, GROUPS, {}) == []
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="agent 'x'"):
        filters["agentfactory_agent_targets"]([{"name": "x", "image": IMAGE, "replicas": -1}], GROUPS, {})


def test_replicas_override_changes_the_targets_of_that_agent_only():
    """agentfactory scale: the target files list the replicas the agent role runs in the same run."""
    catalog = [
        {"name": "support-bot", "image": IMAGE, "replicas": 2, "host_port": 18080, "hosts": "agent_hosts:!gpu"},
        {"name": "trainer", "image": IMAGE, "replicas": 1, "host_port": 19000, "hosts": "gpu"},
    ]
    got = t.agent_targets(catalog, GROUPS, {}, None, {"support-bot": 3})
    assert [g["targets"][0] for g in got] == [
        "agent1:18080", "agent1:18081", "agent1:18082",
        "agent2:18080", "agent2:18081", "agent2:18082",
        "gpu1:19000",
    ]
    assert got[2]["labels"]["replica"] == "2"
    scaled_to_zero = t.agent_targets(catalog, GROUPS, {}, replicas={"support-bot": 0, "trainer": "2"})
    assert [g["targets"][0] for g in scaled_to_zero] == ["gpu1:19000", "gpu1:19001"]
    assert t.agent_targets(catalog, GROUPS, {}, replicas={}) == t.agent_targets(catalog, GROUPS, {})
    assert t.agent_targets(catalog, GROUPS, {}, replicas={"nobody": 4}) == t.agent_targets(catalog, GROUPS, {})


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        ({"x": -1}, "agent x: replicas"),
        ({"x": "many"}, "agent x: replicas"),
        ({"x": 70000}, r"agent 'x': field 'replicas': must be at most 100 per host"),
        (["x"], "replica overrides must be a mapping"),
    ],
)
def test_bad_replicas_override_is_an_error(replicas, message):
    with pytest.raises(t.TargetError, match=message):
        t.agent_targets([{"name": "x", "image": IMAGE, "replicas": 1, "host_port": 8000}], GROUPS, replicas=replicas)


def test_filter_plugin_passes_the_replicas_override():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "targets.py"
    spec = importlib.util.spec_from_file_location("af_filter_targets_override", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters = module.FilterModule().filters()
    # Positional, as the prometheus role calls it: groups, hostvars, defaults, replicas.
    got = filters["agentfactory_agent_targets"]([{"name": "x", "image": IMAGE, "host_port": 8000, "hosts": "gpu"}],
                                                GROUPS, {}, {}, {"x": 2})
    assert [g["targets"][0] for g in got] == ["gpu1:8000", "gpu1:8001"]
