"""What the inventory means for each host, worked out the way Ansible will: the catalog rendered with
the host's variables, the host's connection settings, the ports the platform itself uses there.

Used by :mod:`agentfactory_cli.inventory` after Ansible's loader has read the files; every failure
becomes one line of a problem list (exit 4), before any host is contacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import yaml

from agentfactory_cli import ansiblecore
from agentfactory_cli.paths import project_root

# The ports the roles listen on: (inventory group or None for every host, service, variable, role
# whose defaults give the value when the inventory sets none). A value is a port, or an address
# "host:port" (the *_listen_address variables). SSH (ansible_port) comes first, on every host.
PLATFORM_PORTS = (
    (None, "SSH", "firewall_ssh_port", "firewall"),
    (None, "node_exporter", "node_exporter_listen_address", "node_exporter"),
    (None, "node_exporter", "firewall_node_exporter_port", "firewall"),
    ("monitoring", "Prometheus", "prometheus_listen_address", "prometheus"),
    ("monitoring", "Prometheus", "firewall_prometheus_port", "firewall"),
    ("monitoring", "Alertmanager", "alertmanager_listen_address", "alertmanager"),
    ("monitoring", "Alertmanager", "firewall_alertmanager_port", "firewall"),
    ("monitoring", "Grafana", "grafana_http_port", "grafana"),
    ("monitoring", "Grafana", "firewall_grafana_port", "firewall"),
    ("registry", "the registry", "registry_port", "registry"),
    ("registry", "the registry", "firewall_registry_port", "firewall"),
    ("gateway", "the gateway's metrics", "gateway_metrics_port", "gateway"),
    ("gateway", "the gateway's metrics", "firewall_gateway_metrics_port", "firewall"),
)


@cache
def role_defaults(role: str) -> dict[str, Any]:
    path = project_root() / "roles" / role / "defaults" / "main.yml"
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def vault_hint(reason: str) -> str:
    """What to do about a vault error: a wrong password is not a missing one."""
    lowered = reason.lower()
    if "is undefined" in lowered:  # a variable named vault_* that nothing defines: no vault problem
        return ""
    if any(word in lowered for word in ("decryption failed", "could decrypt", "hmac")):
        return " (the vault password given does not decrypt it: check --vault-password-file, --vault-id or " \
               "--ask-vault-pass)"
    if "vault" in lowered or "decrypt" in lowered:
        return " (a vault-encrypted value needs --vault-password-file, --vault-id or --ask-vault-pass)"
    return ""


def _as_port(value: Any) -> int | None:
    """A port number from an int, a digit string or an address ending in :PORT."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = re.search(r"(?:^|:)(\d{1,5})$", str(value).strip())
    return int(match[1]) if match else None


def reserved_ports(host: str, hostvars: Mapping[str, Any], templar, groups: Mapping[str, list[str]]) -> dict[int, str]:
    """{port: "service (variable)"} the platform listens on at this host, from the variables as the
    inventory sets them for it, else the roles' defaults. Values that cannot be rendered are left
    to the role that uses them."""
    from ansible.errors import AnsibleError

    ports: dict[int, str] = {}
    try:  # a port that does not render is reported by connection_problems (for the hosts in the run)
        ssh = _as_port(_render(templar, hostvars.get("ansible_port", 22)))
    except AnsibleError:
        ssh = None
    if ssh:
        ports[ssh] = "SSH (ansible_port)"
    for group, service, variable, role in PLATFORM_PORTS:
        if group is not None and host not in groups.get(group, []):
            continue
        raw = hostvars[variable] if variable in hostvars else role_defaults(role).get(variable)
        try:
            port = _as_port(_render(templar, raw))
        except AnsibleError:
            continue
        if port:
            ports.setdefault(port, f"{service} ({variable})")
    return ports


def _render(templar, value: Any) -> Any:
    return templar.template(value) if isinstance(value, str) and "{" in value else value


def connection_problems(host: str, hostvars: Mapping[str, Any], templar, variables: tuple[str, ...]) -> list[str]:
    """The connection `variables` as Ansible will use them: rendered (a vault value decrypted, never
    shown), ansible_port a number, ansible_host not empty."""
    from ansible.errors import AnsibleError

    out: list[str] = []
    for variable in variables:
        if variable not in hostvars:
            continue
        try:
            value = templar.template(hostvars[variable])
        except (AnsibleError, RecursionError) as exc:
            reason, hint = _first_line(exc), vault_hint(_first_line(exc))
            if hint or "pass" in variable:  # a message about a password must not carry its value
                reason = "a vault value cannot be decrypted" if hint else "cannot be rendered"
            out.append(f"host {host}: {variable}: {reason}{hint}{origin_of(hostvars[variable])}")
            continue
        if variable == "ansible_port":
            port = value if isinstance(value, int) and not isinstance(value, bool) else \
                int(value) if isinstance(value, str) and value.strip().isdigit() else None
            if port is None or not 1 <= port <= 65535:
                out.append(f"host {host}: ansible_port: must be a port number from 1 to 65535 "
                           f"(got {str(value)[:40]!r}){origin_of(hostvars[variable])}")
        elif value is None or not str(value).strip():
            out.append(f"host {host}: {variable}: is empty{origin_of(hostvars[variable])}")
    return out


def origin_of(value: Any) -> str:
    """ (FILE:LINE) where Ansible's loader read this value, when it knows."""
    found = ansiblecore.origin(value)
    if found is None:
        return ""
    path, line = found
    return f" ({path}:{line})" if line else f" ({path})"


def render_agent(agent: Mapping[str, Any], templar, *, secrets: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The agent with every Jinja expression rendered with one host's variables, and
    (field, message) for the fields that cannot be. Secrets are rendered only with `secrets`
    (it needs the vault password), and their values never appear in a message."""
    from ansible.errors import AnsibleError

    rendered: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for field, value in agent.items():
        if field == "secrets" and not secrets:
            rendered[field] = value
            continue
        try:
            rendered[field] = _plain(templar.template(value))
        except (AnsibleError, RecursionError) as exc:
            reason, hint = _first_line(exc), vault_hint(_first_line(exc))
            if hint:
                reason = "a vault value cannot be decrypted"
            elif field == "secrets" and not re.fullmatch(r"'\w+' is undefined", reason):
                reason = "the value is not shown"  # only a variable's name is safe to print
            problems.append((field, f"cannot be rendered: {reason}{hint}"))
    return rendered, problems


def _plain(value: Any) -> Any:
    """Plain containers all the way down (Ansible's may be lazy: this renders every leaf)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
