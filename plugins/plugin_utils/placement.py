"""Which inventory hosts an agent's ``hosts`` pattern places it on: Ansible's own matching.

The pattern is evaluated by Ansible's InventoryManager over the inventory's ``groups`` (the way
the ``inventory_hostnames`` lookup does it), so placement means exactly what ``hosts:`` means in a
play: unions (``a:b``, ``a,b``), ``&`` and ``!``, wildcards, ``~regex`` and subscripts. What this
module adds is a clear complaint for a plain name that is neither a group nor a host (a typo must
not silently drop or keep hosts), and the result in inventory order.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager, split_host_pattern
from ansible.parsing.dataloader import DataLoader

# A trailing subscript as Ansible reads one: group[0], group[-1], group[1:3], group[1-3], group[2:].
_SUBSCRIPT = re.compile(r"^(?P<base>.+)\[(?:-?[0-9]+|[0-9]+[:-][0-9]*)\]$")
_WILDCARD = set("*?[")


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _frozen(groups: Mapping[str, Sequence[str]]) -> tuple:
    members = tuple((str(g), tuple(str(h) for h in hosts or [])) for g, hosts in groups.items())
    order = [h for g, hosts in members if g == "all" for h in hosts]
    order += [h for _g, hosts in members for h in hosts]
    order = tuple(dict.fromkeys(order))
    if "all" not in groups:
        members += (("all", order),)
    return members, order


@lru_cache(maxsize=8)
def _manager(frozen: tuple) -> InventoryManager:
    members, _order = frozen
    manager = InventoryManager(DataLoader(), parse=False)
    for group, hosts in members:  # as the inventory_hostnames lookup builds it
        manager.add_group(group)
        for host in hosts:
            manager.add_host(host, group=group)
    return manager


def _term_problems(terms: list[str], known: set[str]) -> list[str]:
    """Plain names that are neither a group nor a host, regular expressions that do not compile."""
    found = []
    for term in terms:
        base = term.lstrip("!&").strip()
        if not base:
            found.append("an empty '!' or '&' term")
            continue
        if base.startswith("~"):
            try:
                re.compile(base[1:])
            except re.error as exc:
                found.append(f"{base!r} is not a valid regular expression ({exc})")
            continue
        if match := _SUBSCRIPT.match(base):
            base = match["base"]
        if not (_WILDCARD & set(base)) and base not in known:
            found.append(f"'{base}' is neither a group nor a host in the inventory{_suggest(base, sorted(known))}")
    return found


def resolve_hosts(pattern: str | Sequence[str], groups: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    """The inventory hosts a placement matches, in inventory order, and what is wrong with it.

    ``groups`` maps group names to their hosts (children included, like Ansible's ``groups``
    variable); ``all`` is computed when missing. A list of patterns is their union. Returns
    ``(hosts, complaints)``: a plain name that is neither a group nor a host is a complaint (it
    matches nothing, as in a play), and so is a subscript past the end of its group; a wildcard
    or regex matching nothing is not (the caller reports a pattern that matches no host at all).
    """
    frozen = _frozen(groups)
    members, order = frozen
    known = {g for g, _hosts in members} | set(order) | {"all"}
    patterns = [pattern] if isinstance(pattern, str) else [str(p) for p in pattern]
    terms = [t for p in patterns for t in split_host_pattern(p)]
    complaints = _term_problems(terms, known)
    # A wildcard that matches nothing is fine here: keep Ansible from warning about it.
    mismatch, C.HOST_PATTERN_MISMATCH = C.HOST_PATTERN_MISMATCH, "ignore"
    try:
        found = {h.name for h in _manager(frozen).get_hosts(pattern=terms or ["all"])}
    except AnsibleError as exc:  # a subscript past the end of its group, say
        return [], complaints or [str(exc).strip()]
    finally:
        C.HOST_PATTERN_MISMATCH = mismatch
    # Only inventory hosts: Ansible adds an implicit localhost for the name 'localhost'.
    return [h for h in order if h in found], complaints
