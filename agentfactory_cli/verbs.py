"""The playbook-running verbs: each one object saying all the CLI does for it besides the common
steps: its options, the playbook and extra variables, the hosts its report is about, what the
operator confirms, what it reads from the run and which display draws it.

One table, so `--help`, the runner arguments and the README cannot drift apart; cli.py parses,
loads the inventory, asks the verb, runs and draws.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentfactory_cli import errors, prune, status
from agentfactory_cli.display import RunDisplay
from agentfactory_cli.errors import InvalidInput
from agentfactory_cli.inventory import Inventory
from agentfactory_cli.runner import Extractor, PlaybookRequest


@dataclass(frozen=True)
class Verb:
    playbook: str
    help: str
    # Extra variables for the playbook, from the parsed command line and the loaded inventory
    # (None for an `early` verb: its run starts before the inventory is loaded).
    extravars: Callable[[argparse.Namespace, Inventory | None], dict[str, Any]] | None = None
    # Read-only, and its run starts while the inputs are checked: its first task waits for them.
    early: bool = False
    # A run of a task or two per host: starting Mitogen on every host would cost more than it
    # saves, so it uses Ansible's own way unless the mitogen setting says otherwise.
    few_tasks: bool = False
    # Accepts --agent NAME (repeatable) to act on some agents only.
    agents: bool = False
    # Another playbook for some options (rotate --retire); default `playbook`.
    playbook_of: Callable[[argparse.Namespace], str] | None = None
    # What to do on the controller before the run, once the fleet's lock is held: (args, the
    # inventory paths, check mode).
    prepare: Callable[[argparse.Namespace, list[Path], bool], None] | None = None
    # Its own options, added to its sub-parser.
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    # --agent names exactly one agent (else: some, or every agent by default).
    one_agent: bool = False
    # It changes hosts (--check, --diff, --wait mean something); it reads agent secrets (--strict).
    changes: bool = True
    strict: bool = True
    # It writes agent secrets to hosts: their vault values must decrypt before the run.
    secrets: bool = False
    # The hosts its report is about (PlaybookRequest.targets), and the replicas the catalog places
    # on each host of the run (PlaybookRequest.desired): (args, the loaded inventory).
    targets: Callable[[argparse.Namespace, Inventory], list[str]] | None = None
    desired: Callable[[argparse.Namespace, Inventory], dict[str, dict[str, int]]] | None = None
    # Asks the operator before anything is locked or run: (args, the request).
    ask: Callable[[argparse.Namespace, PlaybookRequest], None] | None = None
    # Confirms with the operator once the fleet's lock is held: (args, the request, stderr's console).
    confirm: Callable[[argparse.Namespace, PlaybookRequest, Any], None] | None = None
    # What it reads from the run's events (RunResult.extracts), and the display that draws the run.
    extract: Mapping[str, Extractor] = field(default_factory=dict)
    display: Callable[[argparse.Namespace, PlaybookRequest], RunDisplay] | None = None

    def playbook_for(self, args: argparse.Namespace) -> str:
        return self.playbook_of(args) if self.playbook_of else self.playbook

    def display_for(self, args: argparse.Namespace, req: PlaybookRequest) -> RunDisplay:
        if self.display:
            return self.display(args, req)
        return RunDisplay(json_mode=args.json, verbosity=args.verbose, show_diff=req.diff)


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


def _names(args: argparse.Namespace, inventory: Inventory | None) -> dict[str, Any]:
    return {"agentfactory_only_agents": list(args.agent or [])}


def _update_targets(args: argparse.Namespace, inventory: Inventory) -> list[str]:
    """Where the agent is placed, within the limit."""
    from agentfactory_cli.model import placement

    targets, _ = placement.resolve_hosts(inventory.agents[args.agent[0]]["hosts"], inventory.groups)
    if args.limit:
        targets = [h for h in targets if h in inventory.limited]
    return targets


def _desired_replicas(args: argparse.Namespace, inventory: Inventory) -> dict[str, dict[str, int]]:
    """host -> agent -> replicas, as the catalog places the agents (all, or --agent) on the hosts of the run."""
    if not inventory.agent_names:
        # Not "healthy": there is nothing to be healthy, which is known before any host is contacted.
        raise InvalidInput("no agents in the catalog: nothing to report (agentfactory_agents is empty or not set)")
    from agentfactory_cli.model import placement

    desired: dict[str, dict[str, int]] = {}
    for name, agent in inventory.agents.items():
        if args.agent and name not in args.agent:
            continue
        hosts, _ = placement.resolve_hosts(agent["hosts"], inventory.groups)
        for host in hosts:
            if host in inventory.limited and agent["replicas"]:
                desired.setdefault(host, {})[name] = int(agent["replicas"])
    return desired


def _confirm_destroy(args: argparse.Namespace, req: PlaybookRequest) -> None:
    if args.yes or args.check:
        return
    what = ", ".join(args.agent) if args.agent else "EVERY agent in the catalog"
    where = f" on {args.limit}" if args.limit else ""
    if not sys.stdin.isatty():
        raise errors.InvalidInput(f"destroy would remove {what}{where}: pass --yes to confirm (no terminal to ask)")
    answer = input(f"Remove {what}{where}: containers, units, config and secrets? Type 'yes' to go on: ")
    if answer.strip().lower() != "yes":
        raise errors.AgentFactoryError("destroy cancelled; nothing was changed")


def _status_display(args: argparse.Namespace, req: PlaybookRequest) -> RunDisplay:
    return status.StatusDisplay(desired=req.desired, json_mode=args.json, verbosity=args.verbose)


def _check_display(args: argparse.Namespace, req: PlaybookRequest) -> RunDisplay:
    return status.CheckDisplay(json_mode=args.json, verbosity=args.verbose, agents=req.agents)


def _update_display(args: argparse.Namespace, req: PlaybookRequest) -> RunDisplay:
    return status.UpdateDisplay(agent=req.extravars["agentfactory_update_agent"], placed=req.targets,
                                json_mode=args.json, verbosity=args.verbose, show_diff=req.diff)


def int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _batch(text: str) -> int | str:
    """A batch size: a whole number >= 1, or a percentage 1%-100% (as Ansible's `serial`)."""
    if text.endswith("%") and text[:-1].isdigit() and 1 <= int(text[:-1]) <= 100:
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a number >= 1 or a percentage like 25%, got {text!r}")


def _scale_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--replicas", type=int_at_least(0), metavar="N", help="replicas per host (0 or more)")


def _update_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--image", metavar="TAG", help="new image tag (or a whole reference) for this run")
    sp.add_argument("--batch", type=_batch, metavar="N|N%", help="hosts per batch (default: the agent's update.batch)")


def _destroy_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _prune_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("-y", "--yes", "--prune", dest="yes", action="store_true",
                    help="remove agents running on a host but no longer placed there by the catalog, "
                         "without asking (default: list them and ask; refused without a terminal)")


def _rotate_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--retire", action="store_true",
                    help="only drop the API keys the last rotation replaced (the gateway stops admitting them)")


VERBS: dict[str, Verb] = {
    "check": Verb("prechecks.yml", "validate inventory and catalog, then check every host can take the roles",
                  changes=False, early=True, few_tasks=True, extract={status.PRECHECK: status.precheck_facts},
                  display=_check_display),
    "bootstrap": Verb("bootstrap.yml", "install Docker and node_exporter on every host"),
    "monitoring": Verb("monitoring.yml", "install Prometheus, Alertmanager and Grafana on the monitoring hosts"),
    "registry": Verb("registry.yml", "install the on-prem image registry on the registry hosts"),
    "gateway": Verb("gateway.yml", "install HAProxy on the gateway hosts, one frontend per agent with gateway.port"),
    "deploy": Verb("agents.yml", "converge the agents to the catalog and wait until they are healthy",
                   _action("deploy"), agents=True, secrets=True, arguments=_prune_arguments, confirm=prune.confirm),
    "start": Verb("agents.yml", "start the deployed replicas", _action("start"), agents=True),
    "stop": Verb("agents.yml", "stop the replicas (they stay deployed)", _action("stop"), agents=True),
    "restart": Verb("agents.yml", "restart the replicas and wait until they are healthy",
                    _action("restart"), agents=True),
    "scale": Verb("agents.yml", "set the replica count of one agent (until the next deploy)", _scale,
                  agents=True, one_agent=True, secrets=True, arguments=_scale_arguments),
    "destroy": Verb("agents.yml", "remove agents: containers or units, config, secrets (asks first)",
                    _action("destroy"), agents=True, arguments=_destroy_arguments, ask=_confirm_destroy),
    "update": Verb("update.yml", "rolling update of one agent: batches, health gate, automatic rollback",
                   _update, agents=True, one_agent=True, secrets=True, arguments=_update_arguments,
                   targets=_update_targets, extract={status.UPDATE: status.update_outcome}, display=_update_display),
    "status": Verb("health.yml", "fleet health: every replica's state, health, latency, restarts, CPU, memory",
                   _names, agents=True, changes=False, early=True, few_tasks=True, strict=False,
                   desired=_desired_replicas,
                   extract={status.HEALTH: status.health_report}, display=_status_display),
    "site": Verb("site.yml", "everything, in order: bootstrap, monitoring, registry, deploy, gateway",
                 secrets=True, arguments=_prune_arguments, confirm=prune.confirm),
    "rotate": Verb("rotate.yml", "new host certificates, passwords, API keys and agent secrets, without downtime "
                   "(--retire: the API keys it replaced stop working)",
                   playbook_of=lambda args: "gateway.yml" if args.retire else "rotate.yml", prepare=_rotate,
                   secrets=True, arguments=_rotate_arguments),
}
# `image push`, a playbook verb under `image` (its request's verb: image-push).
IMAGE_PUSH = Verb("image.yml", "push the reference agent image", _image_push)
