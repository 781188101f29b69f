"""Every filter of agentfactory.fleet is documented where ``ansible-doc -t filter`` finds it.

A filter that shares its plugin file with others is documented in plugins/filter/<name>.yml.
Two ansible-doc runs cover all of them: one with every name at once (exit 0, each shown from its
own .yml) and one ``--list --json`` of the collection (every filter, with its short description;
ansible-core 2.19 shows the short description in the list, not on a plugin's own page).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILTER_DIR = ROOT / "plugins" / "filter"
ANSIBLE_DOC = ROOT / ".venv" / "bin" / "ansible-doc"
COLLECTION = "agentfactory.fleet"


def _filter_names() -> list[str]:
    """Every filter name of every FilterModule in plugins/filter/*.py."""
    names: list[str] = []
    for path in sorted(FILTER_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"af_filter_docs_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        names.extend(module.FilterModule().filters())
    return sorted(names)


FILTERS = _filter_names()


def _doc_file(name: str) -> dict:
    return yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text())


def _ansible_doc(*args: str) -> subprocess.CompletedProcess:
    if not ANSIBLE_DOC.exists():
        pytest.skip(f"{ANSIBLE_DOC} is not installed")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(ANSIBLE_DOC), "-t", "filter", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def shown() -> dict[str, str]:
    """What ``ansible-doc -t filter <every filter>`` shows of each, in one run: {name: its text}."""
    result = _ansible_doc(*(f"{COLLECTION}.{name}" for name in FILTERS))
    assert result.returncode == 0, result.stderr
    sections = result.stdout.split("> FILTER ")[1:]
    return {section.split(None, 1)[0]: section for section in sections}


def test_the_collection_has_filters():
    assert len(FILTERS) >= 20
    assert len(set(FILTERS)) == len(FILTERS), "a filter name is defined twice"


def test_every_filter_has_a_doc_file():
    missing = [name for name in FILTERS if not (FILTER_DIR / f"{name}.yml").is_file()]
    assert not missing, f"no plugins/filter/<name>.yml for {missing}"


def test_no_doc_file_for_a_filter_that_does_not_exist():
    stray = sorted(path.name for path in FILTER_DIR.glob("*.y*ml") if path.stem not in FILTERS)
    assert not stray, f"doc files without a filter: {stray}"


@pytest.mark.parametrize("name", FILTERS)
def test_doc_file_is_complete(name):
    doc = _doc_file(name)
    assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    documentation = doc["DOCUMENTATION"]
    assert documentation["name"] == name
    assert documentation["short_description"].strip()
    assert documentation["description"]
    options = documentation["options"]
    positional = [p.strip() for p in documentation["positional"].split(",")]
    assert positional[0] == "_input"
    assert set(positional) == set(options), "every option is a positional argument and the other way round"
    descriptions = [documentation["description"], doc["RETURN"]["_value"]["description"]]
    for option, spec in options.items():
        assert spec.get("description"), f"{option}: no description"
        descriptions.append(spec["description"])
        assert spec.get("type"), f"{option}: no type"
    assert options["_input"].get("required") is True
    assert f"{COLLECTION}.{name}" in doc["EXAMPLES"], "an example calls the filter by its FQCN"
    assert doc["RETURN"]["_value"]["type"]
    for description in descriptions:  # a stray ": " in plain YAML would make a mapping of a line
        lines = description if isinstance(description, list) else [description]
        assert lines and all(isinstance(line, str) and line.strip() for line in lines), description


def test_ansible_doc_shows_every_filter(shown):
    for name in FILTERS:
        fqcn = f"{COLLECTION}.{name}"
        assert fqcn in shown, f"ansible-doc shows no documentation of {fqcn}"
        text = shown[fqcn]
        assert f"{name}.yml" in text.splitlines()[0], "documented by its own plugins/filter/<name>.yml"
        assert "OPTIONS" in text
        assert "_input" in text
        assert "EXAMPLES:" in text
        assert "RETURN VALUES:" in text


def test_ansible_doc_lists_every_filter_with_its_short_description():
    result = _ansible_doc("--list", "--json", COLLECTION)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    for name in FILTERS:
        fqcn = f"{COLLECTION}.{name}"
        assert fqcn in listed, f"ansible-doc --list does not list {fqcn}"
        assert listed[fqcn] == _doc_file(name)["DOCUMENTATION"]["short_description"].strip()


def test_the_secrets_filter_says_no_log_only():
    doc = _doc_file("agentfactory_agent_secrets")["DOCUMENTATION"]
    assert "no_log" in doc["short_description"]
    assert any("no_log" in line for line in doc["description"])
