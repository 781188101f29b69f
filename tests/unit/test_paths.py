"""Where the CLI finds the project and keeps its state: a checkout, or a wheel's install."""

from __future__ import annotations

import sys

from agentfactory_cli import paths


def test_a_checkout_is_its_own_project_with_state_inside(monkeypatch):
    monkeypatch.delenv("AGENTFACTORY_STATE_DIR", raising=False)
    root = paths.project_root()
    assert (root / "ansible.cfg").exists() and (root / "playbooks" / "site.yml").exists()
    assert paths.state_dir() == root / ".agentfactory"


def test_an_installed_package_runs_the_shared_data_and_keeps_state_in_xdg(tmp_path, monkeypatch):
    # As a wheel lays it out: the package in site-packages, the project as a collection in
    # <prefix>/share.
    site = tmp_path / "venv" / "lib" / "site-packages" / "agentfactory_cli"
    site.mkdir(parents=True)
    share = tmp_path / "venv" / paths.INSTALLED_COLLECTION
    share.mkdir(parents=True)
    (share / "ansible.cfg").write_text("[defaults]\n")
    monkeypatch.setattr(paths, "__file__", str(site / "paths.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.delenv("AGENTFACTORY_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert paths.project_root() == share
    assert paths.collections_root() == tmp_path / "venv" / "share" / "agentfactory" / "collections"
    assert paths.state_dir() == tmp_path / "state" / "agentfactory"
    monkeypatch.setenv("AGENTFACTORY_STATE_DIR", str(tmp_path / "elsewhere"))
    assert paths.state_dir() == tmp_path / "elsewhere"


def test_the_wheel_ships_what_the_cli_runs_and_no_lab_secret():
    import runpy

    from agentfactory_cli.paths import project_root

    setup = runpy.run_path(str(project_root() / "setup.py"), run_name="setup_under_test")
    shipped = {f for _target, files in setup["data_files"]() for f in files}
    assert setup["SHARE"] == paths.INSTALLED_COLLECTION  # where the CLI looks for it
    for needed in ("ansible.cfg", "playbooks/site.yml", "roles/agent/tasks/main.yml",
                   "plugins/modules/agent_health.py", "agents/reference/agent.py",
                   "inventory/lab/group_vars/all/agents.yml"):
        assert needed in shipped, needed
    assert "inventory/lab/group_vars/all/vault.yml" not in shipped
