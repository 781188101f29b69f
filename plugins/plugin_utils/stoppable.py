"""Stop a run between tasks on request: the mix-in of the stoppable strategies.

Killing ansible-playbook mid-task kills its workers mid-module: a container created but never
started, a file half-replaced. With a stoppable strategy the `agentfactory` CLI's first Ctrl-C
only creates the file named by AGENTFACTORY_STOP_FILE; from then on no task starts, the tasks in
flight finish, and the run ends with its recap. (A second Ctrl-C still kills the run at once.)

The same strategies import this collection's filters in the controller before the first worker
forks (_warm_filters): every worker is a fork of the controller, and one that finds them not
imported yet imports every filter file of the collection, and what those import, the first time
a template names one of them (about 0.1 s per host and task on a small machine).

They also hold a run's first task at a gate when AGENTFACTORY_GATE_FILE names one: the
CLI starts ansible-playbook while it checks the run's inputs itself (read-only verbs), then
creates the gate file to let the tasks start, or the stop file: no task starts, no host is
contacted.
"""

from __future__ import annotations

import contextlib
import os
import time

STOP_FILE_ENV = "AGENTFACTORY_STOP_FILE"
GATE_FILE_ENV = "AGENTFACTORY_GATE_FILE"
# How long the first task waits at the gate before the run is given up as stopped.
GATE_TIMEOUT_SECONDS = 600.0


def _warm_filters() -> None:
    from ansible.plugins.loader import filter_loader

    # One name loads them all: the loader imports each filter file to find it. On a failure the
    # template that names a filter still fails with its own error.
    with contextlib.suppress(Exception):
        filter_loader.get("agentfactory.fleet.agentfactory_agents_for_host")


class StopBetweenTasks:
    """Put before a strategy class (linear, or Mitogen's mix-in and linear) in the bases."""

    def __init__(self, tqm):
        super().__init__(tqm)
        self._stop_file = os.environ.get(STOP_FILE_ENV) or None
        self._gate_file = os.environ.get(GATE_FILE_ENV) or None
        self._gate_closed = False
        _warm_filters()

    def _stop_requested(self) -> bool:
        return self._gate_closed or (self._stop_file is not None and os.path.exists(self._stop_file))

    def _wait_at_gate(self) -> None:
        """Until the gate file or the stop file exists (a later play finds the gate open)."""
        deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
        while not os.path.exists(self._gate_file) and not self._stop_requested():
            if time.monotonic() > deadline:
                self._gate_closed = True
                break
            time.sleep(0.01)
        self._gate_file = None

    def _queue_task(self, host, task, task_vars, play_context):
        if self._gate_file is not None:
            self._wait_at_gate()
        if not self._stop_requested():
            return super()._queue_task(host, task, task_vars, play_context)
        # Not started on this host. The loops stop at the TQM's terminated flag; set it only
        # once nothing is in flight, because waiting for results stops at that flag too.
        self._blocked_hosts[host.get_name()] = False
        if self._pending_results == 0:
            self._tqm._terminated = True
        return None

    def _wait_on_pending_results(self, iterator):
        results = super()._wait_on_pending_results(iterator)
        if self._stop_requested():
            self._tqm._terminated = True
        return results
