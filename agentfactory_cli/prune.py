"""No silent removal: a deploy of every agent removes the agents running on a host but no longer
placed there by the catalog only when the operator said so.

The CLI cannot know what runs on the hosts before a run, so the agent role's prune step removes
only when the play is told it may (``agentfactory_prune_confirmed``) and otherwise fails on that
host, naming what it would remove. Before a deploy, unless ``--yes`` was given, the CLI runs that
step alone in check mode (``agentfactory_action=prune``: it lists, changes nothing), shows the list
and asks, like ``destroy``; without a terminal it refuses (exit 4).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from agentfactory_cli import errors
from agentfactory_cli.display import RunDisplay, plain
from agentfactory_cli.runner import PlaybookRequest

CONFIRMED_VAR = "agentfactory_prune_confirmed"
# The agent role's task that records the list (roles/agent/tasks/prune.yml).
LIST_TASK = "List what a deploy would remove"
PENDING_FACT = "__agent_prune_pending"
PENDING = "prune_pending"  # the extract of the listing run: host -> the agents it would remove


def pending_of(data: dict[str, Any]) -> list[str] | None:
    """The agents the prune step lists on a host (the extract of the listing run)."""
    if data.get("task") != LIST_TASK:
        return None
    agents = ((data.get("res") or {}).get("ansible_facts") or {}).get(PENDING_FACT) or []
    return [str(a) for a in agents] or None


class _Listing(RunDisplay):
    """A quiet run display: no progress table for the listing."""

    def __init__(self) -> None:
        super().__init__(json_mode=True)

    def start(self, req, progress=None) -> None:
        pass


def pending_removals(req: PlaybookRequest) -> dict[str, list[str]] | None:
    """{host: [agent]} a deploy would remove; None when the listing run itself did not succeed."""
    from agentfactory_cli.runner import run_playbook

    listing = dataclasses.replace(
        req, verb=f"{req.verb}-listing", playbook="agents.yml", check=True, diff=False, verbosity=0,
        extravars={"agentfactory_action": "prune", "agentfactory_only_agents": []}, tags=[], skip_tags=[],
        start_at_task=None, extract={PENDING: pending_of})
    display = _Listing()
    try:
        result = run_playbook(listing, display)
    finally:
        display.stop()
    if result.exit_code == errors.EXIT_INTERRUPTED:
        raise KeyboardInterrupt  # Ctrl-C during the listing: nothing more runs
    return result.extracts.get(PENDING, {}) if result.exit_code == 0 else None


def confirm(args: argparse.Namespace, req: PlaybookRequest, err) -> None:
    """Set agentfactory_prune_confirmed on `req` when removals are confirmed; raise when refused.
    The confirmation of the verbs whose run prunes (deploy, site: verbs.py); `--agent` prunes nothing."""
    if getattr(args, "agent", None):
        return
    if args.yes or args.check:  # a dry run changes nothing: let it show what it would remove
        req.extravars[CONFIRMED_VAR] = True
        return
    pending = pending_removals(req)
    if pending is None:
        err.print(plain("Could not list the agents a deploy would remove: the agent role refuses any removal "
                        "on its own (deploy --yes to allow them).", "dim"))
        return
    if not pending:
        return
    lines = "\n".join(f"  {host}: {', '.join(agents)}" for host, agents in sorted(pending.items()))
    what = f"{args.verb} would remove agents running on hosts but absent from the catalog there:\n{lines}"
    if not sys.stdin.isatty():
        raise errors.InvalidInput(f"{what}\npass --yes to confirm (no terminal to ask)")
    err.print(plain(what))
    err.print(plain("Remove them (containers, units, config and secrets)? Type 'yes' to go on: "), end="")
    if input().strip().lower() != "yes":
        raise errors.AgentFactoryError(f"{args.verb} cancelled; nothing was changed")
    req.extravars[CONFIRMED_VAR] = True
