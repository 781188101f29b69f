"""The linear strategy, stopped between tasks on request: what the CLI's Ctrl-C uses
(plugins/plugin_utils/stoppable.py)."""

from __future__ import annotations

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.stoppable import StopBetweenTasks

DOCUMENTATION = r"""
name: stoppable
short_description: Linear, but stops between tasks when asked
description:
  - The C(linear) strategy. When the file named by the environment variable
    C(AGENTFACTORY_STOP_FILE) exists, no further task is started on any host; the tasks already
    running finish and their results are recorded, then every remaining play ends at once.
  - The C(agentfactory) CLI selects it and creates the file on the first Ctrl-C (or SIGTERM).
author: agentfactory
"""


class StrategyModule(StopBetweenTasks, LinearStrategyModule):
    pass
