"""The HAProxy gateway's frontends, backends and servers from the catalog (plugins/plugin_utils/gateway.py)."""

from __future__ import annotations

import pytest

from agentfactory_cli.model import gateway as g

GROUPS = {
    "all": ["gw1", "a1", "a2", "gpu1"],
    "gateway": ["gw1"],
    "agent_hosts": ["gw1", "a1", "a2"],
    "gpu": ["gpu1"],
}
HOSTVARS = {
    "gw1": {"ansible_host": "127.0.0.1", "agentfactory_host_address": "10.0.0.1"},
    "a1": {"ansible_host": "a1.example"},
    "a2": {},
    "gpu1": {"ansible_host": "fd00::7"},
}
CATALOG = [
    {"name": "chat", "image": "r/chat:1", "replicas": 2, "host_port": 18080, "hosts": "agent_hosts:!gw1",
     "gateway": {"port": 28080}, "health": {"path": "/ready", "interval": 2, "timeout": 0.5, "retries": 4}},
    {"name": "vision", "image": "r/vision:1", "hosts": "gpu", "port": 9000, "gateway": {"port": 29000}},
    {"name": "internal", "image": "r/internal:1", "replicas": 1, "host_port": 19000},
    {"name": "idle", "image": "r/idle:1", "replicas": 0, "host_port": 19100, "gateway": {"port": 29100}},
]


def test_server_name_is_host_underscore_replica():
    assert g.server_name("af-lab-2", "reference-1") == "af-lab-2_reference-1"
    assert g.server_name("gw-01.example.internal", "chat-0") == "gw-01.example.internal_chat-0"
    # Characters HAProxy refuses in names become "-" in the host part.
    assert g.server_name("host with space/x", "chat-0") == "host-with-space-x_chat-0"
    with pytest.raises(g.GatewayError):
        g.server_name("", "chat-0")
    with pytest.raises(g.GatewayError):
        g.server_name("a1", "bad name")


@pytest.mark.parametrize("catalog", [None, []])
def test_empty_catalog_has_no_backends(catalog):
    assert g.backends(catalog, GROUPS, HOSTVARS) == []


def test_only_agents_with_a_gateway_port_get_a_backend():
    got = g.backends(CATALOG, GROUPS, HOSTVARS)
    assert [b["name"] for b in got] == ["chat", "vision", "idle"]
    assert [b["frontend"] for b in got] == ["fe_chat", "fe_vision", "fe_idle"]
    assert [b["port"] for b in got] == [28080, 29000, 29100]
    assert g.backends([c for c in CATALOG if "gateway" not in c], GROUPS, HOSTVARS) == []


def test_every_replica_on_every_host_in_inventory_order():
    chat = g.backends(CATALOG, GROUPS, HOSTVARS)[0]
    assert chat["servers"] == [
        {"name": "a1_chat-0", "host": "a1", "replica": "chat-0", "index": 0, "address": "a1.example:18080"},
        {"name": "a1_chat-1", "host": "a1", "replica": "chat-1", "index": 1, "address": "a1.example:18081"},
        {"name": "a2_chat-0", "host": "a2", "replica": "chat-0", "index": 0, "address": "a2:18080"},
        {"name": "a2_chat-1", "host": "a2", "replica": "chat-1", "index": 1, "address": "a2:18081"},
    ]


def test_addresses_follow_host_address_and_bracket_ipv6():
    vision = g.backends(CATALOG, GROUPS, HOSTVARS)[1]
    assert [s["address"] for s in vision["servers"]] == ["[fd00::7]:9000"]  # host_port defaults to port
    catalog = [{**CATALOG[0], "hosts": "gw1"}]
    assert g.backends(catalog, GROUPS, HOSTVARS)[0]["servers"][0]["address"] == "10.0.0.1:18080"
    assert g.backends(catalog, GROUPS, None)[0]["servers"][0]["address"] == "gw1:18080"


def test_health_settings_in_haproxy_units():
    got = g.backends(CATALOG, GROUPS, HOSTVARS)
    assert got[0]["health"] == {"path": "/ready", "inter_ms": 2000, "timeout_ms": 500, "fall": 4}
    # Built-in health defaults: /healthz every 10 s, 5 s timeout, 3 retries.
    assert got[1]["health"] == {"path": "/healthz", "inter_ms": 10000, "timeout_ms": 5000, "fall": 3}


def test_defaults_layer_applies():
    got = g.backends(CATALOG[:2], GROUPS, HOSTVARS, defaults={"health": {"interval": 1}})
    assert got[1]["health"]["inter_ms"] == 1000
    assert got[0]["health"]["inter_ms"] == 2000  # the agent's own value wins


def test_zero_replicas_gives_a_backend_without_servers():
    idle = g.backends(CATALOG, GROUPS, HOSTVARS)[2]
    assert idle["servers"] == []


def test_server_count_follows_replicas_times_hosts():
    catalog = [{**CATALOG[0], "replicas": 3}]
    assert len(g.backends(catalog, GROUPS, HOSTVARS)[0]["servers"]) == 6


def test_an_invalid_catalog_is_refused_with_the_catalog_problems():
    catalog = [CATALOG[0], {**CATALOG[1], "gateway": {"port": 28080}}]
    with pytest.raises(g.GatewayError, match=r"agent 'vision': field 'gateway.port': port 28080 .* agent 'chat'"):
        g.backends(catalog, GROUPS, HOSTVARS)


def test_bad_health_is_an_error():
    with pytest.raises(g.GatewayError, match=r"health\.interval"):
        g.backends([{**CATALOG[0], "health": {"interval": 0}}], GROUPS, HOSTVARS)
    with pytest.raises(g.GatewayError, match=r"health\.path"):
        g.backends([{**CATALOG[0], "health": {"path": "ready"}}], GROUPS, HOSTVARS)


def test_port_problems_reserved():
    backends = g.backends([{**CATALOG[0], "gateway": {"port": 8405}}], GROUPS, HOSTVARS)
    assert g.port_problems(backends, "gw1", {8405: "the metrics frontend"}) == [
        "agent chat: gateway.port 8405 on gw1 is already used by the metrics frontend",
    ]
    assert g.port_problems(g.backends(CATALOG, GROUPS, HOSTVARS), "gw1", {"8405": "m"}) == []


def test_replicas_override_changes_the_servers_of_that_agent_only():
    """agentfactory scale: the backends list the replicas the agent role runs in the same run."""
    got = g.backends(CATALOG, GROUPS, HOSTVARS, replicas={"chat": 3, "idle": 1})
    chat, vision, idle = got
    assert [s["name"] for s in chat["servers"]] == [
        "a1_chat-0", "a1_chat-1", "a1_chat-2", "a2_chat-0", "a2_chat-1", "a2_chat-2",
    ]
    assert chat["servers"][2]["address"] == "a1.example:18082"
    assert vision["servers"] == g.backends(CATALOG, GROUPS, HOSTVARS)[1]["servers"]
    assert [s["name"] for s in idle["servers"]] == ["gw1_idle-0", "a1_idle-0", "a2_idle-0"]
    # Scaled to zero: the frontend stays, with an empty backend (HAProxy answers 503).
    (chat,) = g.backends(CATALOG[:1], GROUPS, HOSTVARS, replicas={"chat": 0})
    assert chat["port"] == 28080
    assert chat["servers"] == []


def test_empty_or_unknown_replicas_override_changes_nothing():
    plain = g.backends(CATALOG, GROUPS, HOSTVARS)
    assert g.backends(CATALOG, GROUPS, HOSTVARS, replicas={}) == plain
    assert g.backends(CATALOG, GROUPS, HOSTVARS, replicas=None) == plain
    assert g.backends(CATALOG, GROUPS, HOSTVARS, replicas={"nobody": 5}) == plain


@pytest.mark.parametrize("replicas", [{"chat": -1}, {"chat": "many"}, {"chat": True}, ["chat", 2]])
def test_bad_replicas_override_is_an_error(replicas):
    with pytest.raises(g.GatewayError, match="replica"):
        g.backends(CATALOG, GROUPS, HOSTVARS, replicas=replicas)


def test_replicas_override_given_as_text_is_read():
    assert len(g.backends(CATALOG[:1], GROUPS, HOSTVARS, replicas={"chat": "1"})[0]["servers"]) == 2


def test_a_scale_that_takes_a_gateway_port_is_refused():
    catalog = [
        {**CATALOG[2], "hosts": "gw1"},  # internal-0 on gw1 listens on 19000; scaled to 2, also 19001
        {**CATALOG[1], "gateway": {"port": 19001}},
    ]
    assert g.backends(catalog, GROUPS, HOSTVARS)
    with pytest.raises(g.GatewayError, match=r"agent 'vision': field 'gateway.port': port 19001 on host 'gw1' "
                                             r"\(group 'gateway'\) is already used by agent 'internal'"):
        g.backends(catalog, GROUPS, HOSTVARS, replicas={"internal": 2})


def test_filter_plugin_passes_the_replicas_override():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "gateway.py"
    spec = importlib.util.spec_from_file_location("af_filter_gateway", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters = module.FilterModule().filters()
    # Positional, as the gateway role calls it: groups, hostvars, defaults, replicas.
    (chat,) = filters["agentfactory_gateway_backends"](CATALOG[:1], GROUPS, HOSTVARS, {}, {"chat": 1})
    assert [s["name"] for s in chat["servers"]] == ["a1_chat-0", "a2_chat-0"]
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="agent chat: replicas override"):
        filters["agentfactory_gateway_backends"](CATALOG[:1], GROUPS, HOSTVARS, {}, {"chat": -1})


# ----- API clients ---------------------------------------------------------------------------

KEY = "k" * 16


def _client(name="demo", key=None, agents=("*",), **extra):
    return {"name": name, "key": key if key is not None else f"{name}-key-0123456789", "agents": list(agents), **extra}


def test_clients_carry_digests_not_keys_sorted_by_name():
    import hashlib

    got = g.clients([_client("zeta", agents=["chat"], rate_limit=5), _client("demo")], 100, CATALOG)
    assert [c["name"] for c in got] == ["demo", "zeta"]
    assert got[0] == {"name": "demo", "digests": [hashlib.sha256(b"demo-key-0123456789").hexdigest()],
                      "agents": ["*"], "rate_limit": 100}
    assert got[1]["rate_limit"] == 5 and got[1]["agents"] == ["chat"]
    assert "zeta-key-0123456789" not in repr(got)
    assert g.clients(None, 100) == []


def test_previous_keys_are_admitted_as_the_same_client():
    import hashlib

    (got,) = g.clients([_client("demo", previous_keys=["old-key-0123456789"])], 100)
    assert got["digests"] == [hashlib.sha256(k.encode()).hexdigest()
                              for k in ("demo-key-0123456789", "old-key-0123456789")]
    assert "old-key-0123456789" not in repr(got)


def test_allowed_clients_per_agent():
    clients = g.clients([_client("demo"), _client("chatonly", agents=["chat"]), _client("none", agents=[])], 100)
    assert g.allowed_clients(clients, "chat") == ["chatonly", "demo"]
    assert g.allowed_clients(clients, "vision") == ["demo"]


@pytest.mark.parametrize(("clients", "message"), [
    ([_client(key="")], "gateway client 'demo': key is empty"),
    ([_client(key="short")], "gateway client 'demo': key is too short (5 characters, at least 16)"),
    ([_client(key="with space 0123456789")], "gateway client 'demo': key must be printable ASCII"),
    ([_client(), _client()], "gateway client 'demo': the name is used by more than one client"),
    ([_client("a", key=KEY), _client("b", key=KEY)], "gateway client 'b': key is the same as a key of"),
    ([_client("a"), _client("b", previous_keys=["a-key-0123456789"])],
     "gateway client 'b': a previous key is the same as a key of gateway client 'a'"),
    ([_client(previous_keys=["short"])], "gateway client 'demo': a previous key is too short"),
    ([_client(previous_keys=KEY)], "gateway client 'demo': previous_keys must be a list"),
    ([_client(agents=["chat", "nope"])], "gateway client 'demo': agent(s) nope not in the catalog"),
    ([{**_client(), "agents": "chat"}], "gateway client 'demo': agents must be a list"),
    ([_client(rate_limit=0)], "gateway client 'demo': rate_limit must be an integer >= 1"),
    ([_client(name="bad name")], "gateway client 'bad name': name must be"),
    ([{"key": KEY, "agents": []}], "gateway client #1: name must be"),
    ([_client(extra_field=1)], "gateway client 'demo': unknown field(s) extra_field"),
    ({"demo": KEY}, "gateway_clients must be a list"),
])
def test_client_problems_name_the_client_and_never_the_key(clients, message):
    problems = g.client_problems(clients, CATALOG)
    assert any(p.startswith(message) for p in problems), problems
    assert not any(KEY in p or "demo-key-0123456789" in p for p in problems), problems


def test_good_clients_have_no_problems():
    assert g.client_problems([_client(), _client("lim", agents=[]), _client("c", agents=["chat", "internal"])],
                             CATALOG) == []
    assert g.client_problems(None, CATALOG) == []


def test_clients_refuse_bad_lists():
    with pytest.raises(g.GatewayError, match="key is too short"):
        g.clients([_client(key="short")], 100)
    with pytest.raises(g.GatewayError, match="gateway_rate_limit"):
        g.clients([_client()], 0)
