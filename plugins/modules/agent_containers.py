#!/usr/bin/python
# Copyright: agentfactory contributors
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: agent_containers
short_description: Converge the container replicas of one agentfactory agent on a host in one call
description:
  - Takes the whole desired state of an agent's replicas on this host (image, config, environment,
    ports, limits, hardening, health check) and compares it with the containers that run.
    Only a replica whose container differs is replaced; a stopped one is started; the agent's
    other containers are removed when O(prune=true).
  - A container's desired state is summed up in one sha256 of the body the module would create
    it with, kept in the label C(agentfactory.spec). A replica is replaced when that label or its
    image ID (a tag pulled again) differs.
  - A container made before this module (by community.docker.docker_container) has no
    C(agentfactory.spec) label. It is kept while its C(agentfactory.config-hash),
    C(agentfactory.image) and C(agentfactory.host-port) labels match, so upgrading agentfactory
    restarts nothing; its next real change replaces it.
  - It asks the Docker engine on its socket C(/var/run/docker.sock) with the Python standard
    library (no Docker SDK). The image must be on the host already (the agent role pulls or loads it first).
version_added: 0.2.0
author:
  - agentfactory contributors
attributes:
  check_mode:
    description: Reports what it would create, replace, start or remove, and changes nothing.
    support: full
  diff_mode:
    description: Per replica, the image, config hash and spec before and after.
    support: full
  idempotent:
    description: A second call with the same state reports no change.
    support: full
options:
  agent:
    description: The agent's name; its containers carry the label C(agentfactory.agent=<agent>).
    type: str
    required: true
  replicas:
    description: The replicas that should run here, each with its own spec.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Container name (C(<agent>-<index>)).
        type: str
        required: true
      index:
        description: Replica number.
        type: int
        required: true
      host_port:
        description: The host port the replica publishes its port on.
        type: int
        required: true
      image:
        description: Image reference (the one pulled or loaded).
        type: str
        required: true
      config_path:
        description: The rendered config file on the host, mounted read-only.
        type: path
        required: true
      config_hash:
        description: The agent's fingerprint (config, env, image, secrets...), kept as a label.
        type: str
        required: true
      env:
        description:
          - The agent's environment; values are turned into strings. The module adds the
            runtime contract (C(AGENT_NAME), C(AGENT_REPLICA), C(AGENT_PORT), C(AGENT_CONFIG),
            C(AGENT_SECRETS_DIR), C(AGENT_HEALTH_PATH), C(AGENT_METRICS_PATH)), which wins.
          - Kept as the label C(agentfactory.env), from which a rollback restores it.
        type: dict
        default: {}
  port:
    description: The port the agent listens on inside the container.
    type: int
    required: true
  command:
    description: Command of the container; empty keeps the image's.
    type: list
    elements: str
    default: []
  bind_address:
    description: Host address the ports are published on (IPv4 or IPv6, without brackets).
    type: str
    required: true
  config_target:
    description: Where the config file is mounted in the container.
    type: str
    required: true
  secrets_dir:
    description: The agent's secrets directory on the host, mounted read-only.
    type: path
    required: true
  secrets_target:
    description: Where the secrets directory is mounted in the container.
    type: str
    required: true
  health_path:
    description: The agent's health path, kept as a label (agent_health finds it there).
    type: str
    default: /healthz
  metrics_path:
    description: The agent's metrics path (C(AGENT_METRICS_PATH)).
    type: str
    default: /metrics
  user:
    description: C(uid:gid) the container runs as.
    type: str
    required: true
  hardened:
    description: Read-only root file system, every capability dropped, no privilege gain, a small C(/tmp).
    type: bool
    default: true
  tmp_size:
    description: Size of the C(/tmp) tmpfs of a hardened container (C(64m)).
    type: str
    default: 64m
  capabilities:
    description: Capabilities added back.
    type: list
    elements: str
    default: []
  cpus:
    description: CPU limit in cores; none when not given.
    type: float
  memory:
    description: Memory limit in bytes; none when not given.
    type: int
  healthcheck:
    description: Docker health check; none when not given.
    type: dict
    suboptions:
      test:
        description: The check, as Docker's C(Test) list (C([CMD, ...])).
        type: list
        elements: str
        required: true
      interval:
        description: Seconds between checks.
        type: float
        required: true
      timeout:
        description: Seconds one check may take.
        type: float
        required: true
      retries:
        description: Failed checks in a row before the container is unhealthy.
        type: int
        required: true
      start_period:
        description: Seconds after the start during which failures do not count.
        type: float
        default: 5
  restart_policy:
    description: Docker restart policy.
    type: str
    choices: ["no", on-failure, always, unless-stopped]
    default: unless-stopped
  stop_timeout:
    description: Seconds a replica gets to stop before it is killed, when it is replaced or removed.
    type: int
    default: 10
  prune:
    description: Remove the agent's containers that are not in O(replicas).
    type: bool
    default: false
  remove:
    description: Names of the agent's containers to remove (a rollback's surplus replicas).
    type: list
    elements: str
    default: []
  defer:
    description:
      - Leave every replica that would be replaced, and with O(prune=true) every container that
        would be removed, as it is, and report it with the action C(deferred). Missing replicas
        are still created and stopped ones started.
      - For replicas behind a load balancer, the caller then takes them out of service one at a
        time before it replaces or removes them (the agent role's rolling deploy).
    type: bool
    default: false
notes:
  - Fails naming the replica and the engine's message when a container cannot be made or started
    (a missing image, a port already taken); replicas handled before it stay as they are.
seealso:
  - module: agentfactory.fleet.agent_health
"""

EXAMPLES = r"""
- name: Run the replicas of support-bot
  agentfactory.fleet.agent_containers:
    agent: support-bot
    replicas:
      - name: support-bot-0
        index: 0
        host_port: 18080
        image: registry.internal:5000/support-bot:1.4.2
        config_path: /etc/agentfactory/agents/support-bot/config-3f2a.yml
        config_hash: 3f2a...
        env: {LOG_LEVEL: info}
    port: 8080
    bind_address: 10.0.0.11
    config_target: /etc/agent/config.yml
    secrets_dir: /etc/agentfactory/agents/support-bot/secrets
    secrets_target: /run/secrets/agent
    user: "10001:10001"
    memory: 536870912
    prune: true
"""

RETURN = r"""
replicas:
  description: What was done (or would be, in check mode) to each container, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    action:
      description: created, replaced, started, unchanged, removed or deferred (O(defer=true)).
      type: str
    reason:
      description: >-
        Why it was (or, deferred, would be) replaced (spec changed, image changed), created
        (missing) or removed (not wanted here).
      type: str
  sample: [{name: support-bot-0, action: replaced, reason: the spec changed}]
"""

import hashlib  # noqa: E402
import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.agentfactory.fleet.plugins.module_utils import docker_api  # noqa: E402
from ansible_collections.agentfactory.fleet.plugins.module_utils.agent_defaults import LABELS  # noqa: E402

_NS = 1_000_000_000


def _argument_spec():
    replica = dict(
        name=dict(type="str", required=True),
        index=dict(type="int", required=True),
        host_port=dict(type="int", required=True),
        image=dict(type="str", required=True),
        config_path=dict(type="path", required=True),
        config_hash=dict(type="str", required=True),
        env=dict(type="dict", default={}),
    )
    healthcheck = dict(
        test=dict(type="list", elements="str", required=True),
        interval=dict(type="float", required=True),
        timeout=dict(type="float", required=True),
        retries=dict(type="int", required=True),
        start_period=dict(type="float", default=5),
    )
    return dict(
        agent=dict(type="str", required=True),
        replicas=dict(type="list", elements="dict", default=[], options=replica),
        port=dict(type="int", required=True),
        command=dict(type="list", elements="str", default=[]),
        bind_address=dict(type="str", required=True),
        config_target=dict(type="str", required=True),
        secrets_dir=dict(type="path", required=True),
        secrets_target=dict(type="str", required=True),
        health_path=dict(type="str", default="/healthz"),
        metrics_path=dict(type="str", default="/metrics"),
        user=dict(type="str", required=True),
        hardened=dict(type="bool", default=True),
        tmp_size=dict(type="str", default="64m"),
        capabilities=dict(type="list", elements="str", default=[]),
        cpus=dict(type="float"),
        memory=dict(type="int"),
        healthcheck=dict(type="dict", options=healthcheck),
        restart_policy=dict(
            type="str", choices=["no", "on-failure", "always", "unless-stopped"], default="unless-stopped"
        ),
        stop_timeout=dict(type="int", default=10),
        prune=dict(type="bool", default=False),
        remove=dict(type="list", elements="str", default=[]),
        defer=dict(type="bool", default=False),
    )


def create_body(params, replica):
    """The body of POST /containers/create for one replica, its spec label included."""
    port = f"{params['port']}/tcp"
    labels = {
        LABELS["agent"]: params["agent"],
        LABELS["replica"]: str(replica["index"]),
        LABELS["config_hash"]: replica["config_hash"],
        LABELS["image"]: replica["image"],
        LABELS["host_port"]: str(replica["host_port"]),
        LABELS["config_path"]: replica["config_path"],
        LABELS["health_path"]: params["health_path"],
        LABELS["env"]: json.dumps({k: _text(v) for k, v in replica["env"].items()}, sort_keys=True),
    }
    env = {
        **{key: _text(value) for key, value in replica["env"].items()},
        "AGENT_NAME": params["agent"],
        "AGENT_REPLICA": replica["name"],
        "AGENT_PORT": str(params["port"]),
        "AGENT_CONFIG": params["config_target"],
        "AGENT_SECRETS_DIR": params["secrets_target"],
        "AGENT_HEALTH_PATH": params["health_path"],
        "AGENT_METRICS_PATH": params["metrics_path"],
    }
    host = {
        "PortBindings": {port: [{"HostIp": params["bind_address"], "HostPort": str(replica["host_port"])}]},
        "Mounts": [
            {"Type": "bind", "Source": replica["config_path"], "Target": params["config_target"], "ReadOnly": True},
            {"Type": "bind", "Source": params["secrets_dir"], "Target": params["secrets_target"], "ReadOnly": True},
        ],
        "RestartPolicy": {"Name": params["restart_policy"]},
    }
    if params["hardened"]:
        host.update(
            ReadonlyRootfs=True,
            CapDrop=["ALL"],
            SecurityOpt=["no-new-privileges:true"],
            Tmpfs={"/tmp": f"rw,noexec,nosuid,size={params['tmp_size']}"},
        )
    if params["capabilities"]:
        host["CapAdd"] = sorted(params["capabilities"])
    if params["cpus"]:
        host["NanoCpus"] = round(params["cpus"] * _NS)
    if params["memory"]:
        host["Memory"] = params["memory"]
    body = {
        "Image": replica["image"],
        "Env": sorted(f"{key}={value}" for key, value in env.items()),
        "User": params["user"],
        "ExposedPorts": {port: {}},
        "Labels": labels,
        "HostConfig": host,
    }
    if params["command"]:
        body["Cmd"] = params["command"]
    check = params["healthcheck"]
    if check:
        body["Healthcheck"] = {
            "Test": check["test"],
            "Interval": round(check["interval"] * _NS),
            "Timeout": round(check["timeout"] * _NS),
            "Retries": check["retries"],
            "StartPeriod": round(check["start_period"] * _NS),
        }
    labels[LABELS["spec"]] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return body


def _text(value):
    """An environment value as Docker gets it: booleans as true/false, like the role's YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def replacement_reason(container, body, image_id):
    """Why the running `container` must make way for `body`; None when it may stay."""
    labels = (container.get("Config") or {}).get("Labels") or {}
    wanted = body["Labels"]
    if LABELS["spec"] in labels:
        if labels[LABELS["spec"]] != wanted[LABELS["spec"]]:
            return "the spec changed"
    else:  # made before this module: kept while the agent's own fingerprint matches
        for key in ("config_hash", "image", "host_port"):
            if labels.get(LABELS[key]) != wanted[LABELS[key]]:
                return "the spec changed"
    if image_id and container.get("Image") != image_id:
        return "the image changed"
    return None


class _Converge:
    """One agent's replicas brought to their spec, one engine request at a time; every step
    is recorded (in check mode only recorded)."""

    def __init__(self, module, engine):
        self.module = module
        self.engine = engine
        self.check = module.check_mode
        self.results = []
        self.before = {}
        self.after = {}

    def changes(self):
        return [r for r in self.results if r["action"] not in ("unchanged", "deferred")]

    def fail(self, msg):
        self.module.fail_json(msg=msg, replicas=self.results, changed=bool(self.changes()))

    def ask(self, name, what, request, *args):
        try:
            return request(*args)
        except docker_api.EngineError as exc:
            self.fail(f"{name}: {what} failed: {exc}")

    def record(self, name, action, reason=None, before=None, after=None):
        self.results.append({"name": name, "action": action, "reason": reason})
        if action != "unchanged":
            self.before[name] = before
            self.after[name] = after

    def stop_and_delete(self, container, name):
        if not self.check:
            self.ask(name, "stopping", self.engine.stop, container["Id"], self.module.params["stop_timeout"])
            self.ask(name, "removing", self.engine.remove, container["Id"])

    def create_and_start(self, name, body):
        if not self.check:
            self.ask(name, "creating the container", self.engine.create, name, body)
            self.ask(name, "starting", self.engine.start, name)

    def replica(self, replica):
        name = replica["name"]
        body = create_body(self.module.params, replica)
        image = self.ask(name, f"looking at the image {replica['image']}", self.engine.image, replica["image"])
        # In check mode the image may be one this run would only pull or load.
        if image is None and not self.check:
            self.fail(f"{name}: the image {replica['image']} is not on this host (pull or load it first)")
        container = self.ask(name, "inspecting the container", self.engine.inspect, name)
        after = {
            "image": replica["image"],
            "config_hash": replica["config_hash"],
            "spec": body["Labels"][LABELS["spec"]],
        }
        if container is None:
            self.record(name, "created", "missing", None, after)
            self.create_and_start(name, body)
            return
        reason = replacement_reason(container, body, (image or {}).get("Id"))
        if reason and self.module.params["defer"]:
            self.record(name, "deferred", reason)
        elif reason:
            self.record(name, "replaced", reason, _summary(container), after)
            self.stop_and_delete(container, name)
            self.create_and_start(name, body)
        elif not (container.get("State") or {}).get("Running"):
            self.record(name, "started", "stopped", _summary(container), after)
            if not self.check:
                self.ask(name, "starting", self.engine.start, container["Id"])
        else:
            self.record(name, "unchanged")

    def remove(self, container, name):
        if self.module.params["defer"] and name not in self.module.params["remove"]:
            self.record(name, "deferred", "not wanted here")
            return
        self.record(name, "removed", "not wanted here", _summary(container), None)
        self.stop_and_delete(container, name)


def _summary(container):
    labels = (container.get("Config") or {}).get("Labels") or {}
    return {
        "image": labels.get(LABELS["image"]),
        "config_hash": labels.get(LABELS["config_hash"]),
        "spec": labels.get(LABELS["spec"]),
        "running": bool((container.get("State") or {}).get("Running")),
    }


def main():
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    params = module.params
    engine = docker_api.Engine()
    if not engine.available():
        module.fail_json(msg=f"the Docker engine is not running on this host (no socket {engine.socket_path})")
    names = [r["name"] for r in params["replicas"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        module.fail_json(msg=f"agent '{params['agent']}': replicas named twice: {', '.join(duplicates)}")

    run = _Converge(module, engine)
    for replica in params["replicas"]:
        run.replica(replica)

    unwanted = set(params["remove"])
    if params["prune"] or unwanted:
        agent = f"agent '{params['agent']}'"
        found = run.ask(agent, "listing its containers", engine.containers, f"{LABELS['agent']}={params['agent']}")
        for summary in sorted(found, key=lambda c: (c.get("Names") or [""])[0]):
            name = (summary.get("Names") or ["/"])[0].lstrip("/")
            if name not in names and (params["prune"] or name in unwanted):
                container = run.ask(name, "inspecting the container", engine.inspect, summary["Id"])
                if container:
                    run.remove(container, name)

    changes = run.changes()
    result = {"changed": bool(changes), "replicas": run.results}
    if module._diff and changes:
        result["diff"] = {"before": run.before, "after": run.after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
