"""Every place the CLI reaches past the public API of ansible-core (and of ansible-runner).

Written for ansible-core 2.19 and ansible-runner 2.4 (pyproject.toml pins both lines). Each
function says what it relies on; tests/unit/test_ansiblecore.py exercises each one against the
installed versions, so an upgrade that breaks one fails there rather than somewhere in a run.
Ansible is imported inside the functions: `agentfactory --help` does not pay for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

# --- inventory loading --------------------------------------------------------------------------


def fail_on_unparsed_inventory() -> None:
    """Make an inventory source no plugin can parse an error, in this process, as
    ANSIBLE_INVENTORY_UNPARSED_FAILED does for our runs.

    2.19: InventoryManager reads the settings from ansible.constants at parse time, and the
    constants are read from the environment once, at import; so they are assigned here.
    """
    from ansible import constants as C

    C.INVENTORY_UNPARSED_IS_FAILED = True
    C.INVENTORY_ANY_UNPARSED_IS_FAILED = True


@contextlib.contextmanager
def collect_warnings(sink: list[tuple[str, BaseException | None]]) -> Iterator[None]:
    """Keep Ansible's warnings out of the terminal: (message, exception or None) go to `sink`.

    2.19: the inventory plugins that fail on a source report it through
    Display.error_as_warning(msg, exception), the others through Display.warning(msg); Display
    has no hook for either, so both methods are replaced on the class for the block.
    """
    from ansible.utils.display import Display

    saved = Display.warning, Display.error_as_warning

    def warning(self, msg, *args, **kwargs):
        sink.append((str(msg), None))

    def error_as_warning(self, msg, exception, *args, **kwargs):
        sink.append((str(msg), exception))

    Display.warning, Display.error_as_warning = warning, error_as_warning
    try:
        yield
    finally:
        Display.warning, Display.error_as_warning = saved


def with_hostvars(variables, manager, loader) -> None:
    """Give a VariableManager the `hostvars` a play would: templates may read other hosts' variables.

    2.19: the play's executor sets VariableManager._hostvars (there is no public setter);
    get_vars(include_hostvars=True) adds it to the variables only when it is set.
    """
    from ansible.vars.hostvars import HostVars

    variables._hostvars = HostVars(inventory=manager, variable_manager=variables, loader=loader)


# --- where a value or an error comes from -------------------------------------------------------


def origin(value: Any) -> tuple[str, int | None] | None:
    """(path, line or None) where Ansible's loader read this value, when it knows.

    2.19: values carry an Origin tag of the data tagging in ansible._internal (no public API
    reads it). Any failure, an import or a changed tag, is "unknown": no origin is no reason to fail.
    """
    try:
        from ansible._internal._datatag._tags import Origin

        tag = Origin.get_tag(value)
    except Exception:
        return None
    if tag is None or not tag.path:
        return None
    return tag.path, tag.line_num


def error_line(exc: BaseException) -> int | None:
    """The line of the file an Ansible error is about (its `obj`'s origin, else its own), if known.

    2.19: AnsibleError keeps what it is about as `obj`, tagged with its Origin; the exceptions
    of the inventory plugins are tagged themselves.
    """
    found = origin(getattr(exc, "obj", None)) or origin(exc)
    return found[1] if found else None


# --- vault ---------------------------------------------------------------------------------------


def vault_secrets(loader, vault_ids: list[str], passwords: dict[str, str]) -> list[tuple[str, Any]]:
    """The vault secrets of password files (`vault_ids`, LABEL@FILE or FILE) and of typed
    passwords (label -> password), as ansible-playbook would make them. Raises AnsibleError.

    2.19: CLI.setup_vault_secrets is a method of ansible's command-line base class, not a
    library function; initialize_context=False (new in 2.19) leaves the process-wide context
    to use_vault_secrets().
    """
    from ansible.cli import CLI
    from ansible.parsing.vault import VaultSecret

    secrets = CLI.setup_vault_secrets(loader, vault_ids=list(vault_ids), auto_prompt=False,
                                      initialize_context=False)
    return secrets + [(label, VaultSecret(password.encode())) for label, password in passwords.items()]


def use_vault_secrets(loader, secrets: list[tuple[str, Any]]) -> None:
    """Decrypt with `secrets`: the loader's whole-file vaults, and the inline !vault values,
    which 2.19 decrypts through the process-wide VaultSecretsContext.

    The context can be initialised once per process: a second load in the same process (the
    tests) keeps the first.
    """
    from ansible.parsing.vault import VaultSecretsContext

    loader.set_vault_secrets(secrets)
    if VaultSecretsContext.current(optional=True) is None:
        VaultSecretsContext.initialize(VaultSecretsContext(secrets))


@contextlib.contextmanager
def vault_context_cleared() -> Iterator[None]:
    """The block starts without a process-wide vault context, and the one before is back after
    it (tests: one test's password is not another's).

    2.19: VaultSecretsContext keeps it in the class variable `_current`, with no way to reset it.
    """
    from ansible.parsing.vault import VaultSecretsContext

    saved = VaultSecretsContext._current
    VaultSecretsContext._current = None
    try:
        yield
    finally:
        VaultSecretsContext._current = saved


def decrypt(loader, text: str) -> str | None:
    """A whole-file vault's text decrypted with the loader's vault secrets; None when they do not
    open it.

    2.19: DataLoader keeps its VaultLib as `_vault` and decrypts only files it reads itself.
    """
    from ansible.errors import AnsibleError

    try:
        return loader._vault.decrypt(text).decode(errors="replace")
    except (AnsibleError, AttributeError, ValueError):
        return None


# --- settings ------------------------------------------------------------------------------------


def host_key_checking() -> bool:
    """Ansible's host_key_checking setting (ansible.cfg, ANSIBLE_HOST_KEY_CHECKING).

    2.19: read from ansible.constants, where the settings are resolved at import.
    """
    from ansible import constants as C

    return bool(C.HOST_KEY_CHECKING)


# --- ansible-runner ------------------------------------------------------------------------------


def init_runner(**kwargs: Any):
    """An ansible-runner Runner, prepared, not started: we run it in a thread of our own.

    ansible-runner 2.4: interface.init_runner is what run() and run_async() use; it is not
    exported by the package.
    """
    from ansible_runner.interface import init_runner as init

    return init(**kwargs)


# ansible-playbook's pid, in the thread that started it (see install_spawn_hook).
_spawned = threading.local()
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int, prctl) -> None:
    """In the child, before exec: SIGTERM when the thread that started it ends, which includes
    the CLI being killed (SIGKILL too). ansible-playbook's own SIGTERM handler then stops its
    workers' process groups, so nothing is left behind."""
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def install_spawn_hook() -> None:
    """Make ansible-runner's pexpect.spawn start ansible-playbook with _die_with_parent.

    ansible-runner 2.4 has no option for this (its Runner calls `pexpect.spawn` without
    preexec_fn, through the module attribute, which is what is replaced), and its child ignores
    SIGHUP, so without this a killed CLI leaves ansible-playbook running.
    """
    import pexpect

    if sys.platform != "linux" or getattr(pexpect.spawn, "agentfactory_hook", False):
        return
    # Loaded here, not in the forked child (dlopen after fork in a threaded process can hang).
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    class Spawn(pexpect.spawn):
        agentfactory_hook = True

        def __init__(self, *args: Any, preexec_fn=None, **kwargs: Any) -> None:
            hook = preexec_fn or functools.partial(_die_with_parent, os.getpid(), prctl)
            super().__init__(*args, preexec_fn=hook, **kwargs)
            _spawned.pid = self.pid
            # ansible-runner closes the pty only once ansible-playbook has exited (it waits for
            # that, then for EOF), so ptyprocess's 0.1 s "let the kernel update the process
            # status" pause before its kill-if-alive check only delays the end of every run.
            self.ptyproc.delayafterclose = 0

    pexpect.spawn = Spawn


def spawned_pid() -> int | None:
    """The pid of the ansible-playbook this thread started through the spawn hook, if any."""
    return getattr(_spawned, "pid", None)
