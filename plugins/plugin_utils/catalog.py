"""Validation and normalisation of the agent catalog, before any host is contacted.

The catalog is the list ``agentfactory_agents`` (the README's "The agent catalog"). This
module is pure: plain data in (the catalog, the inventory's groups, the operator's
``agentfactory_agent_defaults``), problems out. Reading the inventory is the CLI's job.

Validation happens in two passes, and every problem of both passes is reported at once:

1. Per-field rules, written as a JSON Schema (Draft 2020-12, :data:`AGENT_SCHEMA`). The
   jsonschema errors are translated into our own messages: each names the agent and the
   field, says what is expected and what was found. Unknown keys are errors, with a
   "did you mean" hint.
2. Rules a schema cannot say: unique names, fields required by the runtime or the image
   source, the replicas' host ports fitting in 65535, placements (``hosts``) that must match
   at least one inventory host, host ports colliding between agents on a shared host, gateway
   ports (``gateway.port``) shared by two agents or equal to the host port of a replica placed
   on a host of the group ``gateway`` (where HAProxy binds every gateway port), the ports the
   platform itself uses on a host (``reserved``: SSH, exporters, monitoring, registry, gateway
   metrics), at most :data:`MAX_REPLICAS_PER_HOST` replicas, the minimum memory limit, and how
   secrets are given.

Numbers must be finite (no ``.nan``/``.inf``) and patterns match the whole value (a trailing
newline included). YAML-level surprises (duplicate keys, YAML 1.1 octal and yes/no, alias bombs)
are refused before this, by the CLI's YAML check (agentfactory_cli/yamlcheck.py), with their file and line.

Values are checked as found in the inventory, before templating. ``secrets`` in particular
must be handed over untemplated, so that ``strict`` can tell a vault reference from a literal.

Secrets rule. A secret value is accepted as *vault-encrypted* when it is one of:

* an encrypted object from Ansible's loader (``!vault`` in YAML: ``EncryptedString`` in
  ansible-core 2.19+, ``AnsibleVaultEncryptedUnicode`` before), or a string tagged by Ansible
  as decrypted from a vault;
* a string holding a vault block (it starts with ``$ANSIBLE_VAULT;``);
* a Jinja reference to one variable whose name starts with ``vault_``, and nothing else:
  ``{{ vault_support_bot_api_key }}``, optionally with attribute or key access
  (``{{ vault_keys.support }}``, ``{{ vault_keys['support'] }}``). This is Ansible's
  documented convention of keeping the encrypted values in ``vault_*`` variables.

Without ``strict``, any non-empty string is accepted too (lab and development inventories).
With ``strict``, everything else (literals, other variables, lookups, filters) is refused.
Secret values never appear in a message, whatever the mode.

Vault-encrypted values (``!vault``) are accepted in ``secrets``, ``env`` values, ``config``,
``command`` items and ``image``; anywhere else (names, ports, paths, patterns, sizes) they are
refused, since those values are needed in plain text to place and check the agent. Validation
never decrypts anything.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible.inventory.manager import split_host_pattern
from ansible_collections.agentfactory.fleet.plugins.module_utils.agent_defaults import BUILTIN_DEFAULTS
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.placement import resolve_hosts
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend

__all__ = [
    "AGENT_SCHEMA",
    "BUILTIN_DEFAULTS",
    "CATALOG_SCHEMA",
    "CATALOG_VAR",
    "DEFAULTS_SCHEMA",
    "DEFAULTS_VAR",
    "CatalogProblem",
    "is_vault_encrypted",
    "memory_bytes",
    "normalise_agent",
    "validate_catalog",
]

CATALOG_VAR = "agentfactory_agents"
DEFAULTS_VAR = "agentfactory_agent_defaults"

NAME_MAX_LENGTH = 40
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker refuses a memory limit below 6 MiB
# More replicas of one agent on one host than this is a typo, not a plan (each is a container or a
# unit, a host port and a health check); 60000 would exhaust the host's ports and processes.
MAX_REPLICAS_PER_HOST = 100

# The end of the text: in Python a bare `$` also matches before a final newline ("bot\n"), and
# `\Z` is no JSON Schema (ECMA 262) regex; this means the same in both.
_END = r"$(?!\n)"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?" + _END
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*" + _END
_PERCENT = r"^(100|[1-9][0-9]?)%" + _END
_MEMORY = r"^([1-9][0-9]*)([bkmgBKMG])" + _END
_PATH = r"^/\S*" + _END

_MEMORY_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

# The catalog's fields in the documented order; problems are sorted by it.
FIELDS = (
    "name", "runtime", "image", "image_source", "image_archive", "command", "replicas", "port",
    "host_port", "hosts", "env", "secrets", "config", "health", "metrics", "resources", "capabilities",
    "update", "gateway",
)


def _port(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": 65535, "description": description}


def _positive(description: str) -> dict[str, Any]:
    return {"type": "number", "exclusiveMinimum": 0, "description": description}


def _http_path(description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": _PATH, "description": description}


# Every subschema carries a "description": it is the "expected ..." half of our messages.
_AGENT_PROPERTIES: dict[str, dict[str, Any]] = {
    "name": {
        "type": "string",
        "pattern": _DNS_LABEL,
        "maxLength": NAME_MAX_LENGTH,
        "description": f"a DNS label: at most {NAME_MAX_LENGTH} lower-case letters, digits and '-', "
        "starting and ending with a letter or digit",
    },
    "runtime": {"enum": ["docker", "systemd"], "description": "one of 'docker', 'systemd'"},
    "image": {
        "type": "string",
        # No spaces, except inside Jinja expressions the inventory fills in ({{ registry_host }}).
        "pattern": r"^(?:[^\s{]|\{(?!\{)|\{\{[^}]*\}\})+" + _END,
        "description": "an image reference without spaces, like registry.lab:5000/agents/sample:1.0",
    },
    "image_source": {"enum": ["registry", "archive"], "description": "one of 'registry', 'archive'"},
    "image_archive": {
        "type": "string",
        "pattern": r"^\S(.*\S)?" + _END,
        "description": "the path of a `docker save` tarball on the controller",
    },
    "command": {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "description": "a non-empty string"},
        "description": "a list of strings (the executable and its arguments)",
    },
    "replicas": {"type": "integer", "minimum": 0, "description": "an integer >= 0"},
    "port": _port("an integer from 1 to 65535"),
    "host_port": _port("an integer from 1 to 65535"),
    "hosts": {
        "anyOf": [
            {"type": "string", "pattern": r"\S"},
            {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": r"\S"}},
        ],
        "description": "an inventory group, host or pattern (a non-empty string), or a list of them",
    },
    "env": {
        "type": "object",
        "propertyNames": {
            "type": "string",
            "pattern": _ENV_NAME,
            "description": "letters, digits and '_', not starting with a digit",
        },
        "additionalProperties": {
            "type": "string",
            "description": "a string",
            "x-hint": "quote numbers and booleans in YAML",
        },
        "description": "a mapping of environment variable names to strings",
    },
    "secrets": {
        # The values are checked in code: vault objects are no JSON type, and no value may be shown.
        "type": "object",
        "propertyNames": {
            "type": "string",
            "pattern": _ENV_NAME,
            "description": "letters, digits and '_', not starting with a digit",
        },
        "description": "a mapping of secret names to vault-encrypted strings",
    },
    "config": {"type": "object", "description": "a mapping (rendered to YAML for the agent)"},
    "health": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": _http_path("an HTTP path starting with '/', without spaces"),
            "interval": _positive("a number of seconds > 0"),
            "timeout": _positive("a number of seconds > 0"),
            "retries": {"type": "integer", "minimum": 1, "description": "an integer >= 1"},
        },
        "description": "a mapping with the keys path, interval, timeout, retries",
    },
    "metrics": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"path": _http_path("an HTTP path starting with '/', without spaces")},
        "description": "a mapping with the key path",
    },
    # The HAProxy gateway's frontend for this agent (on the hosts in group `gateway`).
    "gateway": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"port": _port("the gateway's frontend port for this agent")},
        "description": "a mapping with the key port",
    },
    "resources": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "cpus": _positive("a number of CPUs > 0, like 0.5 or 2"),
            "memory": {
                "type": "string",
                "pattern": _MEMORY,
                "description": "a size like 512m or 2g (a whole number followed by b, k, m or g)",
            },
        },
        "description": "a mapping with the keys cpus, memory",
    },
    "capabilities": {
        "type": "array",
        "uniqueItems": True,
        "items": {
            "type": "string",
            "pattern": r"^(?!ALL$|CAP_)[A-Z][A-Z0-9_]*" + _END,
            "description": "a Linux capability without the CAP_ prefix, like NET_BIND_SERVICE (not ALL)",
        },
        "description": "a list of Linux capabilities a hardened container keeps (every other is dropped)",
    },
    "update": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "batch": {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": _PERCENT},
                ],
                "description": "an integer >= 1 or a percentage from 1% to 100%",
            },
            "health_timeout": _positive("a number of seconds > 0"),
            "rollback": {"type": "boolean", "description": "true or false"},
        },
        "description": "a mapping with the keys batch, health_timeout, rollback",
    },
}

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

AGENT_SCHEMA: dict[str, Any] = {
    "$schema": _SCHEMA_DIALECT,
    "$id": "https://agentfactory.invalid/schemas/agent.json",
    "title": "One agent of agentfactory_agents",
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": _AGENT_PROPERTIES,
    "description": "a mapping of agent fields",
}

DEFAULTS_SCHEMA: dict[str, Any] = {
    "$schema": _SCHEMA_DIALECT,
    "$id": "https://agentfactory.invalid/schemas/agent-defaults.json",
    "title": "agentfactory_agent_defaults: fields every agent inherits",
    "type": "object",
    "additionalProperties": False,
    "properties": {k: v for k, v in _AGENT_PROPERTIES.items() if k != "name"},
    "description": "a mapping of agent fields",
}

# The whole catalog in one document, for editors and documentation; validation itself goes
# agent by agent so that every message can name its agent.
CATALOG_SCHEMA: dict[str, Any] = {
    "$schema": _SCHEMA_DIALECT,
    "$id": "https://agentfactory.invalid/schemas/catalog.json",
    "title": CATALOG_VAR,
    "type": "array",
    "items": {k: v for k, v in AGENT_SCHEMA.items() if k not in ("$schema", "$id")},
}

# Built-in defaults, the lowest layer of normalise_agent (see its docstring).

# Fields merged key by key over the layers below them (config: recursively); the others replace.
_MERGED_FIELDS = ("env", "secrets", "health", "metrics", "resources", "update")


# --------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class CatalogProblem:
    """One thing wrong with the catalog.

    ``agent`` is the agent's name, or ``#N`` (its 1-based position in the list) when its name
    is missing or invalid; ``""`` for the catalog as a whole and ``agentfactory_agent_defaults``
    for the defaults (neither can be an agent name, which has no '_'). ``field`` is a dotted
    path (``health.interval``, ``env.LOG_LEVEL``, ``command[0]``), ``""`` for the agent
    itself (unknown top-level keys are reported there). ``index`` is the 1-based position, or
    ``None`` outside the list.
    """

    agent: str
    field: str
    message: str
    index: int | None = None

    def __str__(self) -> str:
        if self.agent == "":
            where = CATALOG_VAR
        elif self.agent == DEFAULTS_VAR:
            where = DEFAULTS_VAR
        elif self.agent.startswith("#"):
            where = f"agent {self.agent}"
        else:
            where = f"agent '{self.agent}'"
        if self.field:
            return f"{where}: field '{self.field}': {self.message}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for ``--json`` output."""
        return {"agent": self.agent, "field": self.field, "message": self.message, "index": self.index}

    def _sort_key(self) -> tuple:
        scope = 0 if self.agent == "" else 1 if self.agent == DEFAULTS_VAR else 2
        top = re.split(r"[.\[]", self.field, maxsplit=1)[0]
        rank = -1 if not top else FIELDS.index(top) if top in FIELDS else len(FIELDS)
        return (scope, self.index or 0, rank, self.field, self.message)


# --------------------------------------------------------------------------------------------
# Vault detection

_VAULT_CLASSES = {"EncryptedString", "AnsibleVaultEncryptedUnicode", "_AnsibleVaultEncryptedUnicode", "_Vaulted"}
_VAULT_ALLOWED = ("secrets", "env", "config", "command", "image")
_VAULT_REFERENCE = re.compile(
    r"""^\{\{-?\s*vault_\w*(?:\.\w+|\[\s*(?:'[^']*'|"[^"]*"|\d+)\s*\])*\s*-?\}\}$"""
)

# A vault variable used anywhere in a Jinja expression ("Bearer {{ vault_token }}").
_VAULT_MENTION = re.compile(r"\{\{[^}]*\bvault_\w")


def _is_vault_object(value: Any) -> bool:
    """An encrypted value from Ansible's loader, or a string Ansible tagged as decrypted."""
    if any(cls.__name__ in _VAULT_CLASSES for cls in type(value).__mro__):
        return True
    tags = getattr(value, "_ansible_tags_mapping", None)
    return isinstance(tags, Mapping) and any(getattr(t, "__name__", "") == "VaultedValue" for t in tags)


class _Vaulted:
    """Stands in for a vault-encrypted value while validating.

    Ansible's encrypted objects decrypt themselves on any str operation (comparison, len,
    regex), which needs the vault password in this process and must not happen here at all.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<vault-encrypted value>"


_VAULTED = _Vaulted()


def _mask_vaulted(value: Any) -> Any:
    """A copy of the containers with every vault-encrypted leaf replaced by :data:`_VAULTED`."""
    if _is_vault_object(value):
        return _VAULTED
    if isinstance(value, Mapping):
        return {k: _mask_vaulted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_vaulted(v) for v in value]
    return value


def _secret_names_only(layer: Any) -> Any:
    """The layer with each secret's value replaced by :data:`_VAULTED`, unread."""
    if not isinstance(layer, Mapping) or not isinstance(layer.get("secrets"), Mapping):
        return layer
    return {**{k: v for k, v in layer.items() if k != "secrets"}, "secrets": dict.fromkeys(layer["secrets"], _VAULTED)}


def is_vault_encrypted(value: Any) -> bool:
    """True when a secret value passes the strict rule described in the module docstring."""
    if _is_vault_object(value):
        return True
    if not isinstance(value, str):
        return False
    text = str.strip(value)
    return text.startswith("$ANSIBLE_VAULT;") or bool(_VAULT_REFERENCE.match(text))


def _secret_problem(value: Any, strict: bool) -> str | None:
    """What is wrong with one secret value, without ever quoting it."""
    if _is_vault_object(value):
        return None
    if not isinstance(value, str):
        return f"must be a string or a vault-encrypted value (got {_kind(value)}; the value is not shown)"
    if not value.strip():
        return "must not be empty"
    if strict and not is_vault_encrypted(value):
        return (
            "must be vault-encrypted in strict mode: use !vault, a $ANSIBLE_VAULT; block or a "
            "reference like '{{ vault_<name> }}' (a plain value is refused; it is not shown)"
        )
    return None


# --------------------------------------------------------------------------------------------
# Describing values in messages


def _kind(value: Any) -> str:
    if _is_vault_object(value):
        return "a vault-encrypted value"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _show(value: Any, limit: int = 60) -> str:
    """A short, YAML-flavoured rendering of a found value."""
    if _is_vault_object(value):
        return "a vault-encrypted value"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, str):
        text = str.__str__(value)
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        return repr(text)
    return _kind(value)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _suggest(word: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --------------------------------------------------------------------------------------------
# Schema errors into problems


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 2.0 as an integer; a port or a replica count written 2.0 is a mistake here.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    # YAML's .nan and .inf are floats; no timeout, interval or CPU count can be one.
    return isinstance(instance, (int, float)) and not isinstance(instance, bool) and math.isfinite(instance)


_Validator = extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number}),
)
_Validator.check_schema(AGENT_SCHEMA)
_Validator.check_schema(DEFAULTS_SCHEMA)
_AGENT_VALIDATOR = _Validator(AGENT_SCHEMA)
_DEFAULTS_VALIDATOR = _Validator(DEFAULTS_SCHEMA)


def _schema_messages(validator: Any, instance: Mapping, *, defaults: bool) -> list[tuple[str, str]]:
    """(field, message) pairs for every schema error in one agent (or the defaults)."""
    out: list[tuple[str, str]] = []
    for error in validator.iter_errors(instance):
        out.extend(_translate(error, defaults=defaults))
    return out


def _translate(error: ValidationError, *, defaults: bool) -> list[tuple[str, str]]:
    where = list(error.absolute_path)
    fieldname = _path(where)
    secret = bool(where) and where[0] == "secrets"
    schema = error.schema if isinstance(error.schema, Mapping) else {}

    if (error.validator == "type" and error.validator_value == "string" and _is_vault_object(error.instance)
            and where and where[0] in _VAULT_ALLOWED):
        # A vaulted string is a string: Ansible decrypts it when the value is used. It is masked
        # here, so pattern and length rules skip it too (and nothing needs decrypting).
        return []

    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in known]
        out = []
        for key in sorted(extras, key=str):
            if defaults and not where and key == "name":
                out.append(("name", f"an agent's name cannot come from {DEFAULTS_VAR}"))
                continue
            hint = _suggest(key, known) or f" (expected one of: {', '.join(sorted(known))})"
            out.append((fieldname, f"unknown field {_show(key)}{hint}"))
        return out

    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [(_path([*where, key]), "is required") for key in missing]

    if "propertyNames" in error.relative_schema_path:
        # The error is about a key of the mapping at `where`; jsonschema gives the key as instance.
        key = error.instance
        return [(_path([*where, str(key)]), f"the name must be {schema['description']} (got {_show(key)})")]

    expected = schema.get("description", "valid")
    got = _kind(error.instance) if secret else _show(error.instance)
    hint = f"; {schema['x-hint']}" if "x-hint" in schema else ""
    return [(fieldname, f"must be {expected} (got {got}){hint}")]


# --------------------------------------------------------------------------------------------
# Normalisation


def _copy(value: Any) -> Any:
    """Copy the containers (turning Ansible's subclasses into plain ones), keep the leaves."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def _deep_merge(base: Mapping, over: Mapping) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def normalise_agent(agent: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The agent with every optional field filled in; the input is not modified.

    Three layers, lowest first: the built-in defaults below, the operator's
    ``agentfactory_agent_defaults`` (``defaults``), the agent's own fields. ``env``,
    ``secrets``, ``health``, ``metrics``, ``resources`` and ``update`` merge key by key across
    the layers, ``config`` merges recursively (nested mappings too); every other field is
    replaced whole (``command`` included).

    Built-in defaults:

    =============  ==========================================================
    runtime        ``docker``
    image_source   ``registry``
    command        ``[]``
    replicas       ``1``
    port           ``8080`` (the reference agent's port)
    host_port      the agent's ``port``: replica *i* listens on ``port + i``
    hosts          ``agent_hosts``
    env            ``{}``
    secrets        ``{}``
    config         ``{}``
    health         ``{path: /healthz, interval: 10, timeout: 5, retries: 3}``
    metrics        ``{path: /metrics}``
    resources      ``{}`` (no limits)
    capabilities   ``[]`` (a hardened container keeps none)
    update         ``{batch: 1, health_timeout: 60, rollback: true}``
    =============  ==========================================================

    ``image`` and ``image_archive`` have no default and stay absent when not given. The result
    is meant for valid agents; for an invalid one it is a best effort (a layer that is not a
    mapping where one is expected is skipped), and unknown keys are kept as they are.
    """
    layers = [BUILTIN_DEFAULTS]
    if isinstance(defaults, Mapping):
        layers.append({k: v for k, v in defaults.items() if k != "name"})
    if isinstance(agent, Mapping):
        layers.append(agent)

    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            value = _copy(value)
            current = result.get(key)
            if key == "config" and isinstance(current, Mapping) and isinstance(value, Mapping):
                result[key] = _deep_merge(current, value)
            elif key in _MERGED_FIELDS and isinstance(current, Mapping) and isinstance(value, Mapping):
                result[key] = {**current, **value}
            else:
                result[key] = value
    if "host_port" not in result:
        result["host_port"] = result.get("port")
    # Keep the documented field order first: it reads better in --diff and in rendered files.
    ordered = {k: result[k] for k in FIELDS if k in result}
    ordered.update((k, v) for k, v in result.items() if k not in ordered)
    return ordered


# --------------------------------------------------------------------------------------------
# Validation


def _label(agent: Any, position: int) -> str:
    name = agent.get("name") if isinstance(agent, Mapping) else None
    if isinstance(name, str) and len(name) <= NAME_MAX_LENGTH and re.match(_DNS_LABEL, name):
        return str.__str__(name)
    return f"#{position}"


def _ports(first: int, last: int) -> str:
    return f"host port {first}" if first == last else f"host ports {first}-{last}"


def _hosts_text(hosts: list[str], limit: int = 5) -> str:
    shown = ", ".join(f"'{h}'" for h in hosts[:limit])
    more = f" and {len(hosts) - limit} more" if len(hosts) > limit else ""
    return f"host{'s' if len(hosts) > 1 else ''} {shown}{more}"


def memory_bytes(text: str) -> int:
    """A memory size of the catalog (``512m``, ``2g``: an integer and one of b, k, m, g) in bytes;
    0 for anything else (validation reports it)."""
    m = re.match(_MEMORY, text) if isinstance(text, str) else None
    return int(m[1]) * _MEMORY_UNITS[m[2].lower()] if m else 0


@dataclass
class _Placed:
    index: int
    label: str
    hosts: list[str]
    first: int
    last: int


@dataclass
class _GatewayPort:
    index: int
    label: str
    port: int


# The inventory group whose hosts run the HAProxy gateway (the gateway role's play hosts).
GATEWAY_GROUP = "gateway"


def _agent_ref(label: str) -> str:
    return f"agent '{label}'" if not label.startswith("#") else f"agent {label}"


def _gateway_port(merged: Mapping[str, Any]) -> int | None:
    gateway = merged.get("gateway")
    port = gateway.get("port") if isinstance(gateway, Mapping) else None
    return port if isinstance(port, int) and not isinstance(port, bool) else None


def _cross_checks(
    own: Mapping[str, Any], merged: Mapping[str, Any], bad: set[str], groups: Mapping[str, Sequence[str]]
) -> tuple[list[tuple[str, str]], list[str] | None]:
    """(field, message) pairs for the rules a schema cannot say, and the hosts placed on."""
    out: list[tuple[str, str]] = []

    def ok(*names: str) -> bool:
        return not (set(names) & bad)

    runtime = merged.get("runtime")
    if ok("runtime", "image") and runtime == "docker" and not merged.get("image"):
        out.append(("image", "is required when runtime is 'docker'"))
    if ok("runtime") and runtime == "systemd":
        for key in ("image", "image_source", "image_archive"):
            if key in own:
                out.append((key, "only applies to runtime 'docker' (this agent's runtime is 'systemd')"))
        if ok("command") and not merged.get("command"):
            out.append(("command", "is required when runtime is 'systemd': the executable and its arguments"))
    if ok("runtime", "image_source", "image_archive") and runtime == "docker":
        source = merged.get("image_source")
        if source == "archive" and not merged.get("image_archive"):
            out.append(("image_archive", "is required when image_source is 'archive'"))
        if source == "registry" and "image_archive" in own:
            out.append(("image_archive", "is only used when image_source is 'archive' (it is 'registry')"))

    if ok("replicas") and merged["replicas"] > MAX_REPLICAS_PER_HOST:
        out.append(("replicas", f"must be at most {MAX_REPLICAS_PER_HOST} per host (got {merged['replicas']})"))
        bad.add("replicas")
    if ok("host_port", "port", "replicas"):
        first, replicas = merged["host_port"], merged["replicas"]
        if replicas and first + replicas - 1 > 65535:
            implicit = "" if "host_port" in own else " (host_port defaults to port)"
            out.append((
                "host_port",
                f"the replicas' host ports run past 65535: {replicas} replicas from host port "
                f"{first} need ports up to {first + replicas - 1}{implicit}",
            ))

    if ok("resources"):
        memory = merged.get("resources", {}).get("memory")
        if isinstance(memory, str) and 0 < memory_bytes(memory) < MIN_MEMORY_BYTES:
            out.append(("resources.memory", f"must be at least 6m, Docker's minimum (got {_show(memory)})"))

    placed: list[str] | None = None
    if ok("hosts"):
        pattern = merged.get("hosts")
        hosts, complaints = resolve_hosts(pattern, groups)
        shown = _show(pattern) if isinstance(pattern, str) else f"[{', '.join(map(str, pattern))}]"
        single = isinstance(pattern, str) and split_host_pattern(pattern) == [pattern.strip()]
        if complaints:
            out.extend(("hosts", c if single else f"pattern {shown}: {c}") for c in complaints)
        elif not hosts:
            out.append(("hosts", f"pattern {shown} matches no host in the inventory"))
        else:
            placed = hosts
    return out, placed


def validate_catalog(
    agents: Any,
    groups: Mapping[str, Sequence[str]],
    *,
    defaults: Mapping[str, Any] | None = None,
    strict: bool = False,
    reserved: Mapping[str, Mapping[int, str]] | None = None,
    secret_values: bool = True,
) -> list[CatalogProblem]:
    """Every problem in the catalog, sorted; an empty list means the catalog is valid.

    ``agents`` is the value of ``agentfactory_agents`` (``None`` counts as an empty catalog),
    ``groups`` maps the inventory's group names to their hosts (with ``all``), ``defaults`` is
    ``agentfactory_agent_defaults`` (checked with the same rules, minus ``name``). With
    ``strict``, secrets must be vault-encrypted (see the module docstring). ``reserved`` maps a
    host to the ports the platform itself uses there (``{22: "SSH (ansible_port)"}``): no
    replica's host port and no gateway port on a gateway host may be one of them. Without
    ``secret_values``, secrets are checked by name only: their values are never read.

    Problems are sorted by scope (the catalog, the defaults, then each agent in catalog
    order), then by field in the documented field order, then by message.
    """
    problems: list[CatalogProblem] = []

    def add(agent: str, fieldname: str, message: str, index: int | None = None) -> None:
        problems.append(CatalogProblem(agent, fieldname, message, index))

    # The defaults, once: a mistake there is reported there, not in every agent.
    defaults_bad: set[str] = set()
    if defaults is not None and not isinstance(defaults, Mapping):
        add(DEFAULTS_VAR, "", f"must be a mapping of agent fields (got {_show(defaults)})")
        defaults = None
    defaults = _mask_vaulted(defaults if secret_values else _secret_names_only(defaults))
    if defaults:
        for fieldname, message in _schema_messages(_DEFAULTS_VALIDATOR, defaults, defaults=True):
            add(DEFAULTS_VAR, fieldname, message)
            defaults_bad.add(re.split(r"[.\[]", fieldname, maxsplit=1)[0])
        for fieldname, message in _secret_checks(defaults, strict) + _vault_outside_secrets(defaults):
            add(DEFAULTS_VAR, fieldname, message)

    if agents is None:
        agents = []
    if isinstance(agents, (str, bytes, Mapping)) or not isinstance(agents, Sequence):
        add("", "", f"must be a list of agents (got {_show(agents)})")
        return _sorted(problems)

    first_use: dict[str, int] = {}
    placements: list[_Placed] = []
    gateway_ports: list[_GatewayPort] = []
    for position, agent in enumerate(agents, start=1):
        label = _label(agent, position)
        if not isinstance(agent, Mapping):
            add(label, "", f"must be a mapping of agent fields (got {_show(agent)})", position)
            continue
        agent = _mask_vaulted(agent if secret_values else _secret_names_only(agent))

        # A bad default only spoils the fields this agent takes from the defaults.
        bad = {f for f in defaults_bad if f not in agent or f in _MERGED_FIELDS or f == "config"}
        for fieldname, message in _schema_messages(_AGENT_VALIDATOR, agent, defaults=False):
            add(label, fieldname, message, position)
            bad.add(re.split(r"[.\[]", fieldname, maxsplit=1)[0])
        for fieldname, message in _secret_checks(agent, strict) + _vault_outside_secrets(agent):
            add(label, fieldname, message, position)

        name = agent.get("name")
        if isinstance(name, str):
            if name in first_use:
                add(label, "name", f"agents #{first_use[name]} and #{position} are both named "
                    f"{_show(name)} (names must be unique)", position)
            else:
                first_use[name] = position

        merged = normalise_agent(agent, defaults)
        cross, hosts = _cross_checks(agent, merged, bad, groups)
        for fieldname, message in cross:
            add(label, fieldname, message, position)
        if hosts and not ({"host_port", "port", "replicas"} & bad) and merged["replicas"] > 0:
            first = merged["host_port"]
            placements.append(_Placed(position, label, hosts, first, first + merged["replicas"] - 1))
        gateway_port = None if "gateway" in bad else _gateway_port(merged)
        if gateway_port is not None:
            gateway_ports.append(_GatewayPort(position, label, gateway_port))

    # Host ports shared by two agents on one host; reported on the later agent.
    for j, later in enumerate(placements):
        for earlier in placements[:j]:
            low, high = max(later.first, earlier.first), min(later.last, earlier.last)
            if low > high:
                continue
            shared = [h for h in later.hosts if h in set(earlier.hosts)]
            if not shared:
                continue
            add(later.label, "host_port",
                f"{_ports(low, high)} on {_hosts_text(shared)} already used by {_agent_ref(earlier.label)} "
                f"({_ports(earlier.first, earlier.last)})", later.index)

    # Gateway ports: every gateway host binds all of them, so they are unique across the
    # catalog (reported on the later agent) and no replica on a gateway host may listen on one.
    first_gateway: dict[int, _GatewayPort] = {}
    gateway_hosts = set(groups.get(GATEWAY_GROUP) or [])
    for entry in gateway_ports:
        earlier = first_gateway.setdefault(entry.port, entry)
        if earlier is not entry:
            add(entry.label, "gateway.port",
                f"port {entry.port} is already the gateway port of {_agent_ref(earlier.label)} "
                "(gateway ports must be unique)", entry.index)
        for placed in placements:
            shared = [h for h in placed.hosts if h in gateway_hosts]
            if not shared or not placed.first <= entry.port <= placed.last:
                continue
            owner = "this agent's own replicas" if placed.index == entry.index else _agent_ref(placed.label)
            add(entry.label, "gateway.port",
                f"port {entry.port} on {_hosts_text(shared)} (group '{GATEWAY_GROUP}') is already used by "
                f"{owner} ({_ports(placed.first, placed.last)})", entry.index)

    # Ports the platform listens on (SSH, exporters, monitoring, registry, gateway metrics).
    for placed in placements:
        for port, service, hosts in _reserved_hits(reserved, placed.hosts, placed.first, placed.last):
            add(placed.label, "host_port", f"host port {port} on {_hosts_text(hosts)} is reserved for {service}",
                placed.index)
    for entry in gateway_ports:
        hosts = sorted(gateway_hosts)
        for port, service, hits in _reserved_hits(reserved, hosts, entry.port, entry.port):
            add(entry.label, "gateway.port", f"port {port} on {_hosts_text(hits)} (group '{GATEWAY_GROUP}') "
                f"is reserved for {service}", entry.index)

    return _sorted(problems)


def _reserved_hits(reserved: Mapping[str, Mapping[int, str]] | None, hosts: Sequence[str], first: int,
                   last: int) -> list[tuple[int, str, list[str]]]:
    """(port, service, hosts) for each reserved port in first..last on some of `hosts`."""
    found: dict[tuple[int, str], list[str]] = {}
    for host in hosts:
        for port, service in (reserved or {}).get(host, {}).items():
            if first <= port <= last:
                found.setdefault((port, service), []).append(host)
    return [(port, service, hits) for (port, service), hits in sorted(found.items())]


def _vault_outside_secrets(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A vault value in env, config, command or image: refused. Those fields are written in the
    clear where Ansible reports what it did (a container's environment, a rendered config under
    --diff), so a decrypted value would land in run artifacts; `secrets` are files, never logged."""
    out: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        vaulted = isinstance(value, str) and (is_vault_encrypted(value) or bool(_VAULT_MENTION.search(value)))
        if value is _VAULTED or vaulted:
            out.append((where, "a vault value is only allowed in secrets (env, config, command and image "
                               "show in run artifacts); put it in secrets and read the file"))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    for name in ("env", "config", "command", "image"):
        if name in fields:
            walk(fields[name], name)
    return out


def _secret_checks(fields: Mapping[str, Any], strict: bool) -> list[tuple[str, str]]:
    secrets = fields.get("secrets")
    if not isinstance(secrets, Mapping):
        return []  # the schema reports it
    out = []
    for key, value in secrets.items():
        message = _secret_problem(value, strict)
        if message:
            out.append((_path(["secrets", str(key)]), message))
    return out


def _sorted(problems: list[CatalogProblem]) -> list[CatalogProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=CatalogProblem._sort_key)
