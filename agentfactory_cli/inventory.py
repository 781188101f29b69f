"""Which inventory a command runs against, and whether Ansible can read it at all.

Checked before any playbook runs: a missing path, a file Ansible cannot parse, or a --limit
that matches no host each give one clear message and exit code 4, with no host contacted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from agentfactory_cli import ansiblecore, preflight
from agentfactory_cli.errors import InvalidInput
from agentfactory_cli.lab import DEFAULT_LAB, Lab


@dataclass
class Inventory:
    paths: list[Path]
    groups: dict[str, list[str]]  # group name -> host names, with "all"
    agent_names: list[str] = field(default_factory=list)  # every agent of the catalog(s)
    agents: dict = field(default_factory=dict)  # name -> the agent, normalised (first host's view)
    limited: list[str] = field(default_factory=list)  # the hosts --limit keeps (all when no limit)
    connections: dict[str, dict] = field(default_factory=dict, repr=False)  # host -> CONNECTION_VARS set


def resolve(paths: list[str] | None, lab_name: str = DEFAULT_LAB, log=None) -> list[Path]:
    """The -i paths as given, or the lab's inventory when none were given and the lab exists."""
    if paths:
        resolved = []
        for raw in paths:
            p = Path(raw).expanduser()
            if not p.exists():
                raise InvalidInput(f"inventory not found: {raw} (no such file or directory)")
            resolved.append(p.resolve())
        return resolved
    lab_inventory = Lab(lab_name).inventory_path
    if lab_inventory.exists():
        if log:
            log(f"No -i given: using the lab inventory {os.path.relpath(lab_inventory)}")
        return [lab_inventory]
    raise InvalidInput(
        "no inventory given and no lab is up: pass -i PATH (e.g. -i inventory/example) "
        "or start the local lab with 'agentfactory lab up'"
    )


def load(paths: list[Path], limit: str | None = None, vault_ids: list[str] | None = None,
         vault_passwords: dict[str, str] | None = None, strict: bool = False,
         connections: bool = False, need_secrets: bool = False) -> Inventory:
    """Parse the inventory and check the agent catalog with Ansible's own loader.

    Raises InvalidInput on anything wrong, before any host is contacted. With `strict`,
    agent secrets must be vault-encrypted. `vault_ids` are vault password files (LABEL@FILE or
    FILE), `vault_passwords` typed passwords by vault id label. With `connections`, each host's
    SSH settings are read too (logs and exec connect by themselves). With `need_secrets` (the
    run writes agent secrets), a vaulted secret without a vault password is an error; with a
    vault password, every secret must decrypt with it.
    """
    # Imported late: ansible's import is slow, and `--help` should not pay for it.
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    from agentfactory_cli import yamlcheck

    # An unparsable source must be an error, as in our runs (ANSIBLE_INVENTORY_UNPARSED_FAILED).
    ansiblecore.fail_on_unparsed_inventory()
    loader = DataLoader()
    if vault_ids or vault_passwords:
        _set_vault_secrets(loader, vault_ids or [], vault_passwords or {})
    # Our own reading first: Ansible's loader keeps the last of two duplicate keys, and an alias
    # bomb or a value nested hundreds deep would hang it or end in a traceback.
    files = yamlcheck.inventory_files(paths)
    yamlcheck.check_files(files, decrypt=lambda text: ansiblecore.decrypt(loader, text))
    warnings: list[tuple[str, BaseException | None]] = []
    try:
        with ansiblecore.collect_warnings(warnings):
            manager = InventoryManager(loader=loader, sources=[str(p) for p in paths])
    except AnsibleError as exc:
        raise InvalidInput(_parse_error(paths, warnings, exc)) from None
    hosts = manager.get_hosts("all")
    if not hosts:
        raise InvalidInput(f"inventory {', '.join(map(str, paths))} has no hosts")
    matched = hosts
    if limit is not None:
        try:
            with ansiblecore.collect_warnings([]):
                _check_limit_parts(manager, limit)
                manager.subset(limit)
                matched = manager.get_hosts("all")
        except (AnsibleError, re.error, ValueError, IndexError) as exc:
            raise InvalidInput(f"--limit {limit!r} is not a valid host pattern: {str(exc).strip().splitlines()[0]}") \
                from None
        if not matched:
            raise InvalidInput(f"--limit {limit!r} matches no host in the inventory")
        manager.subset(None)  # the limit chose the run's hosts; the catalog is checked for all
    groups = {name: sorted(h.name for h in group.get_hosts()) for name, group in manager.groups.items()}
    secrets = need_secrets or bool(vault_ids or vault_passwords)
    agents = _check_catalog(loader, manager, groups, strict=strict, limited=[h.name for h in matched],
                            secrets=secrets, vaulted=yamlcheck.vault_files(files))
    return Inventory(paths=paths, groups=groups, agent_names=list(agents), agents=agents,
                     limited=[h.name for h in matched],
                     connections=_connections(loader, manager) if connections else {})


def _check_limit_parts(manager, limit: str) -> None:
    """Every part of a --limit names something: Ansible reads an empty limit, an empty part or an
    empty regex (`~`) as every host, and only warns about a part that matches nothing."""
    from ansible.inventory.manager import split_host_pattern

    if limit.startswith("@"):  # a file of host names: Ansible reads it
        return
    parts = split_host_pattern(limit)
    if not parts:
        raise ValueError("the limit is empty (it would mean every host)")
    for part in parts:
        pattern = part.lstrip("!&")
        if pattern in ("", "~"):
            raise ValueError(f"the part {part!r} is empty (it would mean every host)")
        if not manager.get_hosts(pattern):
            raise ValueError(f"the part {part!r} matches no host or group")


def _set_vault_secrets(loader, vault_ids: list[str], vault_passwords: dict[str, str]) -> None:
    from ansible.errors import AnsibleError

    try:
        secrets = ansiblecore.vault_secrets(loader, vault_ids, vault_passwords)
    except AnsibleError as exc:
        raise InvalidInput(f"vault password: {str(exc).strip().splitlines()[0]}") from None
    ansiblecore.use_vault_secrets(loader, secrets)


# The variables that say how to reach a host over SSH (as Ansible's ssh connection reads them).
CONNECTION_VARS = ("ansible_connection", "ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file",
                   "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_become", "ansible_become_user",
                   "ansible_become_method", "ansible_become_password", "ansible_become_pass")


def _connections(loader, manager) -> dict[str, dict]:
    """Each host's connection variables, templated (they may refer to other variables)."""
    from ansible.errors import AnsibleError
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    variables = VariableManager(loader=loader, inventory=manager)
    found = {}
    for host in manager.get_hosts("all"):
        hostvars = variables.get_vars(host=host, include_hostvars=False)
        templar = Templar(loader=loader, variables=hostvars)
        try:
            found[host.name] = {k: templar.template(hostvars[k]) for k in CONNECTION_VARS if k in hostvars}
        except AnsibleError as exc:
            # Only the first line: a message about a password must not carry its value.
            raise InvalidInput(f"connection variables of host {host.name}: {str(exc).strip().splitlines()[0]}") \
                from None
    return found


def _check_catalog(loader, manager, groups: dict[str, list[str]], strict: bool, limited: list[str],
                   secrets: bool, vaulted: list[str]) -> dict[str, dict]:
    """Validate the agent catalog as every host sees it; all problems at once, or InvalidInput.

    First as written (the schema and the cross-field rules, with the ports the platform uses on
    each host), then, when that is clean, every agent rendered with the variables of each host it
    is placed on, and checked again. Returns the agents by name, normalised (as written).
    """
    from ansible.errors import AnsibleError
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    from agentfactory_cli.model import catalog as model

    variables = VariableManager(loader=loader, inventory=manager)
    ansiblecore.with_hostvars(variables, manager, loader)
    problems: dict[str, None] = {}  # ordered set: the same catalog seen by many hosts
    views: dict[str, tuple] = {}  # host -> (its variables, its templar)
    reserved: dict[str, dict[int, str]] = {}
    for host in manager.get_hosts("all"):
        try:
            hostvars = variables.get_vars(host=host, include_hostvars=True)
        except AnsibleError as exc:
            reason = str(exc).strip().splitlines()[0]
            hint = preflight.vault_hint(reason)
            files = f" (vault-encrypted: {', '.join(vaulted)})" if hint and vaulted else ""
            raise InvalidInput(f"variables of host {host.name} cannot be read{files}: {reason}{hint}") from None
        templar = Templar(loader=loader, variables=hostvars)
        views[host.name] = (hostvars, templar)
        if model.CATALOG_VAR in hostvars and hostvars[model.CATALOG_VAR] is None:  # from a file yamlcheck did not see
            problems[f"{model.CATALOG_VAR} is null: write [] for no agents "
                     "(a null catalog would remove every agent)"] = None
        if host.name in limited:
            problems.update(dict.fromkeys(preflight.connection_problems(host.name, hostvars, templar, CONNECTION_VARS)))
        reserved[host.name] = preflight.reserved_ports(host.name, hostvars, templar, groups)

    agents: dict[str, dict] = {}
    seen: set[tuple[int, int]] = set()
    for hostvars, _templar in views.values():
        catalog, defaults = hostvars.get(model.CATALOG_VAR), hostvars.get(model.DEFAULTS_VAR)
        key = (id(catalog), id(defaults))
        if key in seen:
            continue
        seen.add(key)
        for problem in model.validate_catalog(catalog, groups, defaults=defaults, strict=strict, reserved=reserved):
            where = _where(problem, catalog, defaults)
            problems[f"{where}: {problem}" if where else str(problem)] = None
        for agent in catalog if isinstance(catalog, list) else []:
            if isinstance(agent, dict) and isinstance(agent.get("name"), str):
                agents.setdefault(agent["name"], model.normalise_agent(agent, defaults))
    if not problems:
        problems.update(dict.fromkeys(_placed_nowhere(views, groups)))
    if not problems:
        problems.update(dict.fromkeys(_rendered_problems(views, groups, reserved, secrets)))
    if problems:
        lines = "\n  ".join(problems)
        raise InvalidInput(f"the agent catalog has {len(problems)} problem(s):\n  {lines}", problems=list(problems))
    return agents


def _where(problem, catalog, defaults) -> str:
    """FILE:LINE of what a problem is about: its agent, the defaults, or the catalog."""
    from agentfactory_cli.model import catalog as model

    value = catalog
    if problem.agent == model.DEFAULTS_VAR:
        value = defaults
    elif problem.index and isinstance(catalog, list) and problem.index <= len(catalog):
        value = catalog[problem.index - 1]
    return preflight.origin_of(value).strip(" ()")


def _placed_nowhere(views: dict[str, tuple], groups: dict[str, list[str]]) -> list[str]:
    """Agents that no host would run: each host runs the agents of its own view of the catalog
    that place it, so a host_vars catalog can name an agent for hosts whose catalog lacks it."""
    from agentfactory_cli.model import catalog as model
    from agentfactory_cli.model import placement

    runs: dict[str, bool] = {}
    placed_on: dict[str, tuple[list[str], str]] = {}
    for host, (hostvars, _templar) in views.items():
        for agent in hostvars.get(model.CATALOG_VAR) or []:
            merged = model.normalise_agent(agent, hostvars.get(model.DEFAULTS_VAR))
            hosts, _ = placement.resolve_hosts(merged["hosts"], groups)
            runs[agent["name"]] = runs.get(agent["name"], False) or host in hosts
            placed_on.setdefault(agent["name"], (hosts, preflight.origin_of(agent).strip(" ()")))
    out = []
    for name, running in runs.items():
        hosts, where = placed_on[name]
        if not running and hosts:
            shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
            out.append(f"{where + ': ' if where else ''}agent '{name}': field 'hosts': places it on {shown}, whose "
                       f"own {model.CATALOG_VAR} (group_vars/host_vars) has no agent '{name}': it would run nowhere")
    return out


def _rendered_problems(views: dict[str, tuple], groups: dict[str, list[str]], reserved: dict[str, dict[int, str]],
                       secrets: bool) -> list[str]:
    """Each host's agents rendered with its variables (as the agent role will), then checked again:
    an undefined variable, or a value that is only wrong once rendered (spaces in an image)."""
    from agentfactory_cli.model import catalog as model
    from agentfactory_cli.model import placement

    found: dict[str, str] = {}  # problem -> the first host it was seen for
    for host, (hostvars, templar) in views.items():
        catalog, defaults = hostvars.get(model.CATALOG_VAR) or [], hostvars.get(model.DEFAULTS_VAR) or {}
        rendered_defaults, failures = preflight.render_agent(defaults, templar, secrets=secrets)
        for name, message in failures:
            found.setdefault(f"{preflight.origin_of(defaults).strip(' ()')}: {model.DEFAULTS_VAR}: field '{name}': "
                             f"{message}", host)
        rendered, originals = [], []
        for agent in catalog:
            placed, _ = placement.resolve_hosts(model.normalise_agent(agent, defaults)["hosts"], groups)
            if host not in placed:
                continue
            result, failures = preflight.render_agent(agent, templar, secrets=secrets)
            where = preflight.origin_of(agent).strip(" ()")
            for name, message in failures:
                found.setdefault(f"{where}: agent '{agent['name']}': field '{name}': {message}", host)
            if not failures:
                rendered.append(result)
                originals.append(agent)
        for problem in model.validate_catalog(rendered, groups, defaults=rendered_defaults, reserved=reserved):
            where = _where(problem, originals, defaults)  # where the agent was written
            found.setdefault(f"{where}: {problem}" if where else f"{problem}", host)
    return [f"{problem} (rendered for host {host})" for problem, host in found.items()]


def _parse_error(paths: list[Path], warnings: list[tuple[str, BaseException | None]], exc: Exception) -> str:
    """One line naming the file, the reason and, where Ansible knows it, the line."""
    where = ", ".join(map(str, paths))
    # Prefer the plugin that matches the file type: the others fail for unrelated reasons.
    yaml_source = any(p.suffix in (".yml", ".yaml") or (p.is_dir() and any(
        c.suffix in (".yml", ".yaml") and c.is_file() for c in p.iterdir())) for p in paths)
    wanted = "'yaml'" if yaml_source else "'ini'"
    for _msg, cause in sorted(warnings, key=lambda w: wanted not in w[0]):
        if cause is not None:
            reason = str(cause).strip().splitlines()[0]
            line = f" (line {number})" if (number := ansiblecore.error_line(cause)) else ""
            return f"inventory {where} cannot be parsed: {reason}{line}"
    return f"inventory {where} cannot be parsed: {str(exc).strip().splitlines()[0]}"
