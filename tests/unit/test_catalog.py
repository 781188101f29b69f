"""Validation and normalisation of the agent catalog (plugins/plugin_utils/catalog.py)."""

from __future__ import annotations

import copy
import random

import pytest
import yaml
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.catalog import (
    AGENT_SCHEMA,
    BUILTIN_DEFAULTS,
    CATALOG_SCHEMA,
    DEFAULTS_SCHEMA,
    FIELDS,
    CatalogProblem,
    is_vault_encrypted,
    normalise_agent,
    validate_catalog,
)
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.placement import resolve_hosts
from jsonschema import Draft202012Validator

GROUPS = {
    "all": ["agent1", "agent2", "agent3", "mon1"],
    "agent_hosts": ["agent1", "agent2", "agent3"],
    "gpu": ["agent3"],
    "monitoring": ["mon1"],
    "empty": [],
    "ungrouped": [],
}

# The example from DESIGN.md ("The agent catalog"), every field, plus a systemd agent and an
# agent shipped as an archive, all placed so that no host port collides.
FULL_CATALOG_YAML = """
agentfactory_agents:
  - name: support-bot
    runtime: docker
    image: registry.lab:5000/agents/sample:1.0
    image_source: registry
    command: []
    replicas: 2
    port: 8080
    host_port: 18080
    hosts: agent_hosts
    env: {LOG_LEVEL: info}
    secrets: {API_KEY: "{{ vault_support_bot_api_key }}"}
    config: {model: small, temperature: 0.2}
    health: {path: /healthz, interval: 10, timeout: 5, retries: 3}
    metrics: {path: /metrics}
    gateway: {port: 28080}
    resources: {cpus: 1.0, memory: 512m}
    capabilities: [NET_BIND_SERVICE]
    update: {batch: 1, health_timeout: 60, rollback: true}
  - name: batch-worker
    runtime: systemd
    command: [/opt/agents/worker/bin/worker, --queue, default]
    replicas: 3
    port: 9000
    host_port: 19000
    hosts: "agent_hosts:!gpu"
    env: {WORKERS: "4"}
    health: {path: /ready, interval: 2.5, timeout: 1, retries: 5}
    resources: {cpus: 0.5, memory: 2g}
    update: {batch: 50%, health_timeout: 30, rollback: false}
  - name: offline-assistant
    image: agents/offline:2.1
    image_source: archive
    image_archive: files/offline-2.1.tar
    replicas: 1
    port: 8080
    host_port: 18090
    hosts: gpu
    config: {model: {name: tiny, quantised: true}, tools: [search, calc]}
"""


def full_catalog() -> list[dict]:
    return yaml.safe_load(FULL_CATALOG_YAML)["agentfactory_agents"]


def base_agent(**fields) -> dict:
    agent = {"name": "support-bot", "image": "registry.lab:5000/agents/sample:1.0", "host_port": 18080}
    agent.update(fields)
    return agent


def check(agents, **kwargs) -> list[CatalogProblem]:
    return validate_catalog(agents, GROUPS, **kwargs)


# --------------------------------------------------------------------------------------------
# Valid catalogs


def test_full_catalog_from_design_is_valid():
    assert check(full_catalog()) == []


def test_full_catalog_is_valid_in_strict_mode():
    assert check(full_catalog(), strict=True) == []


def test_full_catalog_matches_the_published_json_schema():
    Draft202012Validator.check_schema(CATALOG_SCHEMA)
    Draft202012Validator(CATALOG_SCHEMA).validate(full_catalog())


def test_every_documented_field_is_in_the_schema():
    assert set(AGENT_SCHEMA["properties"]) == set(FIELDS)
    assert set(DEFAULTS_SCHEMA["properties"]) == set(FIELDS) - {"name"}
    first = full_catalog()[0]
    assert set(first) == set(FIELDS) - {"image_archive"}


@pytest.mark.parametrize("agents", [None, []])
def test_empty_catalog_is_valid(agents):
    assert check(agents) == []


def test_minimal_agent_is_valid():
    assert check([{"name": "a", "image": "agents/a:1"}]) == []


def test_replicas_zero_is_valid_and_uses_no_port():
    agents = [base_agent(), base_agent(name="other", replicas=0)]
    assert check(agents) == []


# --------------------------------------------------------------------------------------------
# One malformed catalog per case: exactly one problem, on the expected agent and field.

LONG_NAME = "a" * 41

CASES = [
    # id, agents, expected agent, expected field, message fragment
    ("replicas-negative", [base_agent(replicas=-1)], "support-bot", "replicas",
     "must be an integer >= 0 (got -1)"),
    ("replicas-string", [base_agent(replicas="2")], "support-bot", "replicas", "(got '2')"),
    ("replicas-bool", [base_agent(replicas=True)], "support-bot", "replicas", "(got true)"),
    ("replicas-float", [base_agent(replicas=2.0)], "support-bot", "replicas", "(got 2.0)"),
    ("unknown-field-typo", [base_agent(replica=2)], "support-bot", "",
     "unknown field 'replica' (did you mean 'replicas'?)"),
    ("unknown-field-no-match", [base_agent(zzzzzz=1)], "support-bot", "",
     "expected one of: capabilities, command, config"),
    ("capability-all", [base_agent(capabilities=["ALL"])], "support-bot", "capabilities[0]", "CAP_ prefix"),
    ("capability-prefixed", [base_agent(capabilities=["CAP_NET_ADMIN"])], "support-bot", "capabilities[0]",
     "like NET_BIND_SERVICE"),
    ("name-uppercase", [base_agent(name="Support_Bot")], "#1", "name", "must be a DNS label"),
    ("name-too-long", [base_agent(name=LONG_NAME)], "#1", "name", "at most 40"),
    ("name-leading-dash", [base_agent(name="-bot")], "#1", "name", "(got '-bot')"),
    ("name-not-string", [base_agent(name=42)], "#1", "name", "(got 42)"),
    ("name-missing", [{"image": "x:1"}], "#1", "name", "is required"),
    ("runtime-unknown", [base_agent(runtime="podman")], "support-bot", "runtime",
     "must be one of 'docker', 'systemd' (got 'podman')"),
    ("image-missing-for-docker", [{"name": "support-bot"}], "support-bot", "image",
     "is required when runtime is 'docker'"),
    ("image-with-space", [base_agent(image="agents/a 1.0")], "support-bot", "image", "without spaces"),
    ("image-source-unknown", [base_agent(image_source="http")], "support-bot", "image_source",
     "one of 'registry', 'archive' (got 'http')"),
    ("image-archive-missing", [base_agent(image_source="archive")], "support-bot", "image_archive",
     "is required when image_source is 'archive'"),
    ("image-archive-unused", [base_agent(image_archive="files/a.tar")], "support-bot", "image_archive",
     "only used when image_source is 'archive'"),
    ("systemd-without-command", [{"name": "w", "runtime": "systemd"}], "w", "command",
     "is required when runtime is 'systemd'"),
    ("systemd-with-image", [{"name": "w", "runtime": "systemd", "command": ["/bin/w"], "image": "x:1"}],
     "w", "image", "only applies to runtime 'docker'"),
    ("command-not-list", [base_agent(command="run.sh --fast")], "support-bot", "command",
     "must be a list of strings"),
    ("command-empty-item", [base_agent(command=["run", ""])], "support-bot", "command[1]",
     "must be a non-empty string (got '')"),
    ("port-zero", [base_agent(port=0)], "support-bot", "port", "from 1 to 65535 (got 0)"),
    ("port-too-big", [base_agent(port=70000)], "support-bot", "port", "(got 70000)"),
    ("host-port-range-overflow", [base_agent(host_port=65535, replicas=2)], "support-bot", "host_port",
     "need ports up to 65536"),
    ("host-port-default-overflow", [{"name": "a", "image": "x:1", "port": 65535, "replicas": 3}], "a",
     "host_port", "(host_port defaults to port)"),
    ("hosts-unknown-group", [base_agent(hosts="agnet_hosts")], "support-bot", "hosts",
     "'agnet_hosts' is neither a group nor a host in the inventory (did you mean 'agent_hosts'?)"),
    ("hosts-typo-inside-union", [base_agent(hosts="agent_hosts:!gpuu")], "support-bot", "hosts",
     "pattern 'agent_hosts:!gpuu': 'gpuu' is neither a group nor a host"),
    ("hosts-matches-none", [base_agent(hosts="agent_hosts:&monitoring")], "support-bot", "hosts",
     "matches no host in the inventory"),
    ("hosts-empty-group", [base_agent(hosts="empty")], "support-bot", "hosts", "matches no host"),
    ("hosts-wildcard-matches-none", [base_agent(hosts="web*")], "support-bot", "hosts", "matches no host"),
    ("hosts-bad-regex", [base_agent(hosts="~agent(")], "support-bot", "hosts",
     "not a valid regular expression"),
    ("hosts-not-string", [base_agent(hosts=3)], "support-bot", "hosts",
     "an inventory group, host or pattern"),
    ("hosts-empty-list", [base_agent(hosts=[])], "support-bot", "hosts", "(got a list)"),
    ("env-int-value", [base_agent(env={"LOG_LEVEL": 1})], "support-bot", "env.LOG_LEVEL",
     "must be a string (got 1); quote numbers"),
    ("env-bool-value", [base_agent(env={"DEBUG": False})], "support-bot", "env.DEBUG", "(got false)"),
    ("env-bad-name", [base_agent(env={"LOG-LEVEL": "x"})], "support-bot", "env.LOG-LEVEL",
     "letters, digits and '_'"),
    ("env-not-mapping", [base_agent(env=["LOG_LEVEL=info"])], "support-bot", "env",
     "must be a mapping of environment variable names to strings (got a list)"),
    ("secret-not-string", [base_agent(secrets={"API_KEY": 12345})], "support-bot", "secrets.API_KEY",
     "got an integer; the value is not shown"),
    ("secret-empty", [base_agent(secrets={"API_KEY": "  "})], "support-bot", "secrets.API_KEY",
     "must not be empty"),
    ("secret-bad-name", [base_agent(secrets={"api.key": "{{ vault_k }}"})], "support-bot",
     "secrets.api.key", "letters, digits and '_'"),
    ("config-not-mapping", [base_agent(config=["model", "small"])], "support-bot", "config",
     "must be a mapping"),
    ("health-interval-zero", [base_agent(health={"interval": 0})], "support-bot", "health.interval",
     "must be a number of seconds > 0 (got 0)"),
    ("health-timeout-negative", [base_agent(health={"timeout": -5})], "support-bot", "health.timeout",
     "(got -5)"),
    ("health-retries-zero", [base_agent(health={"retries": 0})], "support-bot", "health.retries",
     "an integer >= 1"),
    ("health-path-relative", [base_agent(health={"path": "healthz"})], "support-bot", "health.path",
     "starting with '/'"),
    ("health-unknown-key", [base_agent(health={"intervall": 5})], "support-bot", "health",
     "unknown field 'intervall' (did you mean 'interval'?)"),
    ("health-not-mapping", [base_agent(health="/healthz")], "support-bot", "health",
     "must be a mapping with the keys path, interval, timeout, retries (got '/healthz')"),
    ("metrics-path-relative", [base_agent(metrics={"path": "metrics"})], "support-bot", "metrics.path",
     "starting with '/'"),
    ("resources-cpus-zero", [base_agent(resources={"cpus": 0})], "support-bot", "resources.cpus",
     "must be a number of CPUs > 0, like 0.5 or 2 (got 0)"),
    ("resources-memory-no-unit", [base_agent(resources={"memory": "512"})], "support-bot",
     "resources.memory", "a size like 512m or 2g (a whole number followed by b, k, m or g) (got '512')"),
    ("resources-memory-int", [base_agent(resources={"memory": 536870912})], "support-bot",
     "resources.memory", "(got 536870912)"),
    ("resources-memory-mb", [base_agent(resources={"memory": "512mb"})], "support-bot",
     "resources.memory", "(got '512mb')"),
    ("resources-memory-too-small", [base_agent(resources={"memory": "4m"})], "support-bot",
     "resources.memory", "at least 6m"),
    ("resources-unknown-key", [base_agent(resources={"mem": "1g"})], "support-bot", "resources",
     "unknown field 'mem' (did you mean 'memory'?)"),
    ("update-batch-zero", [base_agent(update={"batch": 0})], "support-bot", "update.batch",
     "must be an integer >= 1 or a percentage from 1% to 100% (got 0)"),
    ("update-batch-zero-percent", [base_agent(update={"batch": "0%"})], "support-bot", "update.batch",
     "(got '0%')"),
    ("update-batch-over-100", [base_agent(update={"batch": "101%"})], "support-bot", "update.batch",
     "(got '101%')"),
    ("update-batch-bare-string", [base_agent(update={"batch": "2"})], "support-bot", "update.batch",
     "(got '2')"),
    ("update-rollback-string", [base_agent(update={"rollback": "yes"})], "support-bot", "update.rollback",
     "must be true or false (got 'yes')"),
    ("update-health-timeout-zero", [base_agent(update={"health_timeout": 0})], "support-bot",
     "update.health_timeout", "> 0 (got 0)"),
    ("agent-not-mapping", [base_agent(), "support-bot"], "#2", "", "must be a mapping of agent fields"),
    ("duplicate-name", [base_agent(), base_agent(host_port=28080)], "support-bot", "name",
     "agents #1 and #2 are both named 'support-bot' (names must be unique)"),
    ("port-collision", [base_agent(replicas=2), base_agent(name="other", host_port=18081, hosts="gpu")],
     "other", "host_port", "host port 18081 on host 'agent3' already used by agent 'support-bot' "
     "(host ports 18080-18081)"),
    ("port-collision-default-ports", [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}],
     "b", "host_port", "host port 8080 on hosts 'agent1', 'agent2', 'agent3' already used by agent 'a'"),
    ("gateway-port-shared", [base_agent(gateway={"port": 28080}),
                             base_agent(name="other", host_port=19000, gateway={"port": 28080})],
     "other", "gateway.port", "port 28080 is already the gateway port of agent 'support-bot'"),
    ("catalog-not-list", {"support-bot": base_agent()}, "", "", "must be a list of agents (got a mapping)"),
]


@pytest.mark.parametrize(("agents", "agent", "field", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_catalog(agents, agent, field, fragment):
    problems = check(agents)
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert (problem.agent, problem.field) == (agent, field)
    assert fragment in problem.message


def test_there_are_many_distinct_malformed_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 25


def test_problem_line_names_agent_and_field():
    (problem,) = check([base_agent(replicas=-1)])
    assert str(problem) == "agent 'support-bot': field 'replicas': must be an integer >= 0 (got -1)"


def test_problem_line_for_unknown_field_and_positions():
    problems = check([base_agent(replica=2), {"image": "x:1"}])
    assert [str(p) for p in problems] == [
        "agent 'support-bot': unknown field 'replica' (did you mean 'replicas'?)",
        "agent #2: field 'name': is required",
    ]
    assert problems[1].index == 2
    assert problems[1].as_dict() == {"agent": "#2", "field": "name", "message": "is required", "index": 2}


def test_problem_line_for_the_catalog_and_the_defaults():
    (catalog,) = check("support-bot")
    assert str(catalog) == "agentfactory_agents: must be a list of agents (got 'support-bot')"
    (default,) = check([], defaults={"replicas": -1})
    assert str(default) == "agentfactory_agent_defaults: field 'replicas': must be an integer >= 0 (got -1)"


# --------------------------------------------------------------------------------------------
# All problems at once, in a stable order

MANY_PROBLEMS = [
    {"name": "zeta", "image": "x:1", "replica": 2, "health": {"interval": 0, "timeout": "5"},
     "env": {"A": 1}, "host_port": 30000},
    {"image": "y:1", "host_port": 31000},
    {"name": "alpha", "runtime": "systemd", "host_port": 32000, "update": {"batch": "0%"}},
    {"name": "zeta", "image": "z:1", "hosts": "nowhere", "resources": {"memory": "1x"}, "host_port": 33000},
]

MANY_EXPECTED = [
    ("zeta", ""),
    ("zeta", "env.A"),
    ("zeta", "health.interval"),
    ("zeta", "health.timeout"),
    ("#2", "name"),
    ("alpha", "command"),
    ("alpha", "update.batch"),
    ("zeta", "name"),
    ("zeta", "hosts"),
    ("zeta", "resources.memory"),
]


def test_all_problems_are_reported_at_once_in_catalog_then_field_order():
    problems = check(MANY_PROBLEMS)
    assert [(p.agent, p.field) for p in problems] == MANY_EXPECTED
    assert [p.index for p in problems] == [1, 1, 1, 1, 2, 3, 3, 4, 4, 4]


def test_order_is_stable_whatever_the_key_order():
    expected = [str(p) for p in check(MANY_PROBLEMS)]
    rng = random.Random(7)
    for _ in range(20):
        shuffled = []
        for agent in copy.deepcopy(MANY_PROBLEMS):
            items = list(agent.items())
            rng.shuffle(items)
            shuffled.append(dict(items))
        assert [str(p) for p in check(shuffled)] == expected


def test_defaults_problems_come_first_and_once():
    problems = check(MANY_PROBLEMS, defaults={"metrics": {"paht": "/m"}})
    assert (problems[0].agent, problems[0].field) == ("agentfactory_agent_defaults", "metrics")
    assert "did you mean 'path'" in problems[0].message
    assert sum(p.agent == "agentfactory_agent_defaults" for p in problems) == 1
    assert [(p.agent, p.field) for p in problems[1:]] == MANY_EXPECTED


def test_validation_does_not_modify_the_catalog():
    agents = full_catalog()
    before = copy.deepcopy(agents)
    check(agents, defaults={"env": {"TZ": "UTC"}})
    assert agents == before


# --------------------------------------------------------------------------------------------
# Placement and port collisions


@pytest.mark.parametrize(("pattern", "hosts"), [
    ("agent_hosts", ["agent1", "agent2", "agent3"]),
    ("all", ["agent1", "agent2", "agent3", "mon1"]),
    ("*", ["agent1", "agent2", "agent3", "mon1"]),
    ("mon1", ["mon1"]),
    ("gpu,monitoring", ["agent3", "mon1"]),
    ("gpu:monitoring", ["agent3", "mon1"]),
    (["gpu", "monitoring"], ["agent3", "mon1"]),
    ("agent_hosts:!gpu", ["agent1", "agent2"]),
    ("all:!monitoring:!agent1", ["agent2", "agent3"]),
    ("!monitoring", ["agent1", "agent2", "agent3"]),
    ("all:&gpu", ["agent3"]),
    ("agent*", ["agent1", "agent2", "agent3"]),
    ("agent_hosts[1-2]", ["agent2", "agent3"]),
    ("agent[!1]", ["agent2", "agent3"]),
    ("agent?:!agent2", ["agent1", "agent3"]),
    ("~agent[13]", ["agent1", "agent3"]),
    ("agent_hosts[0]", ["agent1"]),
    ("agent_hosts[-1]", ["agent3"]),
    ("agent_hosts[0:1]", ["agent1", "agent2"]),
    ("agent_hosts[1:]", ["agent2", "agent3"]),
    ("mon1, agent1", ["agent1", "mon1"]),
])
def test_resolve_hosts(pattern, hosts):
    assert resolve_hosts(pattern, GROUPS) == (hosts, [])


def test_resolve_hosts_without_all_group():
    assert resolve_hosts("all:!b", {"g1": ["a", "b"], "g2": ["c"]}) == (["a", "c"], [])


def test_resolve_hosts_complains_about_unknown_names_but_not_wildcards():
    hosts, complaints = resolve_hosts("agent_hosts:!xyz:web*", GROUPS)
    assert hosts == ["agent1", "agent2", "agent3"]
    assert complaints == ["'xyz' is neither a group nor a host in the inventory"]


def test_resolve_hosts_reads_brackets_after_a_name_as_a_subscript():
    # As in Ansible: agent[12] is host number 12 of "agent", not a wildcard class.
    hosts, complaints = resolve_hosts("agent[12]", GROUPS)
    assert hosts == []
    assert complaints and complaints[0].startswith("'agent' is neither a group nor a host")
    assert resolve_hosts("agent_hosts[12]", GROUPS) == (
        [], ["No hosts matched the subscripted pattern 'agent_hosts[12]'"])


def test_port_ranges_on_distinct_hosts_do_not_collide():
    agents = [base_agent(replicas=2, hosts="gpu"), base_agent(name="other", hosts="agent_hosts:!gpu")]
    assert check(agents) == []


def test_adjacent_port_ranges_do_not_collide():
    agents = [base_agent(replicas=2), base_agent(name="other", host_port=18082, replicas=5)]
    assert check(agents) == []


def test_port_collision_lists_shared_ports_and_hosts():
    agents = [
        base_agent(replicas=3),
        base_agent(name="later", host_port=18081, replicas=4, hosts="agent_hosts:!agent1"),
    ]
    (problem,) = check(agents)
    assert str(problem) == (
        "agent 'later': field 'host_port': host ports 18081-18082 on hosts 'agent2', 'agent3' "
        "already used by agent 'support-bot' (host ports 18080-18082)"
    )


def test_port_collision_with_several_agents_reports_each():
    agents = [base_agent(), base_agent(name="b", host_port=28080), base_agent(name="c", host_port=18080),
              base_agent(name="d", host_port=28080)]
    problems = check(agents)
    assert [(p.agent, p.field) for p in problems] == [("c", "host_port"), ("d", "host_port")]
    assert "agent 'support-bot'" in problems[0].message
    assert "agent 'b'" in problems[1].message


# --------------------------------------------------------------------------------------------
# Gateway ports

# agent1 is a gateway host and an agent host; the gateway binds every gateway port there.
GATEWAY_GROUPS = {**GROUPS, "gateway": ["agent1"]}


def test_gateway_ports_must_be_unique_naming_both_agents_and_the_port():
    agents = [base_agent(gateway={"port": 28080}), base_agent(name="b", host_port=19000, gateway={"port": 28081}),
              base_agent(name="c", host_port=19100, gateway={"port": 28080})]
    (problem,) = check(agents)
    assert str(problem) == (
        "agent 'c': field 'gateway.port': port 28080 is already the gateway port of agent 'support-bot' "
        "(gateway ports must be unique)"
    )
    assert problem.index == 3


def test_gateway_port_in_defaults_is_shared_by_every_agent():
    agents = [base_agent(), base_agent(name="b", host_port=19000), base_agent(name="c", host_port=19100)]
    problems = check(agents, defaults={"gateway": {"port": 28080}})
    assert [(p.agent, p.field) for p in problems] == [("b", "gateway.port"), ("c", "gateway.port")]
    assert all("agent 'support-bot'" in p.message for p in problems)
    # An agent's own gateway replaces the inherited one.
    agents[1]["gateway"], agents[2]["gateway"] = {"port": 28081}, {"port": 28082}
    assert check(agents, defaults={"gateway": {"port": 28080}}) == []


def test_gateway_port_taken_by_a_replica_on_a_gateway_host():
    agents = [base_agent(replicas=3), base_agent(name="b", host_port=19000, gateway={"port": 18082})]
    (problem,) = validate_catalog(agents, GATEWAY_GROUPS)
    assert str(problem) == (
        "agent 'b': field 'gateway.port': port 18082 on host 'agent1' (group 'gateway') is already used by "
        "agent 'support-bot' (host ports 18080-18082)"
    )


def test_gateway_port_taken_by_the_agent_s_own_replica_on_a_gateway_host():
    (problem,) = validate_catalog([base_agent(gateway={"port": 18080})], GATEWAY_GROUPS)
    assert (problem.agent, problem.field) == ("support-bot", "gateway.port")
    assert "already used by this agent's own replicas (host port 18080)" in problem.message


def test_gateway_port_equal_to_host_ports_off_the_gateway_hosts_is_fine():
    # The replicas using 18080-18081 run on agent2 and agent3 only, not on the gateway host agent1.
    agents = [base_agent(replicas=2, hosts="agent_hosts:!agent1"),
              base_agent(name="b", host_port=19000, gateway={"port": 18081})]
    assert validate_catalog(agents, GATEWAY_GROUPS) == []
    # Without a gateway group there is no gateway host, so nothing binds the gateway ports.
    assert check([base_agent(gateway={"port": 18080})]) == []
    # No replica, no port in use.
    assert validate_catalog([base_agent(replicas=0, gateway={"port": 18080})], GATEWAY_GROUPS) == []


def test_bad_gateway_field_is_reported_once_and_not_compared():
    agents = [base_agent(gateway={"port": 0}), base_agent(name="b", host_port=19000, gateway={"port": 0})]
    assert [(p.agent, p.field) for p in check(agents)] == [("support-bot", "gateway.port"), ("b", "gateway.port")]
    assert all("already" not in p.message for p in check(agents))


# --------------------------------------------------------------------------------------------
# Secrets


@pytest.mark.parametrize("value", [
    "{{ vault_support_bot_api_key }}",
    "{{vault_key}}",
    "{{ vault_keys.support }}",
    "{{ vault_keys['support-bot'] }}",
    "$ANSIBLE_VAULT;1.1;AES256\n6162636465\n",
])
def test_strict_accepts_vaulted_secrets(value):
    assert is_vault_encrypted(value)
    assert check([base_agent(secrets={"API_KEY": value})], strict=True) == []


@pytest.mark.parametrize("value", [
    "hunter2-plain-literal",
    "{{ support_bot_api_key }}",
    "{{ lookup('env', 'API_KEY') }}",
    "{{ vault_key | default('hunter2-plain-literal') }}",
    "prefix-{{ vault_key }}",
])
def test_strict_refuses_plain_secrets_without_showing_them(value):
    (problem,) = check([base_agent(secrets={"API_KEY": value})], strict=True)
    assert problem.field == "secrets.API_KEY"
    assert "must be vault-encrypted in strict mode" in problem.message
    assert value not in str(problem)
    assert "hunter2" not in str(problem)


def test_plain_secrets_pass_without_strict():
    assert check([base_agent(secrets={"API_KEY": "hunter2"})]) == []


def test_non_string_secret_value_is_never_shown():
    (problem,) = check([base_agent(secrets={"PIN": 987654321})])
    assert "987654321" not in str(problem)


def test_strict_applies_to_secrets_in_defaults():
    (problem,) = check([base_agent()], defaults={"secrets": {"SHARED": "hunter2"}}, strict=True)
    assert (problem.agent, problem.field) == ("agentfactory_agent_defaults", "secrets.SHARED")


def _ansible_vault_string(plaintext: str):
    vault = pytest.importorskip("ansible.parsing.vault")
    lib = vault.VaultLib([("default", vault.VaultSecret(b"test-password"))])
    ciphertext = lib.encrypt(plaintext).decode()
    return vault.EncryptedString(ciphertext=ciphertext)


def test_strict_accepts_ansible_encrypted_objects_in_secrets():
    agents = [base_agent(secrets={"API_KEY": _ansible_vault_string("hunter2")})]
    assert check(agents, strict=True) == []


def test_vault_values_outside_secrets_are_refused():
    # env, config, command and image are reported in the clear by the tasks that use them.
    agents = [base_agent(env={"TOKEN": _ansible_vault_string("x"), "AUTH": "Bearer {{ vault_token }}"},
                         config={"db": {"password": "{{ vault_db_password }}"}},
                         command=["/bin/bot", "$ANSIBLE_VAULT;1.1;AES256\n6162"])]
    problems = check(agents)
    assert sorted(p.field for p in problems) == ["command[1]", "config.db.password", "env.AUTH", "env.TOKEN"]
    assert all("only allowed in secrets" in p.message for p in problems)
    (problem,) = check([base_agent()], defaults={"env": {"TOKEN": "{{ vault_token }}"}})
    assert (problem.agent, problem.field) == ("agentfactory_agent_defaults", "env.TOKEN")


def test_vaulted_values_are_never_decrypted_by_validation():
    # Without the vault password in this process, any str operation on them would raise.
    vault = pytest.importorskip("ansible.parsing.vault")
    ciphertext = vault.VaultLib([("default", vault.VaultSecret(b"pw"))]).encrypt("x").decode()
    encrypted = vault.EncryptedString(ciphertext=ciphertext)
    with pytest.raises(Exception):  # noqa: B017 (whatever Ansible raises for a missing password)
        len(encrypted)
    agents = [base_agent(image=encrypted, env={"TOKEN": encrypted}, secrets={"API_KEY": encrypted},
                         command=[encrypted], config={"nested": {"key": encrypted}})]
    assert [p.field for p in check(agents, strict=True)] == ["image", "command[0]", "env.TOKEN", "config.nested.key"]
    problems = check([base_agent(replicas=encrypted, hosts=encrypted)], strict=True)
    assert [(p.field, p.message) for p in problems] == [
        ("replicas", "must be an integer >= 0 (got a vault-encrypted value)"),
        ("hosts", "must be an inventory group, host or pattern (a non-empty string), or a list of them "
                  "(got a vault-encrypted value)"),
    ]
    problems = check([base_agent(runtime=encrypted, name=encrypted)], defaults={"image_source": encrypted})
    assert [str(p) for p in problems] == [
        "agentfactory_agent_defaults: field 'image_source': must be one of 'registry', 'archive' "
        "(got a vault-encrypted value)",
        "agent #1: field 'name': must be a DNS label: at most 40 lower-case letters, digits and '-', "
        "starting and ending with a letter or digit (got a vault-encrypted value)",
        "agent #1: field 'runtime': must be one of 'docker', 'systemd' (got a vault-encrypted value)",
    ]
    problems = check([base_agent(resources={"memory": encrypted}, health={"path": encrypted})])
    assert [(p.field, p.message.endswith("(got a vault-encrypted value)")) for p in problems] == [
        ("health.path", True), ("resources.memory", True)]


def test_catalog_loaded_by_ansible_with_vault_is_valid(tmp_path):
    """Ansible's loader returns its own str/dict/list types and EncryptedString objects."""
    dataloader = pytest.importorskip("ansible.parsing.dataloader")
    vault = pytest.importorskip("ansible.parsing.vault")
    secret = vault.VaultSecret(b"test-password")
    ciphertext = vault.VaultLib([("default", secret)]).encrypt("hunter2").decode()
    indented = "\n".join("        " + line for line in ciphertext.splitlines())
    text = FULL_CATALOG_YAML.replace(
        'secrets: {API_KEY: "{{ vault_support_bot_api_key }}"}',
        f"secrets:\n      API_KEY: !vault |\n{indented}",
    )
    path = tmp_path / "agents.yml"
    path.write_text(text)
    loader = dataloader.DataLoader()
    loader.set_vault_secrets([("default", secret)])
    agents = loader.load_from_file(str(path))["agentfactory_agents"]
    assert type(agents[0]["secrets"]["API_KEY"]).__name__ == "EncryptedString"
    assert check(agents, strict=True) == []
    bad = loader.load(text.replace("replicas: 2", "replicas: -2"))["agentfactory_agents"]
    assert [str(p) for p in check(bad)] == [
        "agent 'support-bot': field 'replicas': must be an integer >= 0 (got -2)"
    ]


# --------------------------------------------------------------------------------------------
# Defaults and normalisation


def test_normalise_fills_every_default():
    agent = normalise_agent({"name": "a", "image": "x:1"})
    assert agent == {
        "name": "a",
        "runtime": "docker",
        "image": "x:1",
        "image_source": "registry",
        "command": [],
        "replicas": 1,
        "port": 8080,
        "host_port": 8080,
        "hosts": "agent_hosts",
        "env": {},
        "secrets": {},
        "config": {},
        "health": {"path": "/healthz", "interval": 10, "timeout": 5, "retries": 3},
        "metrics": {"path": "/metrics"},
        "resources": {},
        "capabilities": [],
        "update": {"batch": 1, "health_timeout": 60, "rollback": True},
    }
    assert list(agent) == [f for f in FIELDS if f in agent]


def test_normalise_keeps_given_values_and_merges_mappings():
    agent = normalise_agent({
        "name": "a", "image": "x:1", "port": 9000, "replicas": 0,
        "health": {"interval": 2}, "update": {"batch": "25%"}, "command": ["run"],
    })
    assert agent["host_port"] == 9000
    assert agent["replicas"] == 0
    assert agent["health"] == {"path": "/healthz", "interval": 2, "timeout": 5, "retries": 3}
    assert agent["update"] == {"batch": "25%", "health_timeout": 60, "rollback": True}
    assert agent["command"] == ["run"]


def test_normalise_layers_operator_defaults_between_builtins_and_agent():
    defaults = {
        "hosts": "gpu",
        "replicas": 2,
        "command": ["default"],
        "env": {"LOG_LEVEL": "info", "TZ": "UTC"},
        "config": {"model": {"name": "small", "size": 1}, "temperature": 0.1},
        "health": {"timeout": 2},
        "resources": {"memory": "256m"},
    }
    agent = normalise_agent({
        "name": "a", "image": "x:1", "command": ["mine"],
        "env": {"LOG_LEVEL": "debug"},
        "config": {"model": {"name": "large"}},
        "resources": {"cpus": 2},
    }, defaults)
    assert agent["hosts"] == "gpu"
    assert agent["replicas"] == 2
    assert agent["command"] == ["mine"]
    assert agent["env"] == {"LOG_LEVEL": "debug", "TZ": "UTC"}
    assert agent["config"] == {"model": {"name": "large", "size": 1}, "temperature": 0.1}
    assert agent["health"] == {"path": "/healthz", "interval": 10, "timeout": 2, "retries": 3}
    assert agent["resources"] == {"memory": "256m", "cpus": 2}


def test_normalise_does_not_touch_its_inputs_or_builtins():
    builtins = copy.deepcopy(BUILTIN_DEFAULTS)
    given = {"name": "a", "image": "x:1", "config": {"nested": {"k": 1}}}
    defaults = {"config": {"nested": {"j": 2}}}
    before = copy.deepcopy((given, defaults))
    agent = normalise_agent(given, defaults)
    agent["config"]["nested"]["k"] = 99
    agent["health"]["interval"] = 99
    assert (given, defaults) == before
    assert builtins == BUILTIN_DEFAULTS
    assert normalise_agent(given)["health"]["interval"] == 10


def test_normalise_ignores_a_name_in_defaults():
    assert normalise_agent({"image": "x:1"}, {"name": "nope"}).get("name") is None


def test_defaults_supply_missing_fields_during_validation():
    agents = [{"name": "a"}, {"name": "b", "host_port": 9090}]
    assert [(p.agent, p.field) for p in check(agents)] == [("a", "image"), ("b", "image")]
    assert check(agents, defaults={"image": "agents/sample:1.0"}) == []
    # A placement is resolved per agent, so an inherited bad one is reported on each agent.
    problems = check(agents, defaults={"image": "agents/sample:1.0", "hosts": "nowhere-group"})
    assert [(p.agent, p.field) for p in problems] == [("a", "hosts"), ("b", "hosts")]


def test_defaults_can_cause_port_collisions():
    agents = [{"name": "a"}, {"name": "b"}]
    (problem,) = check(agents, defaults={"image": "agents/sample:1.0"})
    assert (problem.agent, problem.field) == ("b", "host_port")


def test_name_in_defaults_is_refused():
    (problem,) = check([base_agent()], defaults={"name": "everyone"})
    assert (problem.agent, problem.field) == ("agentfactory_agent_defaults", "name")


def test_defaults_must_be_a_mapping():
    (problem,) = check([base_agent()], defaults=["replicas", 2])
    assert str(problem) == "agentfactory_agent_defaults: must be a mapping of agent fields (got a list)"


def test_bad_default_does_not_hide_an_agent_s_own_valid_value():
    # The defaults' replicas is wrong; the agent sets its own, so its port range is still checked.
    problems = check([base_agent(replicas=2, host_port=65535)], defaults={"replicas": "many"})
    assert [(p.agent, p.field) for p in problems] == [
        ("agentfactory_agent_defaults", "replicas"),
        ("support-bot", "host_port"),
    ]


def test_image_may_hold_a_jinja_expression_but_no_bare_spaces():
    templated = "{{ hostvars[groups['registry'][0]]['agentfactory_host_address'] }}:5000/agents/ref:1.0"
    assert check([base_agent(image=templated)]) == []
    assert [p.field for p in check([base_agent(image="{{ reg }} /agents/ref:1.0")])] == ["image"]
