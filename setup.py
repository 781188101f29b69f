"""Packaging beyond pyproject.toml: the wheel carries what the CLI runs (playbooks, roles,
plugins, ansible.cfg, the reference agent, the lab's and the example's inventories) as data
files, laid out as the collection agentfactory.fleet under <prefix>/share/agentfactory/collections,
where agentfactory_cli.paths.project_root() finds them when the package is not run from a
checkout."""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
SHARE = Path("share", "agentfactory", "collections", "ansible_collections", "agentfactory", "fleet")
SHIPPED = ("ansible.cfg", "galaxy.yml", "meta", "playbooks", "roles", "plugins", "agents",
           "inventory/lab/group_vars", "inventory/example")
# Never shipped: the lab's generated secrets (`lab up` writes them), bytecode.
SKIPPED = ("inventory/lab/group_vars/all/vault.yml", "inventory/lab/group_vars/all/vault.yml.tmp")


def data_files() -> list[tuple[str, list[str]]]:
    found: dict[str, list[str]] = {}
    for entry in SHIPPED:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or str(file.relative_to(ROOT)) in SKIPPED:
                continue
            target = SHARE / file.parent.relative_to(ROOT)
            found.setdefault(str(target), []).append(str(file.relative_to(ROOT)))
    return sorted(found.items())


if __name__ == "__main__":  # as setuptools runs it (tests import data_files only)
    setup(data_files=data_files())
