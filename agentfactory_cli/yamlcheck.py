"""The inventory's YAML files read once by ourselves, before Ansible reads them.

Ansible's loader follows YAML 1.1 and is forgiving where a mistake silently changes the fleet: a
duplicate key keeps the last value (one warning, and an agent is gone), `1` and `"1"` are two
keys that become one once rendered, `port: 0100` is 64 and `yes` is true. And a small file can
cost it minutes or a traceback: a "billion laughs" of aliases, or values nested hundreds deep.
Each of those is refused here with the file and line, before any other parsing.

The checks run on PyYAML's event stream first (not recursive, so nesting and the size that
aliases expand to are bounded before anything is built), then on the composed nodes, which keep
the line of every value.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from agentfactory_cli.errors import InvalidInput
from agentfactory_cli.model import catalog

# Nodes a file may expand to once every alias is replaced by what it names: a big inventory has a
# few ten thousand; a 1 KB alias bomb has billions.
MAX_NODES = 200_000
# Mappings and lists inside each other: a catalog needs about 6 levels, Ansible fails near 300.
MAX_DEPTH = 64

_SUFFIXES = (".yml", ".yaml", ".json")
_VARS_DIRS = ("group_vars", "host_vars")

# YAML 1.1 spellings of booleans other than true/false, and the ints that are not plain decimal
# (octal 0100, 0o100, hex, binary, 1_000, sexagesimal 1:30).
_BOOL_WORDS = re.compile(r"(?i:yes|no|y|n|on|off)")
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"

try:  # the C parser when PyYAML has it: the same results, faster
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader


def inventory_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files Ansible reads for these inventory sources: a YAML inventory file, and the
    group_vars and host_vars beside it (or, for a directory, every YAML file in it)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates = [p for p in _files_under(path)
                          if p.suffix in _SUFFIXES or (not p.suffix and _in_vars_dir(p, path))]
        else:
            candidates = [path] if path.suffix in _SUFFIXES else []
            for name in _VARS_DIRS:
                directory = path.parent / name
                if directory.is_dir():
                    candidates += [p for p in _files_under(directory) if p.suffix in _SUFFIXES or not p.suffix]
        found += [p for p in candidates if p not in found]
    return found


def _files_under(directory: Path) -> list[Path]:
    """Every file below a directory, sorted, through symlinked directories as Ansible goes (each
    real directory once: a link loop ends)."""
    found: list[Path] = []
    visited: set[str] = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        found += [Path(root) / name for name in files if (Path(root) / name).is_file()]
    return sorted(found)


def vault_files(paths: Iterable[Path]) -> list[str]:
    """The whole-file vaults among these files, for messages."""
    return [_display(p) for p in paths if p.read_text(errors="replace").lstrip().startswith("$ANSIBLE_VAULT;")]


def _in_vars_dir(path: Path, root: Path) -> bool:
    return any(part in _VARS_DIRS for part in path.relative_to(root).parts[:-1])


def check_files(paths: Iterable[Path], decrypt=None) -> None:
    """Every problem of every file at once, as InvalidInput; nothing when all are fine. `decrypt`
    turns a whole-file vault into its text (None when it cannot: Ansible then says why)."""
    problems: list[str] = []
    defined: dict[tuple[str, str], list[tuple[str, int]]] = {}  # (vars set, catalog variable) -> where
    for path in paths:
        try:
            text = path.read_bytes().decode()
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[:exc.start].count(b"\n") + 1
            problems.append(f"{_display(path)}:{line}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}): "
                            "save the file as UTF-8")
            continue
        if decrypt is not None and text.lstrip().startswith("$ANSIBLE_VAULT;"):
            text = decrypt(text) or text
        catalog_lines: list[tuple[str, int]] = []
        found = check_text(text, _display(path), catalog_lines)
        problems += found
        if not found and (owner := _vars_owner(path)):
            for variable, line in catalog_lines:
                defined.setdefault((owner, variable), []).append((_display(path), line))
    for (owner, variable), places in defined.items():
        if len(places) > 1:  # Ansible keeps the one of the last file, silently
            shown = " and ".join(f"{name}:{line}" for name, line in places)
            problems.append(f"{places[-1][0]}:{places[-1][1]}: {variable} is set in {len(places)} files of "
                            f"{owner} ({shown}); Ansible keeps only the last one: keep the catalog in one file")
    if len(problems) == 1:
        raise InvalidInput(problems[0])
    if problems:
        lines = "\n  ".join(problems)
        raise InvalidInput(f"the inventory has {len(problems)} problem(s):\n  {lines}", problems=problems)


def _vars_owner(path: Path) -> str:
    """'group_vars/NAME' or 'host_vars/NAME' for a file of a group's or host's variables (a file
    NAME.yml or any file under a directory NAME), else ''."""
    parts = path.parts
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] in _VARS_DIRS:
            name = parts[index + 1]
            if index + 2 == len(parts):  # group_vars/NAME.yml
                name = Path(name).stem if Path(name).suffix in _SUFFIXES else name
            return f"{parts[index]}/{name}"
    return ""


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_text(text: str, name: str, catalog_lines: list[tuple[str, int]] | None = None) -> list[str]:
    """The problems of one YAML document stream, each `FILE:LINE: message`; the catalog variables
    set at its top go to `catalog_lines` as (variable, line)."""
    if text.lstrip().startswith("$ANSIBLE_VAULT;"):
        return []  # a whole-file vault: Ansible decrypts it (its inline values are checked later)
    try:
        problem = _check_events(text, name)
        if problem:
            return [problem]
        nodes = yaml.compose_all(text, Loader=_Loader)
        problems: list[str] = []
        for node in nodes:
            if node is not None:
                problems += _Walk(name).run(node)
            if isinstance(node, yaml.MappingNode) and catalog_lines is not None:
                catalog_lines += [(key.value, key.start_mark.line + 1) for key, _value in node.value
                                  if isinstance(key, yaml.ScalarNode)
                                  and key.value in (catalog.CATALOG_VAR, catalog.DEFAULTS_VAR)]
        return problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        return [f"{name}{line}: cannot be parsed: YAML parsing failed: {exc.problem or exc.context}"]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a raw control character)
        line = text[:exc.position].count("\n") + 1
        return [f"{name}:{line}: cannot be parsed: YAML does not allow the character {chr(exc.character)!r} "
                "(write it as an escape in a double-quoted string)"]
    except yaml.YAMLError as exc:
        return [f"{name}: cannot be parsed: YAML parsing failed: {str(exc).splitlines()[0]}"]


def _check_events(text: str, name: str) -> str:
    """The nesting depth and the expanded size, from the event stream (nothing is built)."""
    depth = 0
    total = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    open_anchors: list[tuple[str | None, int]] = []  # (anchor, total when its collection began)
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            total += sizes.get(event.anchor, 1)
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            total += 1
            if isinstance(event, yaml.ScalarEvent):
                if event.anchor:
                    sizes[event.anchor] = 1
            else:
                depth += 1
                if depth > MAX_DEPTH:
                    return f"{name}:{line}: values nested more than {MAX_DEPTH} levels deep (refused)"
                open_anchors.append((event.anchor, total))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_anchors.pop()
            if anchor:
                sizes[anchor] = total - start + 1
        if total > MAX_NODES:
            return (f"{name}:{line}: the aliases (*name) expand to more than {MAX_NODES} values "
                    "(refused: a file this size cannot mean that many)")
    return ""


class _Walk:
    """Duplicate and colliding keys anywhere; YAML 1.1 surprises inside the catalog."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[tuple[int, str]] = []
        self.constructor = _Loader("")

    def run(self, root: yaml.Node) -> list[str]:
        # (node, where in the catalog: None outside it, else (variable, agent, field path))
        stack: list[tuple[yaml.Node, tuple | None]] = [(root, None)]
        seen: set[int] = set()
        while stack:
            node, where = stack.pop()
            if id(node) in seen:  # an alias: checked where its anchor is
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                self._length(node, where)
                if where is not None:
                    self._scalar(node, where)
                    self._agent_item(node, where)
            elif isinstance(node, yaml.SequenceNode):
                if where is not None:
                    self._agent_item(node, where)
                for index, item in enumerate(node.value):
                    stack.append((item, self._item(where, index, item)))
            elif isinstance(node, yaml.MappingNode):
                self._keys(node, where)
                for key, value in node.value:
                    if where is None and _is_null_catalog(key, value):
                        self._add(value, None, f"{catalog.CATALOG_VAR} is null: write [] for no agents (a null catalog "
                                               "would remove every agent)")
                    if isinstance(key, yaml.ScalarNode):
                        self._length(key, where)
                        if where is not None:
                            self._scalar(key, where, key=True)
                    stack.append((value, self._child(where, key, value)))
        return [message for _line, message in sorted(self.problems)]

    # Where a value sits in the catalog ----------------------------------------------------

    @staticmethod
    def _child(where: tuple | None, key: yaml.Node, value: yaml.Node) -> tuple | None:
        if not isinstance(key, yaml.ScalarNode):
            return where
        if where is None:
            if key.value in (catalog.CATALOG_VAR, catalog.DEFAULTS_VAR):
                return (key.value, None, "")
            return None
        variable, agent, path = where
        return (variable, agent, f"{path}.{key.value}" if path else key.value)

    @staticmethod
    def _item(where: tuple | None, index: int, item: yaml.Node) -> tuple | None:
        if where is None:
            return None
        variable, agent, path = where
        if variable == catalog.CATALOG_VAR and agent is None and not path:
            pairs = item.value if isinstance(item, yaml.MappingNode) else []
            name = next((v.value for k, v in pairs if isinstance(k, yaml.ScalarNode) and k.value == "name"
                         and isinstance(v, yaml.ScalarNode)), None)
            return (variable, f"agent '{name}'" if name else f"agent #{index + 1}", "")
        return (variable, agent, f"{path}[{index}]")

    def _add(self, node: yaml.Node, where: tuple | None, message: str) -> None:
        line = node.start_mark.line + 1
        prefix = f"{self.name}:{line}: "
        if where is not None:
            variable, agent, path = where
            prefix += f"{agent or variable}: " + (f"field '{path}': " if path else "")
        self.problems.append((line, prefix + message))

    # The rules --------------------------------------------------------------------------

    def _keys(self, node: yaml.MappingNode, where: tuple | None) -> None:
        first: dict[str, yaml.ScalarNode] = {}  # by the text a key becomes once rendered
        same: dict[object, yaml.ScalarNode] = {}  # by Python's equality: true == 1 == 1.0 is one key
        for key, _value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                continue
            value = self._value(key)
            text = _as_text(value)
            earlier = first.setdefault(text, key)
            if earlier is key:
                earlier = same.setdefault(value, key)
                if earlier is key:
                    continue
            line = earlier.start_mark.line + 1
            if (earlier.tag, earlier.value) == (key.tag, key.value):
                message = (f"key {key.value!r} appears twice in one mapping (also on line {line}); YAML "
                           "keeps only the last one")
            elif _as_text(self._value(earlier)) == text:
                message = (f"keys {_source(earlier)} (line {line}) and {_source(key)} both become {text!r} "
                           "once rendered: keep one")
            else:
                message = (f"keys {_source(earlier)} (line {line}) and {_source(key)} are one key once loaded "
                           "(YAML 1.1 reads both as the same value): keep one, or quote them")
            self._add(key, where, message)

    def _value(self, node: yaml.ScalarNode) -> object:
        """A scalar as PyYAML loads it; Ansible's own tags (!unsafe, !vault) stay their text."""
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError):  # ValueError: a number _length refuses
            return node.value

    def _length(self, node: yaml.ScalarNode, where: tuple | None) -> None:
        """A number Python will not read (more digits than int() takes), anywhere in the file."""
        if node.tag == _INT_TAG and not node.style and len(node.value) > sys.get_int_max_str_digits():
            self._add(node, where, f"a number of {len(node.value)} digits: quote it for a string")

    def _agent_item(self, node: yaml.Node, where: tuple) -> None:
        """An entry of the catalog that is not a mapping (a name, a list, an empty `-`)."""
        variable, agent, path = where
        if variable == catalog.CATALOG_VAR and agent is not None and not path:
            shown = "empty" if node.tag == "tag:yaml.org,2002:null" else \
                f"{node.value!r}" if isinstance(node, yaml.ScalarNode) else "a list"
            self._add(node, where, f"is {shown}: each agent is a mapping with name, image...")

    def _scalar(self, node: yaml.ScalarNode, where: tuple, key: bool = False) -> None:
        if node.style:  # quoted or a block: a string, as written
            return
        what = f"key {node.value}" if key else node.value
        if node.tag == _INT_TAG and not _DECIMAL.fullmatch(node.value):
            value = self._value(node)
            self._add(node, where, f"{what} is read as the number {value} by YAML 1.1: write the number in plain "
                                   "decimal, or quote it for a string")
        elif node.tag == _BOOL_TAG and _BOOL_WORDS.fullmatch(node.value):
            value = "true" if self.constructor.construct_object(node) else "false"
            self._add(node, where, f"{what} is read as {value} by YAML 1.1 (and as a string by YAML 1.2): "
                                   f"write {value}, or quote it for a string")
        elif node.tag == _FLOAT_TAG and not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", node.value):
            self._add(node, where, f"{what} is not a finite number in plain notation (quote it for a string)")


def _is_null_catalog(key: yaml.Node, value: yaml.Node) -> bool:
    return (isinstance(key, yaml.ScalarNode) and key.value == catalog.CATALOG_VAR and isinstance(value, yaml.ScalarNode)
            and value.tag == "tag:yaml.org,2002:null")


def _as_text(value: object) -> str:
    """A key as it reads once rendered (to YAML, JSON or an environment)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _source(node: yaml.ScalarNode) -> str:
    return repr(node.value) if node.style else node.value
