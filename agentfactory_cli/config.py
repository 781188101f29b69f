"""The CLI's own settings: defaults an operator would otherwise type on every command.

Each setting comes from the first of: its command-line flag, its environment variable
(AGENTFACTORY_<NAME>), the config file, the built-in default. The config file is the first
found of: $AGENTFACTORY_CONFIG, `agentfactory.toml` in the project directory (beside
ansible.cfg), `$XDG_CONFIG_HOME/agentfactory/config.toml` (default `~/.config/...`). It is TOML;
relative paths in it are relative to the file. `agentfactory config` shows the result.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentfactory_cli.errors import InvalidInput
from agentfactory_cli.lab import DEFAULT_LAB
from agentfactory_cli.paths import project_root

CONFIG_ENV = "AGENTFACTORY_CONFIG"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _forks(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if isinstance(value, bool) or number < 1:
        raise ValueError(f"must be at least 1, got {value!r}")
    return number


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


@dataclass(frozen=True)
class Setting:
    name: str  # the attribute of the parsed arguments, the key in the file
    flag: str
    help: str
    parse: Callable[[Any], Any] = _text
    is_list: bool = False  # the flag is repeatable; env and file give several, comma-separated
    is_path: bool = False  # relative paths in the file are relative to the file
    default: Any = None
    default_note: str = ""  # what a None default means

    @property
    def env(self) -> str:
        return f"AGENTFACTORY_{self.name.upper()}"


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("inventory", "-i/--inventory", "inventory files or directories", is_list=True, is_path=True,
            default_note="the lab's inventory while the lab is up"),
    Setting("limit", "-l/--limit", "host pattern every run is limited to"),
    Setting("forks", "-f/--forks", "hosts worked on in parallel", parse=_forks,
            default_note="from ansible.cfg: 10"),
    Setting("user", "-u/--user", "SSH user where the inventory sets no ansible_user"),
    Setting("private_key", "--private-key", "SSH private key where the inventory sets none", is_path=True),
    Setting("vault_password_file", "--vault-password-file", "file holding the vault password", is_path=True,
            default_note="the lab's own when the inventory is a lab's"),
    Setting("vault_id", "--vault-id", "vault identities, LABEL@FILE or LABEL@prompt", is_list=True),
    Setting("lab", "--lab", "the lab whose inventory is the default", default=DEFAULT_LAB),
    Setting("mitogen", "--mitogen/--no-mitogen", "run the modules through Mitogen (false: one Python per task)",
            parse=_switch, default_note="on for every verb but status, when Mitogen is installed"),
)}


@dataclass(frozen=True)
class Value:
    value: Any
    origin: str  # "flag", "env", "file" or "default"
    where: str = ""  # the flag, the variable or the file


def search_paths() -> list[Path]:
    """Where the config file is looked for, in order (without $AGENTFACTORY_CONFIG)."""
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [project_root() / "agentfactory.toml", Path(xdg) / "agentfactory" / "config.toml"]


def find_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise InvalidInput(f"{CONFIG_ENV}={explicit}: no such file")
        return path.resolve()
    return next((p for p in search_paths() if p.is_file()), None)


def read_file(path: Path) -> dict[str, Any]:
    """The file's settings, checked and with paths made absolute."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"config file {path}: {exc}") from None
    values = {}
    for key, raw in doc.items():
        setting = SETTINGS.get(key)
        if setting is None:
            close = difflib.get_close_matches(key, SETTINGS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(SETTINGS)})"
            raise InvalidInput(f"config file {path}: unknown setting '{key}'{hint}")
        items = raw if setting.is_list and isinstance(raw, list) else [raw]
        parsed = [_parse(setting, item, f"config file {path}: {key}") for item in items]
        if setting.is_path:
            parsed = [str((path.parent / Path(p).expanduser()).resolve()) for p in parsed]
        if setting.name == "vault_id":
            parsed = [_vault_id_in(path.parent, v) for v in parsed]
        values[key] = parsed if setting.is_list else parsed[0]
    return values


def _vault_id_in(base: Path, slug: str) -> str:
    """LABEL@FILE with FILE relative to the config file; LABEL@prompt and scripts on PATH stay."""
    label, sep, source = slug.rpartition("@")
    if source == "prompt" or not ("/" in source or (base / source).exists()):
        return slug
    return f"{label}{sep}{(base / Path(source).expanduser()).resolve()}"


def _parse(setting: Setting, raw: Any, where: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def resolve(flags: dict[str, Any]) -> tuple[dict[str, Value], Path | None]:
    """Every setting's effective value and origin. `flags` holds the parsed command line
    (None or [] where a flag was not given; settings a verb has no flag for are left out)."""
    path = find_file()
    in_file = read_file(path) if path else {}
    result = {}
    for name, setting in SETTINGS.items():
        flag = flags.get(name)
        env = os.environ.get(setting.env)
        if flag not in (None, []):
            result[name] = Value(flag, "flag", setting.flag)
        elif env:
            items = [e.strip() for e in env.split(",") if e.strip()] if setting.is_list else [env]
            parsed = [_parse(setting, item, setting.env) for item in items]
            result[name] = Value(parsed if setting.is_list else parsed[0], "env", setting.env)
        elif name in in_file:
            result[name] = Value(in_file[name], "file", str(path))
        else:
            result[name] = Value(setting.default, "default")
    return result, path


def apply(args: Any) -> dict[str, Value]:
    """Fill the parsed arguments' settings with their effective values; returns the origins."""
    present = {name: getattr(args, name) for name in SETTINGS if hasattr(args, name)}
    values, _ = resolve(present)
    for name in present:
        setattr(args, name, values[name].value)
    return values
