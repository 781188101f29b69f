"""Exit codes scripts can rely on, and the errors that map to them."""

from __future__ import annotations

# Where they overlap, these follow ansible-playbook.
EXIT_OK = 0
EXIT_ERROR = 1  # Ansible or the CLI failed in a way not listed below
EXIT_HOST_FAILED = 2  # a task failed on at least one host
EXIT_UNREACHABLE = 3  # at least one host could not be reached (wins over 2)
EXIT_INVALID_INPUT = 4  # bad inventory, catalog or options, found before anything ran
EXIT_BUSY = 75  # another run holds the fleet's lock; nothing was run (sysexits' EX_TEMPFAIL: retry later)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: the run was cancelled

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    error in Ansible or the CLI itself
  2    a task failed on at least one host
  3    at least one host was unreachable (takes precedence over 2)
  4    invalid input (inventory, catalog, options; status: no agents in the catalog), found
       before any host was touched
  75   another run holds this fleet (one run at a time; --wait to queue); nothing was run
  130  interrupted (Ctrl-C or SIGTERM); the run was cancelled
"""


class AgentFactoryError(Exception):
    """An error with a message for the operator and an exit code.

    `problems`: what is wrong, one item each (the catalog's problems, say), for --json's document;
    by default the message alone.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: str = "", problems: list[str] | None = None):
        super().__init__(message)
        self.problems = [str(p) for p in problems] if problems else [str(message)]


class InvalidInput(AgentFactoryError):
    exit_code = EXIT_INVALID_INPUT


class FleetBusy(AgentFactoryError):
    exit_code = EXIT_BUSY


class LabError(AgentFactoryError):
    exit_code = EXIT_ERROR
