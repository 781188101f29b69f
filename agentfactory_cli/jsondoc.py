"""`--json`: the one JSON document on stdout, whatever the exit code; every path writes it here.

A playbook verb's document has the same keys whether it ran or not:

    {"verb": "deploy", "status": "successful", "rc": 0, "error": null, "problems": [],
     "hosts": {...}, "artifacts": "/path/to/the/run"}

A run's status is ansible-runner's (successful, failed, canceled, error); a command that
stopped before running anything (invalid input, the fleet busy, no space for the run) has
status "not_run", its message as error and what is wrong as problems, one item each. Displays
add their own keys (status: healthy, agents, replicas, unknown_hosts; check: facts and problems
per host; update: update). `lab status`, `lab credentials` and `config` print documents of their
own through write() too, and this shape when they fail.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentfactory_cli.runner import RunResult

NOT_RUN = "not_run"

# Documents printed by this process: cli.main() prints its failure document only when the
# command printed none (a Ctrl-C while the lock is released, after the run's, adds no second one).
printed = 0


def write(doc: dict[str, Any]) -> None:
    global printed
    printed += 1
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def run_document(result: RunResult, rc: int) -> dict[str, Any]:
    """The document of a run that took place; `rc` is the verb's exit code (status: its health).
    Its problems are the tasks that failed and the hosts lost, one item each."""
    problems = [f"{f['host']}: {f['task']}: {f['message']}" if f.get("task") else f"{f['host']}: {f['message']}"
                for f in result.failures]
    return {"verb": result.verb, "status": result.status, "rc": rc, "error": result.error or None,
            "problems": problems, "hosts": result.hosts, "artifacts": str(result.artifacts)}


def failure_document(verb: str | None, rc: int, error: str, problems: list[str] | None = None,
                     status: str = NOT_RUN) -> dict[str, Any]:
    """The document of a command stopped before it ran anything (or broken by a bug: status error)."""
    return {"verb": verb, "status": status, "rc": rc, "error": error,
            "problems": list(problems) if problems is not None else [error], "hosts": {}, "artifacts": None}
