"""Stop a run between tasks on request: the mix-in of the stoppable strategies.

Killing ansible-playbook mid-task kills its workers mid-module: a container created but never
started, a file half-replaced. With a stoppable strategy the `agentfactory` CLI's first Ctrl-C
only creates the file named by AGENTFACTORY_STOP_FILE; from then on no task starts, the tasks in
flight finish, and the run ends with its recap. (A second Ctrl-C still kills the run at once.)
"""

from __future__ import annotations

import os

STOP_FILE_ENV = "AGENTFACTORY_STOP_FILE"


class StopBetweenTasks:
    """Put before a strategy class (linear, or Mitogen's mix-in and linear) in the bases."""

    def __init__(self, tqm):
        super().__init__(tqm)
        self._stop_file = os.environ.get(STOP_FILE_ENV) or None

    def _stop_requested(self) -> bool:
        return self._stop_file is not None and os.path.exists(self._stop_file)

    def _queue_task(self, host, task, task_vars, play_context):
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
