"""Placement of agents on hosts, replica by replica (what the agent role converges to)."""

from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import (
    agents_for_host,
    catalog_problems,
    health_spec,
    unknown_agents,
)

GROUPS = {"all": ["a1", "a2", "gpu1"], "agent_hosts": ["a1", "a2"], "gpu": ["gpu1"]}
CATALOG = [
    {"name": "chat", "image": "r/chat:1", "replicas": 2, "host_port": 18080, "secrets": {"K": "v"}},
    {"name": "vision", "image": "r/vision:1", "hosts": "gpu", "port": 9000},
    {"name": "idle", "image": "r/idle:1", "replicas": 0, "host_port": 19000},
]


def test_agents_follow_their_placement():
    assert [a["name"] for a in agents_for_host(CATALOG, "a1", GROUPS)] == ["chat", "idle"]
    assert [a["name"] for a in agents_for_host(CATALOG, "gpu1", GROUPS)] == ["vision"]


def test_replicas_get_names_and_consecutive_host_ports():
    chat = agents_for_host(CATALOG, "a2", GROUPS)[0]
    assert chat["replica_list"] == [
        {"index": 0, "name": "chat-0", "host_port": 18080},
        {"index": 1, "name": "chat-1", "host_port": 18081},
    ]
    vision = agents_for_host(CATALOG, "gpu1", GROUPS)[0]
    assert vision["replica_list"] == [{"index": 0, "name": "vision-0", "host_port": 9000}]  # host_port = port
    assert agents_for_host(CATALOG, "a1", GROUPS)[1]["replica_list"] == []


def test_only_and_replica_overrides():
    placed = agents_for_host(CATALOG, "a1", GROUPS, only=["chat"], replicas={"chat": 3})
    assert [a["name"] for a in placed] == ["chat"]
    assert [r["host_port"] for r in placed[0]["replica_list"]] == [18080, 18081, 18082]


def test_defaults_layer_under_each_agent():
    placed = agents_for_host(CATALOG, "a1", GROUPS, defaults={"health": {"timeout": 9}, "config": {"model": "m"}})
    assert placed[0]["health"] == {"path": "/healthz", "interval": 10, "timeout": 9, "retries": 3}
    assert placed[0]["config"] == {"model": "m"}


def test_health_spec_carries_no_secrets():
    spec = health_spec(agents_for_host(CATALOG, "a1", GROUPS))
    assert spec[0] == {"name": "chat", "runtime": "docker", "replicas": 2, "host_port": 18080,
                       "health": {"path": "/healthz", "interval": 10, "timeout": 5, "retries": 3}}
    assert all("secrets" not in s for s in spec)


def test_problems_and_unknown_names():
    assert catalog_problems(CATALOG, GROUPS) == []
    assert any("replicas" in p for p in catalog_problems([{**CATALOG[0], "replicas": -2}], GROUPS))
    assert unknown_agents(CATALOG, ["chat", "nope", "zzz"]) == ["nope", "zzz"]


def test_image_override_and_tags():
    from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import env_dict, with_tag

    placed = agents_for_host(CATALOG, "a1", GROUPS, images={"chat": "r/chat:2"})
    assert placed[0]["image"] == "r/chat:2"
    assert with_tag("registry.lab:5000/agents/bot:1.0", "1.1") == "registry.lab:5000/agents/bot:1.1"
    assert with_tag("bot", "2") == "bot:2"
    assert with_tag("bot:1", "other/bot:3") == "other/bot:3"
    assert env_dict(["A=1", "B=x=y", "C"]) == {"A": "1", "B": "x=y", "C": ""}


def test_placed_agents_carry_secret_names_never_values():
    from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import agent_secrets

    defaults = {"secrets": {"SHARED": "d-value", "K": "d-k"}}
    placed = agents_for_host(CATALOG, "a1", GROUPS, defaults=defaults)
    chat = placed[0]
    assert "secrets" not in chat and chat["secret_names"] == ["K", "SHARED"]
    assert placed[1]["secret_names"] == ["K", "SHARED"]  # idle: the defaults' only
    assert agents_for_host(CATALOG, "a1", GROUPS)[1]["secret_names"] == []
    for value in ("d-value", "d-k"):
        assert value not in str(placed)
    # The values, merged as normalise_agent merges them, for the no_log task only.
    assert agent_secrets(CATALOG, "chat", defaults) == {"SHARED": "d-value", "K": "v"}
    assert agent_secrets(CATALOG, "vision") == {}
    assert agent_secrets(CATALOG, "nope", defaults) == {}


def test_memory_promised_adds_up_the_limits_of_every_replica():
    from ansible_collections.agentfactory.fleet.plugins.plugin_utils.fleet import memory_promised

    catalog = [{"name": "a", "image": "r/a:1", "replicas": 3, "host_port": 18000, "resources": {"memory": "512m"}},
               {"name": "b", "image": "r/b:1", "replicas": 2, "host_port": 18100},
               {"name": "c", "image": "r/c:1", "replicas": 1, "host_port": 18200, "resources": {"memory": "1g"}}]
    assert memory_promised(agents_for_host(catalog, "a1", GROUPS)) == 3 * 512 * 1024**2 + 1024**3
    assert memory_promised(agents_for_host(catalog[1:2], "a1", GROUPS)) == 0


def test_placement_never_reads_a_secret_value():
    class Trap(dict):
        def __getitem__(self, key):
            raise AssertionError("a secret value was read")

        def values(self):
            raise AssertionError("a secret value was read")

        def items(self):
            raise AssertionError("a secret value was read")

    catalog = [{"name": "chat", "image": "r/chat:1", "secrets": Trap(API_KEY="x")}]
    assert agents_for_host(catalog, "a1", GROUPS)[0]["secret_names"] == ["API_KEY"]
