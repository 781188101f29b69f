"""agentfactory_cli/ansiblecore.py against the installed ansible-core and ansible-runner: each
reach past their public API still works (an upgrade that breaks one fails here)."""

from __future__ import annotations

import contextlib
import inspect
import sys

import pytest

from agentfactory_cli import ansiblecore


def _loader():
    from ansible.parsing.dataloader import DataLoader

    return DataLoader()


def test_an_unparsed_inventory_source_is_an_error(tmp_path):
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager

    source = tmp_path / "hosts.ini"
    source.write_text("[web\nweb1 ansible_host\n")
    ansiblecore.fail_on_unparsed_inventory()
    with pytest.raises(AnsibleError), ansiblecore.collect_warnings([]):
        InventoryManager(loader=_loader(), sources=[str(source)])


def test_warnings_are_collected_and_display_is_restored(tmp_path):
    from ansible.inventory.manager import InventoryManager
    from ansible.utils.display import Display

    before = Display.warning, Display.error_as_warning
    sink: list = []
    source = tmp_path / "hosts.ini"
    source.write_text("[web\nweb1 ansible_host\n")
    with ansiblecore.collect_warnings(sink):
        Display().warning("plain")
        with contextlib.suppress(Exception):  # failing or not: the plugins' warnings are what counts
            InventoryManager(loader=_loader(), sources=[str(source)])
    assert ("plain", None) in sink
    assert any(isinstance(cause, Exception) for _msg, cause in sink)  # the plugins' own reasons
    assert (Display.warning, Display.error_as_warning) == before


def test_hostvars_make_other_hosts_variables_readable(tmp_path):
    from ansible.inventory.manager import InventoryManager
    from ansible.vars.manager import VariableManager

    source = tmp_path / "hosts.yml"
    source.write_text("all:\n  hosts:\n    a:\n    b:\n      colour: blue\n")
    loader = _loader()
    manager = InventoryManager(loader=loader, sources=[str(source)])
    variables = VariableManager(loader=loader, inventory=manager)
    ansiblecore.with_hostvars(variables, manager, loader)
    hostvars = variables.get_vars(host=manager.get_host("a"), include_hostvars=True)["hostvars"]
    assert hostvars["b"]["colour"] == "blue"


def test_the_origin_of_a_loaded_value_and_of_an_error_about_it(tmp_path):
    from ansible.errors import AnsibleError

    path = tmp_path / "vars.yml"
    path.write_text("first: 1\nagents:\n  - name: bot\n")
    data = _loader().load_from_file(str(path))
    assert ansiblecore.origin(data["agents"][0]) == (str(path), 3)
    assert ansiblecore.error_line(AnsibleError("bad agent", obj=data["agents"][0])) == 3
    assert ansiblecore.origin(object()) is None
    assert ansiblecore.error_line(ValueError("no origin")) is None


def test_vault_secrets_decrypt_files_and_inline_values(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret, VaultSecretsContext

    password_file = tmp_path / "pass"
    password_file.write_text("from-a-file\n")
    whole = VaultLib([("default", VaultSecret(b"from-a-file"))]).encrypt("a: 1\n").decode()
    typed = VaultLib([("typed", VaultSecret(b"typed-in"))]).encrypt("b: 2\n").decode()
    loader = _loader()
    secrets = ansiblecore.vault_secrets(loader, [str(password_file)], {"typed": "typed-in"})
    assert [label for label, _secret in secrets] == ["default", "typed"]
    assert VaultSecretsContext.current(optional=True) is None  # left to use_vault_secrets
    ansiblecore.use_vault_secrets(loader, secrets)
    assert VaultSecretsContext.current().secrets == secrets
    assert ansiblecore.decrypt(loader, whole) == "a: 1\n"
    assert ansiblecore.decrypt(loader, typed) == "b: 2\n"
    assert ansiblecore.decrypt(loader, "not a vault") is None
    ansiblecore.use_vault_secrets(loader, [])  # a second load keeps the first context
    assert VaultSecretsContext.current().secrets == secrets


def test_the_vault_context_is_cleared_for_a_block_and_restored():
    from ansible.parsing.vault import VaultSecretsContext

    outer = VaultSecretsContext([])
    VaultSecretsContext.initialize(outer)
    with ansiblecore.vault_context_cleared():
        assert VaultSecretsContext.current(optional=True) is None
        VaultSecretsContext.initialize(VaultSecretsContext([]))  # allowed again inside
    assert VaultSecretsContext.current() is outer


def test_host_key_checking_is_ansibles_setting():
    from ansible import constants as C

    assert ansiblecore.host_key_checking() is bool(C.config.get_config_value("HOST_KEY_CHECKING"))


def test_init_runner_prepares_a_runner_with_our_callbacks(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "play.yml").write_text("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    runner = ansiblecore.init_runner(
        private_data_dir=str(tmp_path), project_dir=str(tmp_path / "project"), playbook="play.yml",
        ident="t", quiet=True, suppress_env_files=True, rotate_artifacts=0,
        event_handler=lambda ev: True, cancel_callback=lambda: False, status_handler=lambda data, runner_config: None)
    assert callable(runner.run)
    assert runner.config.artifact_dir.endswith("t")
    assert runner.status == "unstarted"


@pytest.mark.skipif(sys.platform != "linux", reason="the spawn hook is for Linux (prctl)")
def test_the_spawn_hook_reaches_ansible_runners_spawn():
    import ansible_runner.runner
    import pexpect

    ansiblecore.install_spawn_hook()
    ansiblecore.install_spawn_hook()  # once only
    assert pexpect.spawn.agentfactory_hook and pexpect.spawn.__mro__[1].__name__ == "spawn"
    # ansible-runner looks spawn up on the module when it starts ansible-playbook.
    assert ansible_runner.runner.pexpect is pexpect
    assert "pexpect.spawn(" in inspect.getsource(ansible_runner.runner.Runner.run)
    child = pexpect.spawn("/bin/echo", ["spawned"])
    try:
        assert ansiblecore.spawned_pid() == child.pid
        child.expect("spawned")
    finally:
        child.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the spawn hook is for Linux (prctl)")
def test_the_spawned_child_is_closed_without_ptyprocess_pause_and_keeps_its_exit_status():
    import pexpect

    ansiblecore.install_spawn_hook()
    child = pexpect.spawn("/bin/sh", ["-c", "echo done; exit 3"])
    # As ansible-runner does: until the child has exited, then EOF, then close.
    while child.isalive():
        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=5)
    child.expect(pexpect.EOF, timeout=5)
    child.close()
    assert child.ptyproc.delayafterclose == 0
    assert child.exitstatus == 3
