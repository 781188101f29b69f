"""The agent_containers module: the create body and its spec label, when a replica is replaced,
and main() against a fake Docker engine that keeps containers in a dict and records requests."""

from __future__ import annotations

import copy
import json

import pytest
from ansible.module_utils import basic

# test_agent_health puts the collection on sys.path and has the raising exit_json/fail_json.
from test_agent_health import AnsibleExitJson, AnsibleFailJson, _exit_json, _fail_json, docker_api, run_main

# isort: split
from ansible_collections.agentfactory.fleet.plugins.modules import agent_containers as mod

IMAGE = "127.0.0.1:5000/reference-agent:1.0.0"
IMAGE_ID = "sha256:" + "a" * 64


def replica(index, **changes):
    item = {
        "name": f"ref-{index}",
        "index": index,
        "host_port": 18080 + index,
        "image": IMAGE,
        "config_path": "/etc/agentfactory/agents/ref/config-abc.yml",
        "config_hash": "abc",
        "env": {"LOG_LEVEL": "info", "AGENT_PORT": 9999, "DEBUG": False},
    }
    item.update(changes)
    return item


ARGS = {
    "agent": "ref",
    "replicas": [replica(0), replica(1)],
    "port": 8080,
    "bind_address": "10.0.0.11",
    "config_target": "/etc/agent/config.yml",
    "secrets_dir": "/etc/agentfactory/agents/ref/secrets",
    "secrets_target": "/run/secrets/agent",
    "user": "10001:10001",
    "memory": 268435456,
    "cpus": 0.5,
    "healthcheck": {"test": ["CMD", "true"], "interval": 10, "timeout": 5, "retries": 3},
    "prune": True,
}


def params(**changes):
    """The module's parameters with their defaults, as AnsibleModule would fill them in."""
    spec = mod._argument_spec()
    values = {key: copy.deepcopy(option.get("default")) for key, option in spec.items()}
    values.update(copy.deepcopy(ARGS))
    values["healthcheck"] = {"start_period": 5, **values["healthcheck"]}
    values.update(changes)
    return values


# --------------------------------------------------------------------------------------------
# The body and its spec


def test_create_body_is_hardened_and_limited():
    body = mod.create_body(params(capabilities=["NET_BIND_SERVICE"]), replica(1))
    host = body["HostConfig"]
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "10.0.0.11", "HostPort": "18081"}]}
    assert body["ExposedPorts"] == {"8080/tcp": {}}
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in host["Mounts"]] == [
        ("/etc/agentfactory/agents/ref/config-abc.yml", "/etc/agent/config.yml", True),
        ("/etc/agentfactory/agents/ref/secrets", "/run/secrets/agent", True),
    ]
    assert (host["ReadonlyRootfs"], host["CapDrop"], host["CapAdd"]) == (True, ["ALL"], ["NET_BIND_SERVICE"])
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert (host["NanoCpus"], host["Memory"]) == (500_000_000, 268435456)
    assert host["RestartPolicy"] == {"Name": "unless-stopped"}
    assert body["Env"] == [
        "AGENT_CONFIG=/etc/agent/config.yml",
        "AGENT_HEALTH_PATH=/healthz",
        "AGENT_METRICS_PATH=/metrics",
        "AGENT_NAME=ref",
        "AGENT_PORT=8080",  # the contract wins over the catalog's env
        "AGENT_REPLICA=ref-1",
        "AGENT_SECRETS_DIR=/run/secrets/agent",
        "DEBUG=false",
        "LOG_LEVEL=info",
    ]
    assert json.loads(body["Labels"]["agentfactory.env"]) == {
        "AGENT_PORT": "9999",
        "DEBUG": "false",
        "LOG_LEVEL": "info",
    }
    assert body["Healthcheck"]["Interval"] == 10_000_000_000
    assert body["User"] == "10001:10001"
    assert "Cmd" not in body  # the image's own command
    labels = body["Labels"]
    assert labels["agentfactory.agent"] == "ref"
    assert labels["agentfactory.replica"] == "1"
    assert labels["agentfactory.host-port"] == "18081"
    assert labels["agentfactory.health-path"] == "/healthz"
    assert len(labels["agentfactory.spec"]) == 64


def test_unhardened_body_has_no_restrictions():
    host = mod.create_body(params(hardened=False, cpus=None, memory=None, healthcheck=None), replica(0))["HostConfig"]
    assert not {"ReadonlyRootfs", "CapDrop", "SecurityOpt", "Tmpfs", "CapAdd", "NanoCpus", "Memory"} & set(host)


def test_the_spec_changes_with_anything_that_shapes_the_container():
    spec = mod.create_body(params(), replica(0))["Labels"]["agentfactory.spec"]
    assert mod.create_body(params(), replica(0))["Labels"]["agentfactory.spec"] == spec  # stable
    for changed in (
        mod.create_body(params(), replica(0, env={"LOG_LEVEL": "debug"})),
        mod.create_body(params(), replica(0, config_hash="def")),
        mod.create_body(params(memory=1 << 30), replica(0)),
        mod.create_body(params(bind_address="10.0.0.12"), replica(0)),
        mod.create_body(params(user="10002:10002"), replica(0)),
        mod.create_body(params(command=["serve", "--fast"]), replica(0)),
    ):
        assert changed["Labels"]["agentfactory.spec"] != spec


def test_replacement_reason():
    body = mod.create_body(params(), replica(0))
    running = {"Image": IMAGE_ID, "Config": {"Labels": dict(body["Labels"])}, "State": {"Running": True}}
    assert mod.replacement_reason(running, body, IMAGE_ID) is None
    assert mod.replacement_reason(running, body, "sha256:" + "b" * 64) == "the image changed"
    other = mod.create_body(params(), replica(0, env={"X": "1"}))
    assert mod.replacement_reason(running, other, IMAGE_ID) == "the spec changed"
    # made by docker_container before this module: kept while the agent's fingerprint matches
    legacy = copy.deepcopy(running)
    del legacy["Config"]["Labels"]["agentfactory.spec"]
    assert mod.replacement_reason(legacy, body, IMAGE_ID) is None
    legacy["Config"]["Labels"]["agentfactory.config-hash"] = "old"
    assert mod.replacement_reason(legacy, body, IMAGE_ID) == "the spec changed"


# --------------------------------------------------------------------------------------------
# main() against a fake engine


class FakeEngine:
    socket_path = docker_api.DEFAULT_SOCKET

    def __init__(self):
        self.containers_by_name = {}
        self.images = {IMAGE: {"Id": IMAGE_ID}}
        self.requests = []
        self.fail_create = None
        self.up = True

    def available(self):
        return self.up

    def _find(self, ident):
        for name, container in self.containers_by_name.items():
            if ident in (name, container["Id"]):
                return name, container
        raise docker_api.EngineError(f"No such container: {ident}", 404)

    def image(self, reference):
        return self.images.get(reference)

    def inspect(self, ident):
        try:
            return copy.deepcopy(self._find(ident)[1])
        except docker_api.EngineError:
            return None

    def containers(self, label):
        key, _, value = label.partition("=")
        return [
            {"Id": c["Id"], "Names": ["/" + name]}
            for name, c in self.containers_by_name.items()
            if c["Config"]["Labels"].get(key) == value
        ]

    def create(self, name, body):
        self.requests.append(("create", name))
        if self.fail_create:
            raise docker_api.EngineError(self.fail_create, 500)
        self.containers_by_name[name] = {
            "Id": f"id-{name}-{len(self.requests)}",
            "Image": self.images[body["Image"]]["Id"],
            "Config": {"Labels": body["Labels"]},
            "State": {"Running": False},
        }

    def start(self, ident):
        self.requests.append(("start", ident))
        self._find(ident)[1]["State"]["Running"] = True

    def stop(self, ident, seconds):
        self.requests.append(("stop", ident, seconds))
        self._find(ident)[1]["State"]["Running"] = False

    def remove(self, ident):
        self.requests.append(("remove", ident))
        del self.containers_by_name[self._find(ident)[0]]


@pytest.fixture
def engine(monkeypatch):
    fake = FakeEngine()
    monkeypatch.setattr(mod.docker_api, "Engine", lambda: fake)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    return fake


def run(args, expect=AnsibleExitJson):
    return run_main(mod.main, args, expect)


def actions(result):
    return [(r["name"], r["action"]) for r in result["replicas"]]


def test_creates_then_changes_nothing(engine):
    first = run(ARGS)
    assert first["changed"] is True
    assert actions(first) == [("ref-0", "created"), ("ref-1", "created")]
    assert engine.requests == [("create", "ref-0"), ("start", "ref-0"), ("create", "ref-1"), ("start", "ref-1")]
    engine.requests.clear()
    second = run(ARGS)
    assert second["changed"] is False
    assert actions(second) == [("ref-0", "unchanged"), ("ref-1", "unchanged")]
    assert engine.requests == []


def test_replaces_only_the_replica_whose_spec_changed(engine):
    run(ARGS)
    engine.requests.clear()
    changed = {**ARGS, "replicas": [replica(0), replica(1, env={"LOG_LEVEL": "debug"})]}
    result = run({**changed, "_ansible_diff": True})
    assert actions(result) == [("ref-0", "unchanged"), ("ref-1", "replaced")]
    assert result["replicas"][1]["reason"] == "the spec changed"
    assert [r[0] for r in engine.requests] == ["stop", "remove", "create", "start"]
    assert engine.requests[0][2] == 10  # the stop timeout
    assert set(result["diff"]["before"]) == {"ref-1"}


def test_a_new_image_behind_the_same_tag_replaces_every_replica(engine):
    run(ARGS)
    engine.images[IMAGE] = {"Id": "sha256:" + "c" * 64}
    assert actions(run(ARGS)) == [("ref-0", "replaced"), ("ref-1", "replaced")]


def test_starts_a_stopped_replica_and_prunes_the_surplus(engine):
    run({**ARGS, "replicas": [replica(0), replica(1), replica(2)]})
    engine.containers_by_name["ref-0"]["State"]["Running"] = False
    engine.requests.clear()
    result = run(ARGS)
    assert actions(result) == [("ref-0", "started"), ("ref-1", "unchanged"), ("ref-2", "removed")]
    assert set(engine.containers_by_name) == {"ref-0", "ref-1"}


def test_without_prune_only_the_named_surplus_goes(engine):
    run({**ARGS, "replicas": [replica(0), replica(1), replica(2)]})
    keep = run({**ARGS, "replicas": [replica(0)], "prune": False})
    assert actions(keep) == [("ref-0", "unchanged")]
    gone = run({**ARGS, "replicas": [], "prune": False, "remove": ["ref-2"]})
    assert actions(gone) == [("ref-2", "removed")]
    assert set(engine.containers_by_name) == {"ref-0", "ref-1"}


def test_defer_leaves_what_would_interrupt_service_and_reports_it(engine):
    """A rolling deploy: replacements and removals are only reported; a missing replica is made
    and a stopped one started (neither is in service)."""
    run({**ARGS, "replicas": [replica(0), replica(1), replica(2)]})
    engine.containers_by_name["ref-0"]["State"]["Running"] = False
    engine.requests.clear()
    wanted = [replica(0), replica(1, env={"LOG_LEVEL": "debug"}), replica(3)]
    result = run({**ARGS, "replicas": wanted, "prune": True, "defer": True})
    assert actions(result) == [("ref-0", "started"), ("ref-1", "deferred"), ("ref-3", "created"),
                               ("ref-2", "deferred")]
    assert [r["reason"] for r in result["replicas"]][1::2] == ["the spec changed", "not wanted here"]
    assert result["changed"] is True  # a start and a creation
    assert [r[0] for r in engine.requests] == ["start", "create", "start"]
    assert set(engine.containers_by_name) == {"ref-0", "ref-1", "ref-2", "ref-3"}
    # Only deferrals: nothing changed.
    again = run({**ARGS, "replicas": wanted, "prune": True, "defer": True})
    assert again["changed"] is False
    assert [a for _, a in actions(again)] == ["unchanged", "deferred", "unchanged", "deferred"]


def test_check_mode_reports_and_changes_nothing(engine):
    result = run({**ARGS, "_ansible_check_mode": True})
    assert result["changed"] is True
    assert actions(result) == [("ref-0", "created"), ("ref-1", "created")]
    assert engine.requests == [] and engine.containers_by_name == {}


def test_a_missing_image_is_named(engine):
    result = run({**ARGS, "replicas": [replica(0, image="127.0.0.1:5000/nope:1")]}, AnsibleFailJson)
    assert result["msg"] == "ref-0: the image 127.0.0.1:5000/nope:1 is not on this host (pull or load it first)"
    assert engine.requests == []


def test_check_mode_on_a_host_without_the_image_yet(engine):
    # a fresh host in check mode: the pull or load before this module did not happen
    engine.images = {}
    result = run({**ARGS, "_ansible_check_mode": True})
    assert actions(result) == [("ref-0", "created"), ("ref-1", "created")]


def test_an_engine_refusal_names_the_replica_and_what_was_done(engine):
    engine.fail_create = "driver failed programming external connectivity: port is already allocated"
    result = run(ARGS, AnsibleFailJson)
    assert result["msg"] == (
        "ref-0: creating the container failed: driver failed programming external connectivity: "
        "port is already allocated"
    )
    assert actions(result) == [("ref-0", "created")]


def test_refuses_without_an_engine_or_with_duplicate_names(engine):
    engine.up = False
    assert "the Docker engine is not running" in run(ARGS, AnsibleFailJson)["msg"]
    engine.up = True
    twice = run({**ARGS, "replicas": [replica(0), replica(0)]}, AnsibleFailJson)
    assert twice["msg"] == "agent 'ref': replicas named twice: ref-0"


def test_module_documentation_matches_the_argument_spec():
    import yaml

    doc = yaml.safe_load(mod.DOCUMENTATION)

    def compare(documented, declared, where):
        assert set(documented) == set(declared), where
        for name, option in declared.items():
            entry = documented[name]
            for key in ("type", "default", "elements", "choices"):
                assert entry.get(key, "str" if key == "type" else None) == option.get(
                    key, "str" if key == "type" else None
                ), f"{where}.{name}.{key}"
            assert bool(entry.get("required")) == bool(option.get("required")), f"{where}.{name}"
            if option.get("options"):
                compare(entry["suboptions"], option["options"], f"{where}.{name}")

    compare(doc["options"], mod._argument_spec(), "options")
    assert yaml.safe_load(mod.EXAMPLES) and yaml.safe_load(mod.RETURN)
