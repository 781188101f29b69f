"""The playbook-running verbs: which playbook each runs and which extra variables it passes.

One table, so `--help`, the runner arguments and the README cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentfactory_cli.errors import InvalidInput
from agentfactory_cli.inventory import Inventory


@dataclass(frozen=True)
class Verb:
    playbook: str
    help: str
    # Extra variables for the playbook, from the parsed command line and the loaded inventory.
    extravars: Callable[[argparse.Namespace, Inventory], dict[str, Any]] | None = None
    # Accepts --agent NAME (repeatable) to act on some agents only.
    agents: bool = False
    # Another playbook for some options (rotate --retire); default `playbook`.
    playbook_of: Callable[[argparse.Namespace], str] | None = None
    # What to do on the controller before the run, once the fleet's lock is held: (args, the
    # inventory paths, check mode).
    prepare: Callable[[argparse.Namespace, list[Path], bool], None] | None = None

    def playbook_for(self, args: argparse.Namespace) -> str:
        return self.playbook_of(args) if self.playbook_of else self.playbook


def _action(action: str) -> Callable[[argparse.Namespace, Inventory], dict[str, Any]]:
    def extravars(args: argparse.Namespace, inventory: Inventory) -> dict[str, Any]:
        return {"agentfactory_action": action, "agentfactory_only_agents": list(args.agent or [])}

    return extravars


def _scale(args: argparse.Namespace, inventory: Inventory) -> dict[str, Any]:
    if not args.agent or len(args.agent) != 1:
        raise InvalidInput("scale takes exactly one --agent NAME")
    if args.replicas is None:
        raise InvalidInput("scale needs --replicas N (0 or more)")
    from agentfactory_cli.model import catalog  # Ansible and jsonschema: not for --help

    if args.replicas > catalog.MAX_REPLICAS_PER_HOST:
        raise InvalidInput(f"--replicas: at most {catalog.MAX_REPLICAS_PER_HOST} per host (got {args.replicas})")
    return {"agentfactory_action": "deploy", "agentfactory_only_agents": args.agent,
            "agentfactory_replicas": {args.agent[0]: args.replicas}}


def _image_push(args: argparse.Namespace, inventory: Inventory) -> dict[str, Any]:
    from agentfactory_cli.lab.agentimage import ensure_agent_archive

    ref, archive = ensure_agent_archive()
    return {"agentfactory_image": ref, "agentfactory_image_archive": str(archive),
            "agentfactory_image_repository": args.repository}


def _update(args: argparse.Namespace, inventory: Inventory) -> dict[str, Any]:
    if not args.agent or len(args.agent) != 1:
        raise InvalidInput("update takes exactly one --agent NAME")
    agent = inventory.agents[args.agent[0]]
    batch = args.batch or agent["update"]["batch"]
    extravars = {"agentfactory_update_agent": agent["name"], "agentfactory_update_hosts": agent["hosts"],
                 "agentfactory_update_batch": batch}
    if args.image:
        if agent["runtime"] != "docker":
            raise InvalidInput(f"--image: agent {agent['name']!r} runs under systemd, it has no image")
        from agentfactory_cli.model import fleet

        extravars["agentfactory_images"] = {agent["name"]: fleet.with_tag(agent["image"], args.image)}
    return extravars


def _rotate(args: argparse.Namespace, inventories: list[Path], check: bool) -> None:
    """On a lab, new values for its generated secrets (not in check mode), under the fleet's
    lock: an operator's own inventory carries the new values in its vault already."""
    from agentfactory_cli.lab import lab_of_inventory
    from agentfactory_cli.lab import secrets as labsecrets

    labs = [lab for lab in map(lab_of_inventory, inventories) if lab is not None]
    if labs and not check:
        change = labsecrets.retire if args.retire else labsecrets.rotate
        change(labs[0].vault_file, labs[0].vault_password_file)


def _names(args: argparse.Namespace, inventory: Inventory) -> dict[str, Any]:
    return {"agentfactory_only_agents": list(args.agent or [])}


VERBS: dict[str, Verb] = {
    "check": Verb("prechecks.yml", "validate inventory and catalog, then check every host can take the roles"),
    "bootstrap": Verb("bootstrap.yml", "install Docker and node_exporter on every host"),
    "monitoring": Verb("monitoring.yml", "install Prometheus, Alertmanager and Grafana on the monitoring hosts"),
    "registry": Verb("registry.yml", "install the on-prem image registry on the registry hosts"),
    "gateway": Verb("gateway.yml", "install HAProxy on the gateway hosts, one frontend per agent with gateway.port"),
    "deploy": Verb("agents.yml", "converge the agents to the catalog and wait until they are healthy",
                   _action("deploy"), agents=True),
    "start": Verb("agents.yml", "start the deployed replicas", _action("start"), agents=True),
    "stop": Verb("agents.yml", "stop the replicas (they stay deployed)", _action("stop"), agents=True),
    "restart": Verb("agents.yml", "restart the replicas and wait until they are healthy",
                    _action("restart"), agents=True),
    "scale": Verb("agents.yml", "set the replica count of one agent (until the next deploy)", _scale,
                  agents=True),
    "destroy": Verb("agents.yml", "remove agents: containers or units, config, secrets (asks first)",
                    _action("destroy"), agents=True),
    "update": Verb("update.yml", "rolling update of one agent: batches, health gate, automatic rollback",
                   _update, agents=True),
    "status": Verb("health.yml", "fleet health: every replica's state, health, latency, restarts, CPU, memory",
                   _names, agents=True),
    "site": Verb("site.yml", "everything, in order: bootstrap, monitoring, registry, deploy, gateway"),
    "rotate": Verb("rotate.yml", "new host certificates, passwords, API keys and agent secrets, without downtime "
                   "(--retire: the API keys it replaced stop working)",
                   playbook_of=lambda args: "gateway.yml" if args.retire else "rotate.yml", prepare=_rotate),
}
