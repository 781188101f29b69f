"""`agentfactory`: parse the command line, run one playbook or lab action, exit with a clear code."""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentfactory_cli import __version__, config, errors, jsondoc
from agentfactory_cli import inventory as inv
from agentfactory_cli.lab import PUBLISHED_PORTS, Lab, lab_of_inventory
from agentfactory_cli.runner import PlaybookRequest
from agentfactory_cli.verbs import IMAGE_PUSH, VERBS, Verb, int_at_least

_err = Console(stderr=True, highlight=False, soft_wrap=True)


# --wait without a value: how long a run queues behind another on the same fleet, in seconds.
WAIT_DEFAULT = 1800

CONFIG_HELP = """\
Each setting comes from, in this order: its flag, its environment variable AGENTFACTORY_<NAME>,
the config file, the built-in default. The config file (TOML) is the first found of:
$AGENTFACTORY_CONFIG, agentfactory.toml in the project directory, ~/.config/agentfactory/config.toml
($XDG_CONFIG_HOME). Example:
  inventory = ["inventory/prod"]      # relative to the file
  forks = 20
  user = "deploy"
  vault_id = ["prod@~/.vault-pass-prod"]
"""

REMOTE_EXIT_HELP = """\
exit codes:
  0    success
  2    a command failed on a host (no such container or unit...)
  3    a host could not be reached over SSH
  4    invalid input (inventory, catalog, agent, replica, host)
  130  interrupted (Ctrl-C: the way to stop -f)
"""

EXEC_EXIT_HELP = """\
exit codes: the command's own, the highest of all replicas when there are several;
  255  a host could not be reached over SSH (as ssh does)
  4    invalid input (inventory, catalog, agent, replica, host), nothing was run
  130  interrupted (Ctrl-C)
"""


_positive_int = int_at_least(1)
_count = int_at_least(0)


def _inventory_options(g, forks: bool = True) -> None:
    """How to reach the fleet: the settings of agentfactory.config (flag > env > file > default)."""
    g.add_argument("-i", "--inventory", action="append", metavar="PATH",
                   help="inventory file or directory, repeatable (env AGENTFACTORY_INVENTORY; "
                        "default: the lab's inventory when the lab is up)")
    g.add_argument("-l", "--limit", metavar="PATTERN",
                   help="only these hosts or groups (Ansible host pattern; env AGENTFACTORY_LIMIT)")
    if forks:
        g.add_argument("-f", "--forks", type=_positive_int, metavar="N",
                       help="hosts worked on in parallel (env AGENTFACTORY_FORKS; default from ansible.cfg: 10)")
        g.add_argument("--mitogen", action=argparse.BooleanOptionalAction, default=None,
                       help="modules through Mitogen, one Python per host for the whole run (default: on, "
                            "but for status; --no-mitogen: one Python per task; env AGENTFACTORY_MITOGEN)")
    g.add_argument("-u", "--user", metavar="USER",
                   help="SSH user where the inventory sets no ansible_user (env AGENTFACTORY_USER)")
    g.add_argument("--private-key", metavar="FILE",
                   help="SSH private key where the inventory sets none (env AGENTFACTORY_PRIVATE_KEY)")
    g.add_argument("--vault-password-file", metavar="FILE",
                   help="file holding the vault password (env AGENTFACTORY_VAULT_PASSWORD_FILE; "
                        "default: the lab's own when the inventory is a lab's)")
    g.add_argument("--vault-id", action="append", metavar="LABEL@SOURCE",
                   help="a vault identity, LABEL@FILE or LABEL@prompt, repeatable (env AGENTFACTORY_VAULT_ID)")
    g.add_argument("--lab", metavar="NAME",
                   help="which lab's inventory is the default (env AGENTFACTORY_LAB; default 'lab')")


def _prompt_options(g) -> None:
    g.add_argument("--ask-vault-pass", action="store_true", help="ask for the vault password")
    g.add_argument("-K", "--ask-become-pass", action="store_true", help="ask for the become (sudo) password")
    g.add_argument("--ssh-common-args", metavar="ARGS",
                   help="more SSH options, e.g. --ssh-common-args='-o ProxyJump=bastion' (note the =)")


def _playbook_options(changes: bool = True, strict: bool = True) -> argparse.ArgumentParser:
    """Options shared by the playbook-running verbs. `changes`: the verb changes hosts, so
    --check and --diff mean something; `strict`: it reads agent secrets."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("playbook options")
    _inventory_options(g)
    if changes:
        g.add_argument("-C", "--check", action="store_true", help="dry run: report what would change, change nothing")
        g.add_argument("-D", "--diff", action="store_true", help="show the changes made (or, with --check, planned)")
        g.add_argument("--wait", nargs="?", type=_positive_int, const=WAIT_DEFAULT, metavar="SECONDS",
                       help="when another run holds this fleet, wait for it to end, at most SECONDS "
                            f"(default {WAIT_DEFAULT}) instead of failing at once (exit 75)")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="show Ansible's own output (-vvv for connection debugging)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout, whatever the exit code: "
                        "{verb, status, rc, error, problems, hosts, artifacts}")
    if strict:
        g.add_argument("--strict", action="store_true",
                       help="refuse agent secrets that are not vault-encrypted")
    a = p.add_argument_group("ansible-playbook options (passed through; anything after -- too)")
    a.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                   help="extra variables, KEY=VALUE, JSON/YAML or @FILE, repeatable "
                        "(the verb's own variables, e.g. agentfactory_action, cannot be overridden)")
    a.add_argument("-t", "--tags", action="append", default=[], metavar="TAGS",
                   help="only the tasks with these tags (comma-separated, repeatable)")
    a.add_argument("--skip-tags", action="append", default=[], metavar="TAGS",
                   help="skip the tasks with these tags (comma-separated, repeatable)")
    a.add_argument("--start-at-task", metavar="NAME", help="start the playbook at the task of this name")
    a.add_argument("-b", "--become", action="store_true",
                   help="become for every task (the roles become where they need it already)")
    a.add_argument("--become-user", metavar="USER", help="the user to become (default root)")
    _prompt_options(a)
    return p


class BadCommandLine(SystemExit):
    """argparse's error, once the usage and the message are printed: exit 4, and with --json a
    document that carries the message."""

    def __init__(self, prog: str, message: str):
        super().__init__(errors.EXIT_INVALID_INPUT)
        self.verb = "-".join(prog.split()[1:]) or None  # "agentfactory lab up" -> "lab-up"
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse's parser (sub-parsers are of its class too), but its errors keep their message."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")  # as argparse's own error()
        raise BadCommandLine(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agentfactory",
        description="Roll out and run fleets of AI agents on your own hosts, with Ansible.",
        epilog=errors.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"agentfactory {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    lab = verbs.add_parser("lab", help="local test hosts in containers (the built-in default inventory)",
                           description="Debian 12 hosts with systemd and sshd in containers, over SSH on "
                                       "127.0.0.1. The lab inventory is the default when no -i is given.")
    lab_verbs = lab.add_subparsers(dest="lab_verb", metavar="ACTION", required=True)
    for action, text in (("up", "create or start the hosts (harmless to repeat)"),
                         ("down", "remove the hosts, their network and the lab inventory"),
                         ("status", "list the hosts, their published ports and services"),
                         ("image", "start the Docker engine if needed and build the host image"),
                         ("url", "print the 127.0.0.1 URL of a service on the lab (e.g. gateway)"),
                         ("credentials", "print the lab's URLs, accounts, passwords and API keys, and its CA")):
        sp = lab_verbs.add_parser(action, help=text, description=text)
        sp.add_argument("--name", help="lab name, for several labs side by side "
                                       "(env AGENTFACTORY_LAB, or the config file's lab; default 'lab')")
        if action == "up":
            sp.add_argument("--hosts", type=_positive_int, default=3, metavar="N",
                            help="number of hosts (default 3)")
        if action in ("status", "credentials"):
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        if action == "url":
            sp.add_argument("service", choices=[s for s in PUBLISHED_PORTS if s != "ssh"])

    common = _playbook_options()
    for name, verb in VERBS.items():
        # Read-only verbs: nothing to dry-run or diff (check still validates secrets with --strict).
        options = common if verb.changes and verb.strict else _playbook_options(verb.changes, verb.strict)
        sp = verbs.add_parser(name, parents=[options], help=verb.help,
                              description=f"{verb.help} (playbooks/{verb.playbook}).",
                              epilog=errors.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        if verb.agents:
            sp.add_argument("-a", "--agent", action="append", metavar="NAME",
                            help="the agent (exactly one)" if verb.one_agent
                            else "only this agent (repeatable; default: every agent in the catalog)")
        if verb.arguments:
            verb.arguments(sp)

    image = verbs.add_parser("image", help="the reference agent's image: build it, push it to the registry",
                             description="Build the reference agent image locally (no registry needed) "
                                         "or push it to the on-prem registry over SSH.")
    image_verbs = image.add_subparsers(dest="image_verb", metavar="ACTION", required=True)
    text = "build the reference agent's image and its `docker save` archive on this machine (no registry needed)"
    image_verbs.add_parser("build", help=text, description=text)
    text = "put the reference agent's image into the registry hosts' registry, over SSH (playbooks/image.yml)"
    push = image_verbs.add_parser("push", parents=[common], help=text, description=text,
                                  epilog=errors.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    push.add_argument("--repository", default="agents/reference", help="repository in the registry")
    _remote_parsers(verbs)
    text = "print every setting of the CLI, its effective value and where it came from"
    config = verbs.add_parser("config", help=text, description=text + ". " + CONFIG_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _inventory_options(config.add_argument_group("settings"))
    config.add_argument("--json", action="store_true", help="one JSON document: {file, settings}")
    text = "print a shell completion script"
    completion = verbs.add_parser("completion", help=text,
                                  description=f"{text}: eval \"$(agentfactory completion bash)\" in ~/.bashrc, "
                                              "or agentfactory completion zsh > ~/.zfunc/_agentfactory")
    completion.add_argument("shell", choices=["bash", "zsh"])
    return parser


def _since(text: str):
    from agentfactory_cli.remote import parse_since  # paramiko is imported only when it connects

    return parse_since(text)


def _remote_parsers(verbs) -> None:
    """logs and exec: over SSH to the replicas' hosts, with the inventory's connection settings."""
    text = ("show a replica's recent output, or several merged in time order: docker logs for container "
            "agents, journalctl for systemd ones")
    logs = verbs.add_parser("logs", help="show or follow the output of an agent's replicas", description=text,
                            epilog=REMOTE_EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    logs.add_argument("target", metavar="AGENT[/REPLICA]", help="an agent, or one replica (reference/reference-0)")
    logs.add_argument("--host", action="append", metavar="HOST", help="only on this host (repeatable)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.add_argument("--since", metavar="T", type=_since,
                      help="lines since T: a duration (30s, 10m, 2h, 1d) or a time (2026-01-31T12:00:00Z)")
    logs.add_argument("-n", "--tail", type=_count, metavar="N",
                      help="the last N lines of each replica (default 100; with --since: all since T)")
    logs.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    text = ("run a command inside one replica of an agent, or in each with --all: docker exec for "
            "container agents; for systemd agents, as the unit's user with the unit's environment")
    exe = verbs.add_parser("exec", help="run a command inside an agent's replicas", description=text,
                           usage="agentfactory exec [options] AGENT[/REPLICA] -- COMMAND [ARG...]",
                           epilog=EXEC_EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    exe.add_argument("target", metavar="AGENT[/REPLICA]", help="an agent, or one replica (reference/reference-0)")
    exe.add_argument("--host", action="append", metavar="HOST", help="only on this host (repeatable)")
    exe.add_argument("--all", action="store_true", help="run in every replica that matches (asks first)")
    exe.add_argument("-y", "--yes", action="store_true", help="do not ask before running in several replicas")
    for sp in (logs, exe):
        g = sp.add_argument_group("inventory and connection")
        _inventory_options(g, forks=False)
        _prompt_options(g)


def _verb_of(args: argparse.Namespace) -> Verb:
    return IMAGE_PUSH if args.verb == "image" else VERBS[args.verb]


def _mitogen(wanted: bool | None, verb: Verb) -> bool:
    """Whether the run goes through Mitogen. Unset, it does where that pays and Mitogen is
    installed (a dependency of agentfactory); asked for explicitly but missing, it is an error."""
    installed = importlib.util.find_spec("ansible_mitogen") is not None
    if wanted is None:
        return installed and not verb.few_tasks
    if wanted and not installed:
        raise errors.InvalidInput("--mitogen (or the setting mitogen) needs Mitogen: "
                                  "pip install 'mitogen>=0.3.54,<0.4'")
    return wanted


def playbook_request(args: argparse.Namespace, log=None) -> PlaybookRequest:
    """Turn parsed options into a run request, checking every input before anything runs."""
    req, preflight = prepared_request(args, log=log)
    preflight()
    return req


def prepared_request(args: argparse.Namespace, log=None) -> tuple[PlaybookRequest, Callable[[], None]]:
    """The run request from the command line, and its preflight: the inventory and catalog
    loaded and checked (InvalidInput on anything wrong), and the request completed with what
    they hold (extra vars, targets, desired replicas, agents, hosts). A read-only verb's run may
    start before the preflight (runner.run_playbook's gate): its extra vars come from the command
    line alone, and the display reads the rest from the request when the run starts."""
    verb = _verb_of(args)
    config.apply(args)
    inventories = inv.resolve(args.inventory, lab_name=args.lab, log=log)
    vault = vault_options(args, inventories)
    passwords = dict(vault.answers)
    if args.ask_become_pass:
        passwords[BECOME_PROMPT] = ask_password("BECOME password: ")
    req = PlaybookRequest(
        verb=args.verb if args.verb != "image" else "image-push",
        playbook=verb.playbook_for(args),
        inventories=inventories,
        limit=args.limit,
        check=getattr(args, "check", False),
        diff=getattr(args, "diff", False),
        verbosity=args.verbose,
        forks=int(args.forks) if args.forks else None,
        vault_password_file=vault.password_file,
        extravars=verb.extravars(args, None) if verb.extravars and verb.early else {},
        wait=getattr(args, "wait", None),
        extra_vars=[_extra_vars(e) for e in args.extra_vars],
        tags=args.tags,
        skip_tags=args.skip_tags,
        start_at_task=args.start_at_task,
        user=args.user,
        private_key=existing_file(args.private_key, "--private-key"),
        become=args.become,
        become_user=args.become_user,
        ask_become_pass=args.ask_become_pass,
        vault_ids=vault.ids,
        ask_vault_pass=args.ask_vault_pass,
        mitogen=_mitogen(args.mitogen, verb),
        ssh_common_args=args.ssh_common_args,
        ansible_args=list(getattr(args, "ansible_args", None) or []),
        passwords=passwords,
        extract=dict(verb.extract),
    )

    def preflight() -> None:
        loaded = inv.load(inventories, limit=args.limit, vault_ids=vault.ids_for_load,
                          vault_passwords=vault.prompted, strict=getattr(args, "strict", False),
                          need_secrets=verb.secrets)
        unknown = sorted(set(getattr(args, "agent", None) or []) - set(loaded.agent_names))
        if unknown:
            known = ", ".join(loaded.agent_names) or "none"
            raise errors.InvalidInput(f"unknown agent(s): {', '.join(unknown)} (the catalog has: {known})")
        if verb.extravars and not verb.early:
            req.extravars = verb.extravars(args, loaded)
        req.targets = verb.targets(args, loaded) if verb.targets else []
        req.desired = verb.desired(args, loaded) if verb.desired else {}
        req.agents = list(loaded.agent_names)
        req.hosts = list(loaded.limited)
        req.fleet = list(loaded.groups.get("all") or loaded.limited)

    return req, preflight


# What ansible-playbook prints when it asks (ansible.cli.CLI: "BECOME password: ", or the method's
# name when agnostic_become_prompt is off; "Vault password: " and "Vault password (LABEL): ").
BECOME_PROMPT = r"^(BECOME|SUDO) password.*:\s*?$"
VAULT_PROMPT = r"^Vault password:\s*?$"


def vault_prompt(label: str) -> str:
    return rf"^Vault password \({re.escape(label)}\):\s*?$"


def ask_password(prompt: str) -> str:
    """A password typed by the operator, never echoed; nothing else ever shows it."""
    try:
        answer = getpass.getpass(prompt)
    except EOFError:
        raise errors.InvalidInput(f"no terminal to ask for the {prompt.split(':')[0]}") from None
    if not answer:
        raise errors.InvalidInput(f"empty {prompt.split(':')[0]}")
    return answer


@dataclass
class VaultOptions:
    password_file: Path | None = None  # --vault-password-file or the lab's
    ids: list[str] = field(default_factory=list)  # --vault-id, files made absolute, prompts kept
    ids_for_load: list[str] = field(default_factory=list)  # the vault password files, for our own loading
    prompted: dict[str, str] = field(default_factory=dict, repr=False)  # vault id label -> typed password
    answers: dict[str, str] = field(default_factory=dict, repr=False)  # ansible-playbook's prompt -> password


def vault_options(args: argparse.Namespace, inventories: list[Path]) -> VaultOptions:
    """The vault passwords of a run: files are checked, prompts are asked once, here, and
    ansible-playbook's same prompts are answered with them (ansible-runner's passwords)."""
    out = VaultOptions()
    if args.vault_password_file:
        out.password_file = existing_file(args.vault_password_file, "vault password file")
    elif not (args.vault_id or args.ask_vault_pass):
        out.password_file = lab_vault_password_file(inventories)
    if out.password_file:
        out.ids_for_load.append(str(out.password_file))
    if args.ask_vault_pass:
        out.prompted["default"] = out.answers[VAULT_PROMPT] = ask_password("Vault password: ")
    for slug in args.vault_id or []:
        label, _, source = slug.rpartition("@")
        if source == "prompt":
            label = label or "default"
            out.prompted[label] = out.answers[vault_prompt(label)] = ask_password(f"Vault password ({label}): ")
            out.ids.append(f"{label}@prompt")
            continue
        path = existing_file(source, f"--vault-id {slug}")
        slug = f"{label}@{path}" if label else str(path)
        out.ids.append(slug)
        out.ids_for_load.append(slug)
    return out


def existing_file(raw: str | None, what: str) -> Path | None:
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise errors.InvalidInput(f"{what} not found: {raw}")
    return path.resolve()


def _extra_vars(value: str) -> str:
    """-e as given, but @FILE made absolute and checked (ansible-playbook runs elsewhere)."""
    if value.startswith("@"):
        return f"@{existing_file(value[1:], '-e @FILE: file')}"
    return value


def lab_vault_password_file(inventories: list[Path]) -> Path | None:
    """The vault password file of the lab whose inventory is in use (one lab's, maybe beside
    other inventories), if it has one: the default when no --vault-password-file is given."""
    labs = {lab.name: lab for lab in map(lab_of_inventory, inventories) if lab is not None}
    if len(labs) != 1:
        return None
    password_file = next(iter(labs.values())).vault_password_file
    return password_file.resolve() if password_file.is_file() else None


def _shown_run(args: argparse.Namespace, verb: Verb, req: PlaybookRequest, gate=None) -> int:
    """The run under its verb's display; the exit code."""
    from agentfactory_cli.runner import run_playbook

    display = verb.display_for(args, req)
    try:
        result = run_playbook(req, display, gate=gate) if gate else run_playbook(req, display)
    finally:
        display.stop()
    display.finish(result)
    return display.exit_code(result)


def _run_playbook_verb(args: argparse.Namespace) -> int:
    from agentfactory_cli import lock

    verb = _verb_of(args)
    if verb.early:
        # Read-only: ansible-playbook starts while the inputs are checked, its first task held
        # until they pass (a few tenths of a second less per status).
        req, preflight = prepared_request(args, log=_log)
        return _shown_run(args, verb, req, gate=preflight)
    req = playbook_request(args, log=_log)
    if verb.ask:
        verb.ask(args, req)

    # The fleet's lock from the listing of what a deploy would remove to the end of the deploy
    # (run_playbook takes it again, counted): no other run changes the fleet in between.
    held = None
    if req.verb not in lock.READ_ONLY_VERBS:
        held = lock.acquire_fleet(req.fleet or req.hosts, lock.holder_info(req.verb, Path("(not yet created)")),
                                  wait=req.wait, log=_log)
    try:
        if verb.confirm:
            verb.confirm(args, req, _err)
        if verb.prepare:
            verb.prepare(args, req.inventories, req.check)
        return _shown_run(args, verb, req)
    finally:
        if held:
            held.release()


def _log(message: str) -> None:
    from agentfactory_cli.display import plain

    _err.print(plain(message, "dim"))


def _image(args: argparse.Namespace) -> int:
    if args.image_verb == "build":
        from agentfactory_cli.lab.agentimage import ensure_agent_archive

        ref, archive = ensure_agent_archive(log=_log)
        print(f"{ref}\t{archive}")
        return errors.EXIT_OK
    return _run_playbook_verb(args)


def _lab(args: argparse.Namespace) -> int:
    lab = Lab(args.name or config.resolve({})[0]["lab"].value)
    log = _log
    if args.lab_verb == "image":
        from agentfactory_cli.lab import engine, hostimage

        engine.ensure_engine(log=log)
        if not hostimage.ensure_image(log=log):
            log(f"Host image {hostimage.IMAGE} is up to date.")
    elif args.lab_verb == "url":
        urls = [url for h in lab.hosts() if (url := lab.url(args.service, h))]
        if not urls:
            raise errors.AgentFactoryError(f"no lab host publishes {args.service} (is the lab up?)")
        print(urls[0])
    elif args.lab_verb == "credentials":
        _print_credentials(lab, json_mode=args.json)
    elif args.lab_verb == "up":
        lab.up(args.hosts, log=log)
        _print_lab(lab, json_mode=False)
        _err.print(f"Inventory: {os.path.relpath(lab.inventory_path)}")
    elif args.lab_verb == "down":
        removed = lab.down(log=log)
        _err.print(f"Lab {lab.name!r}: removed {removed} host(s).")
    else:
        _print_lab(lab, json_mode=args.json)
    return errors.EXIT_OK


def _print_lab(lab: Lab, json_mode: bool) -> None:
    from agentfactory_cli.lab.engine import engine_running

    hosts = lab.hosts() if engine_running() else []
    services = {h.name: lab.services(h) for h in hosts}
    if json_mode:
        doc = {"lab": lab.name, "inventory": str(lab.inventory_path) if lab.inventory_path.exists() else None,
               "hosts": [{"name": h.name, "state": h.state, "services": services[h.name],
                          "ports": {str(k): v for k, v in h.ports.items()}} for h in hosts]}
        jsondoc.write(doc)
        return
    if not hosts:
        print(f"Lab {lab.name!r} is down (no hosts). Start it with: agentfactory lab up")
        return
    table = Table(title=f"Lab {lab.name!r}", title_justify="left")
    table.add_column("host")
    table.add_column("state")
    table.add_column("services")
    table.add_column("ssh", justify="right")
    for h in hosts:
        running = [name for name, state in services[h.name].items() if state == "active"]
        others = [f"{name}: {state}" for name, state in services[h.name].items()
                  if state not in ("active", "inactive", "unknown")]
        table.add_row(h.name, h.state, ", ".join(running + others) or "[dim]none yet[/]",
                      f"127.0.0.1:{h.ssh_port}" if h.ssh_port else "-")
    Console(highlight=False).print(table)
    for h in hosts:
        urls = [f"{name} {lab.url(name, h)}" for name, port in PUBLISHED_PORTS.items()
                if name != "ssh" and services[h.name].get(name) == "active" and port in h.ports]
        if urls:
            Console(highlight=False, soft_wrap=True).print(f"{h.name}: " + ", ".join(urls))


def _print_credentials(lab: Lab, json_mode: bool) -> None:
    """The lab's accounts with the first URL of each service (they are the same on every host)."""
    hosts = lab.hosts()
    rows = []
    for cred in lab.credentials():
        url = next((u for h in hosts if (u := lab.url(cred["service"], h))), "")
        rows.append({**cred, "url": url})
    if json_mode:
        jsondoc.write({"lab": lab.name, "ca": str(lab.ca_file), "accounts": rows})
        return
    # Plain columns, never truncated: these are values to copy.
    print(f"Lab {lab.name!r}: accounts (verify TLS with the CA {lab.ca_file})")
    header = {"service": "service", "url": "url", "user": "user", "secret": "password or API key"}
    widths = {k: max(len(r[k] or "-") for r in [header, *rows]) for k in ("service", "url", "user")}
    for row in [header, *rows]:
        print("  ".join((row[k] or "-").ljust(widths[k]) for k in ("service", "url", "user")) + "  " + row["secret"])
    print(f"Example: curl --cacert {lab.ca_file} -H 'Authorization: Bearer <API key>' <gateway url>/")


def _verb_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser of the verb given, so that its errors show its own usage."""
    for dest in ("verb", "lab_verb", "image_verb"):
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or getattr(args, dest, None) not in sub.choices:
            break
        parser = sub.choices[getattr(args, dest)]
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; what follows the first `--` is exec's command or, for a playbook
    verb, ansible-playbook's own arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    head, tail = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, None)
    parser = build_parser()
    args, unknown = parser.parse_known_args(head)
    verb_parser = _verb_parser(parser, args)
    if unknown:
        verb_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.verb == "exec":
        if not tail:
            verb_parser.error("the command to run goes after --: agentfactory exec AGENT -- COMMAND [ARG...]")
        args.command = tail
    elif tail is not None:
        if args.verb not in VERBS and getattr(args, "image_verb", None) != "push":
            verb_parser.error("-- passes arguments to ansible-playbook: only playbook verbs take it")
        args.ansible_args = tail
    return args


def _command(args: argparse.Namespace) -> str:
    """The command's name in --json documents: the verb, with its action (lab-status, image-push)."""
    action = getattr(args, "lab_verb", None) or getattr(args, "image_verb", None)
    return f"{args.verb}-{action}" if action else args.verb


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Under --json every exit, a bad command line included, prints one document (jsondoc.py):
    # this one when the command printed none.
    json_mode = "--json" in (argv[: argv.index("--")] if "--" in argv else argv)
    already = jsondoc.printed

    def failure(verb: str | None, rc: int, error: str, problems: list[str] | None = None,
                status: str = jsondoc.NOT_RUN) -> None:
        if json_mode and jsondoc.printed == already:
            jsondoc.write(jsondoc.failure_document(verb, rc, error, problems, status=status))

    try:
        args = parse_args(argv)
    except BadCommandLine as exc:  # bad options are invalid input too
        failure(exc.verb, errors.EXIT_INVALID_INPUT, exc.message)
        return errors.EXIT_INVALID_INPUT
    except SystemExit as exc:  # --help, --version
        return errors.EXIT_INVALID_INPUT if exc.code else errors.EXIT_OK
    json_mode = getattr(args, "json", False)
    try:
        if args.verb == "lab":
            return _lab(args)
        if args.verb == "image":
            return _image(args)
        if args.verb == "config":
            return _config(args)
        if args.verb == "completion":
            import shtab

            print(shtab.complete(build_parser(), shell=args.shell))
            return errors.EXIT_OK
        if args.verb in ("logs", "exec"):
            return _remote(args)
        return _run_playbook_verb(args)
    except errors.AgentFactoryError as exc:
        from agentfactory_cli.display import plain

        # The message quotes inventories and catalogs: text, never markup.
        _err.print(Text.assemble(("error:", "red"), " ", plain(exc)))
        failure(_command(args), exc.exit_code, str(exc), exc.problems)
        return exc.exit_code
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]")
        failure(_command(args), errors.EXIT_INTERRUPTED, "interrupted")
        return errors.EXIT_INTERRUPTED
    except Exception as exc:  # a bug: the traceback still goes to stderr
        failure(_command(args), errors.EXIT_ERROR, f"internal error: {type(exc).__name__}: {exc}", status="error")
        raise


def _config(args: argparse.Namespace) -> int:
    present = {name: getattr(args, name) for name in config.SETTINGS if hasattr(args, name)}
    values, path = config.resolve(present)
    if args.json:
        doc = {"file": str(path) if path else None,
               "settings": {name: {"value": v.value, "origin": v.origin, "where": v.where}
                            for name, v in values.items()}}
        jsondoc.write(doc)
        return errors.EXIT_OK
    searched = [os.environ.get(config.CONFIG_ENV) or "$" + config.CONFIG_ENV, *map(str, config.search_paths())]
    print(f"Config file: {path}" if path else f"Config file: none (looked for {', '.join(searched)})")
    width = max(map(len, config.SETTINGS))
    for name, v in values.items():
        setting = config.SETTINGS[name]
        if v.value is None:
            shown = f"- ({setting.default_note})" if setting.default_note else "-"
        else:
            shown = ", ".join(map(str, v.value)) if setting.is_list else str(v.value)
        origin = f"{v.origin}: {v.where}" if v.where else v.origin
        print(f"{name.ljust(width)} = {shown}  [{origin}]")
    return errors.EXIT_OK


def _remote(args: argparse.Namespace) -> int:
    from agentfactory_cli import remote

    config.apply(args)
    inventories = inv.resolve(args.inventory, lab_name=args.lab, log=_log)
    vault = vault_options(args, inventories)
    loaded = inv.load(inventories, limit=args.limit, vault_ids=vault.ids_for_load,
                      vault_passwords=vault.prompted, connections=True)
    become_password = ask_password("BECOME password: ") if args.ask_become_pass else None
    if args.verb == "logs":
        return remote.logs(args, loaded, become_password=become_password)
    return remote.exec_(args, loaded, become_password=become_password)


if __name__ == "__main__":
    sys.exit(main())
