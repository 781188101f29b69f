"""What the project ships agrees with what it uses: the collections named in galaxy.yml and
execution-environment.yml are the ones the roles and playbooks call, the execution environment's
Python requirements cover every import of plugins/, and AWX finds every playbook."""

from __future__ import annotations

import ast
import configparser
import os
import re
import sys
from pathlib import Path

import ansible
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The collections the `ansible` package installed beside ansible-core (community.docker...).
INSTALLED = Path(ansible.__file__).resolve().parent.parent / "ansible_collections"
# This collection, and ansible-core's own: never a dependency.
OWN = {"agentfactory.fleet", "ansible.builtin", "ansible.legacy"}
CORE_IMPORT = re.compile(r"^(?:from|import) ansible\.\S+", re.MULTILINE)
FQCN = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b")
# Import names whose distribution on PyPI is named otherwise.
DISTRIBUTIONS = {"yaml": "pyyaml", "jinja2": "jinja2", "dateutil": "python-dateutil", "ansible_mitogen": "mitogen"}


def _ee() -> dict:
    return yaml.safe_load((ROOT / "execution-environment.yml").read_text())


def _collections_in(text: str) -> set[str]:
    """ns.coll of every ns.coll.name in `text` that is an installed collection."""
    found = {f"{ns}.{coll}" for ns, coll in FQCN.findall(text)}
    return {c for c in found - OWN if (INSTALLED / Path(*c.split("."))).is_dir()}


def used_by_content() -> set[str]:
    """The collections whose modules, filters, lookups... roles, playbooks and plugins call."""
    used: set[str] = set()
    for top in ("roles", "playbooks", "plugins"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2", ".py"):
                # ansible-core's own Python (from ansible.utils.display ...) names no collection.
                used |= _collections_in(CORE_IMPORT.sub("", path.read_text(errors="replace")))
    return used


def used_by_config() -> set[str]:
    """The collections ansible.cfg names (callbacks, strategy...): used when the project runs
    from its root (the CLI, an AWX project), not when the collection is installed."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    values = " ".join(v for section in cfg.sections() for v in cfg[section].values())
    return _collections_in(values)


def ee_collections() -> dict[str, str]:
    galaxy = _ee()["dependencies"]["galaxy"]
    return {c["name"]: c.get("version", "*") for c in galaxy["collections"]}


def ee_python_requirements() -> set[str]:
    python = _ee()["dependencies"]["python"]
    lines = (ROOT / python).read_text().splitlines() if isinstance(python, str) else python
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_the_roles_call_collections_that_are_installed_here():
    # The check below would pass trivially if the grep found nothing.
    assert {"community.docker", "community.crypto"} <= used_by_content()


def test_galaxy_yml_depends_on_exactly_the_collections_the_content_calls():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert set(galaxy["dependencies"]) == used_by_content()


def test_the_execution_environment_has_the_collections_of_the_content_and_of_ansible_cfg():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert "ansible.posix" in used_by_config()  # the profile_tasks callback
    assert set(ee_collections()) == used_by_content() | used_by_config()
    for name, version in galaxy["dependencies"].items():
        assert ee_collections()[name] == version, f"{name}: galaxy.yml and the EE ask for other versions"


def test_the_execution_environment_runs_the_ansible_core_the_project_is_tested_with():
    pyproject = (ROOT / "pyproject.toml").read_text()
    core = re.search(r'"ansible-core(>=[^"]+)"', pyproject).group(1)
    assert _ee()["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core{core}"
    minimum = re.match(r">=(\d+\.\d+)", core).group(1)
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == f">={minimum}.0"
    assert "ansible-runner" in _ee()["dependencies"]["ansible_runner"]["package_pip"]


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("ansible", "ansible_collections")}


def test_every_python_import_of_the_plugins_is_in_the_execution_environment():
    imports = {name: path for path in (ROOT / "plugins").rglob("*.py") for name in _third_party_imports(path)}
    assert {"jsonschema", "bcrypt"} <= set(imports)
    missing = {name: str(path.relative_to(ROOT)) for name, path in imports.items()
               if DISTRIBUTIONS.get(name, name).lower() not in ee_python_requirements()}
    assert not missing, f"imported by plugins/, not in the EE's Python requirements: {missing}"


def test_the_collection_ships_its_python_requirements():
    # ansible-builder reads a collection's root requirements.txt when it is one of an EE's collections.
    assert _ee()["dependencies"]["python"] == "requirements.txt"
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert "requirements.txt" not in galaxy["build_ignore"]


# AWX's playbook discovery (awx/main/utils/ansible.py: skip_directory, could_be_playbook): a .yml
# or .yaml file outside roles/, tasks/, dot directories and *_vars/, with a line like this one.
AWX_PLAYBOOK = re.compile(r"^\s*?-?\s*?(?:hosts|include|import_playbook):\s*?.*?$")


def _awx_skips(relative_dir: str) -> bool:
    parts = relative_dir.split(os.sep)
    return ("roles" in parts or "tasks" in parts or any(p.startswith(".") for p in parts if p != ".")
            or "group_vars" in parts or "host_vars" in parts)


def awx_playbooks(project: Path) -> set[str]:
    found = set()
    for dirpath, _dirs, files in os.walk(project):  # AWX does not follow links either
        relative = os.path.relpath(dirpath, project)
        if _awx_skips(relative):
            continue
        for name in files:
            path = Path(dirpath, name)
            if path.suffix not in (".yml", ".yaml"):
                continue
            lines = path.read_text(encoding="utf-8", errors="ignore").splitlines()
            if any(AWX_PLAYBOOK.match(line) for line in lines) or lines[:1] == ["$ANSIBLE_VAULT;"]:
                found.add(str(path.relative_to(project)))
    return found


def test_awx_finds_every_playbook():
    playbooks = {str(p.relative_to(ROOT)) for p in (ROOT / "playbooks").iterdir() if p.suffix in (".yml", ".yaml")}
    assert "playbooks/site.yml" in playbooks
    assert playbooks - awx_playbooks(ROOT) == set()


def test_the_awx_rule_misses_an_fqcn_import_playbook(tmp_path):
    # Why playbooks/site.yml says `import_playbook:`, not `ansible.builtin.import_playbook:`.
    (tmp_path / "fqcn.yml").write_text("- name: All\n  ansible.builtin.import_playbook: other.yml\n")
    (tmp_path / "short.yml").write_text("- name: All\n  import_playbook: other.yml\n")
    assert awx_playbooks(tmp_path) == {"short.yml"}


def test_every_filter_of_the_collection_is_called_by_its_fqcn():
    # Outside the checkout (the built collection, AWX) Ansible finds a collection's filter by its
    # FQCN only: a short name works here only where some ansible.cfg sets filter_plugins.
    names = set()
    for path in (ROOT / "plugins" / "filter").glob("*.py"):
        names |= set(re.findall(r'^\s*"(agentfactory_[a-z0-9_]+)":', path.read_text(), re.M))
    assert names
    short = re.compile(r"(\|\s*|\(\s*['\"])(" + "|".join(sorted(names)) + r")\b")
    found = []
    for top in ("roles", "playbooks", "molecule"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if short.search(line) and not line.lstrip().startswith("#"):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
