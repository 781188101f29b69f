"""Every public role documents its interface twice, and the two must agree (STYLE.md, rule 1):
the keys of defaults/main.yml are exactly the options of the `main` entry point in
meta/argument_specs.yml, and each of them carries the role's prefix (`<role>_`).

Internal roles (name starting with `_`, e.g. `_common`) have no public defaults and are skipped.
"""

from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
ROLES = sorted(
    p.name for p in ROLES_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
) if ROLES_DIR.is_dir() else []


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    assert data is None or isinstance(data, dict), f"{path} is not a YAML mapping"
    return data or {}


def _defaults(role: str) -> set[str]:
    role_dir = ROLES_DIR / role / "defaults"
    path = next((p for p in (role_dir / "main.yml", role_dir / "main.yaml") if p.is_file()), role_dir / "main.yml")
    return set(_load(path))


def _main_options(role: str) -> set[str] | None:
    """Options of the `main` entry point, or None when the role has no argument spec at all."""
    meta = ROLES_DIR / role / "meta"
    for path in (meta / "argument_specs.yml", meta / "argument_specs.yaml", meta / "main.yml"):
        specs = _load(path).get("argument_specs")
        if specs is not None:
            main = specs.get("main")
            assert main is not None, f"{path}: argument_specs has no `main` entry point"
            return set(main.get("options") or {})
    return None


@pytest.mark.skipif(not ROLES, reason="no public roles under roles/")
@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role):
    defaults = _defaults(role)
    options = _main_options(role)
    if options is None:
        assert not defaults, f"roles/{role}: defaults/main.yml has keys but meta/argument_specs.yml is missing"
        return
    missing = sorted(defaults - options)
    extra = sorted(options - defaults)
    assert not missing and not extra, (
        f"roles/{role}: defaults without an argument spec: {missing}; "
        f"argument specs without a default: {extra}"
    )


@pytest.mark.skipif(not ROLES, reason="no public roles under roles/")
@pytest.mark.parametrize("role", ROLES)
def test_defaults_carry_role_prefix(role):
    unprefixed = sorted(k for k in _defaults(role) if not k.startswith(f"{role}_"))
    assert not unprefixed, f"roles/{role}: defaults must start with '{role}_': {unprefixed}"


# --- the internal role's entry points: its callers are checked here, not on every host and run --

_INCLUDES = ("ansible.builtin.include_role", "include_role", "ansible.builtin.import_role", "import_role")
_LITERAL_TYPES = {"str": str, "path": str, "bool": bool, "int": int, "list": list, "dict": dict}


def _common_includes() -> list[tuple[str, dict, dict]]:
    """(where, the include's arguments, its vars) of every include of _common by another role."""
    found = []

    def walk(node, where):
        if isinstance(node, list):
            for item in node:
                walk(item, where)
        elif isinstance(node, dict):
            for key in _INCLUDES:
                if isinstance(node.get(key), dict) and node[key].get("name") == "_common":
                    found.append((f"{where}: {node.get('name')}", node[key], node.get("vars") or {}))
            for key in ("block", "rescue", "always"):
                walk(node.get(key), where)

    for path in sorted(ROLES_DIR.glob("*/tasks/**/*.yml")):
        if not path.is_relative_to(ROLES_DIR / "_common"):
            walk(yaml.safe_load(path.read_text()), path.relative_to(ROLES_DIR))
    return found


def test_the_roles_include_common_and_each_include_matches_its_entry_point():
    specs = _load(ROLES_DIR / "_common" / "meta" / "argument_specs.yml")["argument_specs"]
    includes = _common_includes()
    assert len(includes) >= 10, includes
    problems = []
    for where, args, given in includes:
        entry = str(args.get("tasks_from", "main")).removesuffix(".yml")
        if entry not in specs:
            problems.append(f"{where}: _common has no entry point {entry!r}")
            continue
        if args.get("rolespec_validate") is not False:
            problems.append(f"{where}: rolespec_validate: false (checked here instead)")
        options = specs[entry].get("options") or {}
        problems += [f"{where}: {name} is not an option of {entry}" for name in sorted(set(given) - set(options))]
        problems += [f"{where}: {entry} requires {name}" for name, spec in options.items()
                     if spec.get("required") and name not in given]
        for name, value in given.items():
            spec = options.get(name) or {}
            kind = _LITERAL_TYPES.get(spec.get("type", "str"))
            templated = isinstance(value, str) and "{{" in value
            if kind and not templated and not isinstance(value, kind):
                problems.append(f"{where}: {name} is {type(value).__name__}, {entry} wants {kind.__name__}")
            choices = spec.get("choices")
            if choices and not templated and value not in choices:
                problems.append(f"{where}: {name}={value!r} is not one of {choices}")
    assert not problems, "\n".join(problems)
