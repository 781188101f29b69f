"""`agentfactory`: parse the command line, run one playbook or lab action, exit with a clear code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentfactory_cli import __version__, errors
from agentfactory_cli import inventory as inv
from agentfactory_cli.lab import DEFAULT_LAB, PUBLISHED_PORTS, Lab, lab_of_inventory
from agentfactory_cli.runner import PlaybookRequest
from agentfactory_cli.verbs import VERBS, Verb, _image_push

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _env(name: str, default=None):
    return os.environ.get(f"AGENTFACTORY_{name}", default)


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_count = _int_at_least(0)


def _batch(text: str) -> int | str:
    """A batch size: a whole number >= 1, or a percentage 1%-100% (as Ansible's `serial`)."""
    if text.endswith("%") and text[:-1].isdigit() and 1 <= int(text[:-1]) <= 100:
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a number >= 1 or a percentage like 25%, got {text!r}")


def _playbook_options() -> argparse.ArgumentParser:
    """Options shared by every playbook-running verb; each declared once, with its env variable."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("playbook options")
    g.add_argument("-i", "--inventory", action="append", metavar="PATH",
                   help="inventory file or directory, repeatable (env AGENTFACTORY_INVENTORY; "
                        "default: the lab's inventory when the lab is up)")
    g.add_argument("-l", "--limit", default=_env("LIMIT"), metavar="PATTERN",
                   help="only these hosts or groups (Ansible host pattern; env AGENTFACTORY_LIMIT)")
    g.add_argument("-C", "--check", action="store_true", help="dry run: report what would change, change nothing")
    g.add_argument("-D", "--diff", action="store_true", help="show the changes made (or, with --check, planned)")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="show Ansible's own output (-vvv for connection debugging)")
    g.add_argument("-f", "--forks", type=_positive_int, default=_env("FORKS"), metavar="N",
                   help="hosts worked on in parallel (env AGENTFACTORY_FORKS; default from ansible.cfg: 10)")
    g.add_argument("--vault-password-file", default=_env("VAULT_PASSWORD_FILE"), metavar="FILE",
                   help="file holding the vault password (env AGENTFACTORY_VAULT_PASSWORD_FILE; "
                        "default: the lab's own when the inventory is a lab's)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout: {status, rc, hosts, artifacts}")
    g.add_argument("--strict", action="store_true",
                   help="refuse agent secrets that are not vault-encrypted")
    g.add_argument("--lab", default=_env("LAB", DEFAULT_LAB), metavar="NAME",
                   help="which lab's inventory is the default (env AGENTFACTORY_LAB; default 'lab')")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        sp.add_argument("--name", default=_env("LAB", DEFAULT_LAB),
                        help="lab name, for several labs side by side (env AGENTFACTORY_LAB)")
        if action == "up":
            sp.add_argument("--hosts", type=_positive_int, default=3, metavar="N",
                            help="number of hosts (default 3)")
        if action in ("status", "credentials"):
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        if action == "url":
            sp.add_argument("service", choices=[s for s in PUBLISHED_PORTS if s != "ssh"])

    common = _playbook_options()
    for name, verb in VERBS.items():
        sp = verbs.add_parser(name, parents=[common], help=verb.help,
                              description=f"{verb.help} (playbooks/{verb.playbook}).",
                              epilog=errors.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        if verb.agents:
            sp.add_argument("-a", "--agent", action="append", metavar="NAME",
                            help="only this agent (repeatable; default: every agent in the catalog)")
        if name == "scale":
            sp.add_argument("--replicas", type=_count, metavar="N", help="replicas per host (0 or more)")
        if name == "update":
            sp.add_argument("--image", metavar="TAG", help="new image tag (or a whole reference) for this run")
            sp.add_argument("--batch", type=_batch, metavar="N|N%",
                            help="hosts per batch (default: the agent's update.batch)")
        if name == "destroy":
            sp.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    image = verbs.add_parser("image", help="the reference agent's image: build it, push it to the registry",
                             description="Build the reference agent image locally (no registry needed) "
                                         "or push it to the on-prem registry over SSH.")
    image_verbs = image.add_subparsers(dest="image_verb", metavar="ACTION", required=True)
    image_verbs.add_parser("build", help="build the image and its `docker save` archive")
    push = image_verbs.add_parser("push", parents=[common], help="put the image into the registry hosts' registry",
                                  epilog=errors.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    push.add_argument("--repository", default="agents/reference", help="repository in the registry")
    return parser


def playbook_request(args: argparse.Namespace, log=None) -> PlaybookRequest:
    """Turn parsed options into a run request, checking every input before anything runs."""
    verb: Verb = _image_push_verb() if args.verb == "image" else VERBS[args.verb]
    raw_inventories = args.inventory or ([_env("INVENTORY")] if _env("INVENTORY") else None)
    inventories = inv.resolve(raw_inventories, lab_name=args.lab, log=log)
    vault_file = None
    if args.vault_password_file:
        vault_file = Path(args.vault_password_file).expanduser()
        if not vault_file.is_file():
            raise errors.InvalidInput(f"vault password file not found: {args.vault_password_file}")
        vault_file = vault_file.resolve()
    else:
        vault_file = lab_vault_password_file(inventories)
    loaded = inv.load(inventories, limit=args.limit, vault_password_file=vault_file, strict=args.strict)
    unknown = sorted(set(getattr(args, "agent", None) or []) - set(loaded.agent_names))
    if unknown:
        known = ", ".join(loaded.agent_names) or "none"
        raise errors.InvalidInput(f"unknown agent(s): {', '.join(unknown)} (the catalog has: {known})")
    extravars = verb.extravars(args, loaded) if verb.extravars else {}
    targets = []
    if args.verb == "update":
        from agentfactory_cli.catalog import resolve_hosts

        targets, _ = resolve_hosts(loaded.agents[args.agent[0]]["hosts"], loaded.groups)
        if args.limit:
            targets = [h for h in targets if h in loaded.limited]
    return PlaybookRequest(
        verb=args.verb if args.verb != "image" else "image-push",
        playbook=verb.playbook,
        inventories=inventories,
        limit=args.limit,
        check=args.check,
        diff=args.diff,
        verbosity=args.verbose,
        forks=int(args.forks) if args.forks else None,
        vault_password_file=vault_file,
        extravars=extravars,
        targets=targets,
    )


def lab_vault_password_file(inventories: list[Path]) -> Path | None:
    """The vault password file of the lab whose inventory is in use (one lab's, maybe beside
    other inventories), if it has one: the default when no --vault-password-file is given."""
    labs = {lab.name: lab for lab in map(lab_of_inventory, inventories) if lab is not None}
    if len(labs) != 1:
        return None
    password_file = next(iter(labs.values())).vault_password_file
    return password_file.resolve() if password_file.is_file() else None


def _image_push_verb() -> Verb:
    return Verb("image.yml", "push the reference agent image", _image_push)


def _confirm_destroy(args: argparse.Namespace, req: PlaybookRequest) -> None:
    if args.yes or args.check:
        return
    what = ", ".join(args.agent) if args.agent else "EVERY agent in the catalog"
    where = f" on {args.limit}" if args.limit else ""
    if not sys.stdin.isatty():
        raise errors.InvalidInput(f"destroy would remove {what}{where}: pass --yes to confirm (no terminal to ask)")
    answer = input(f"Remove {what}{where}: containers, units, config and secrets? Type 'yes' to go on: ")
    if answer.strip().lower() != "yes":
        raise errors.AgentFactoryError("destroy cancelled; nothing was changed")


def _run_playbook_verb(args: argparse.Namespace) -> int:
    from agentfactory_cli.display import RunDisplay
    from agentfactory_cli.runner import run_playbook

    req = playbook_request(args, log=lambda m: _err.print(f"[dim]{m}[/]"))
    if args.verb == "destroy":
        _confirm_destroy(args, req)
    display = RunDisplay(json_mode=args.json, verbosity=args.verbose, show_diff=args.diff)
    if args.verb == "status":
        from agentfactory_cli.status import StatusDisplay

        display = StatusDisplay(json_mode=args.json, verbosity=args.verbose)
    elif args.verb == "check":
        from agentfactory_cli.status import CheckDisplay

        display = CheckDisplay(json_mode=args.json, verbosity=args.verbose)
    elif args.verb == "update":
        from agentfactory_cli.status import UpdateDisplay

        agent = req.extravars["agentfactory_update_agent"]
        display = UpdateDisplay(agent=agent, placed=req.targets, json_mode=args.json,
                                verbosity=args.verbose, show_diff=args.diff)
    try:
        result = run_playbook(req, display)
    finally:
        display.stop()
    display.finish(result)
    return display.exit_code(result)


def _log(message: str) -> None:
    _err.print(f"[dim]{message}[/]")


def _image(args: argparse.Namespace) -> int:
    if args.image_verb == "build":
        from agentfactory_cli.agentimage import ensure_agent_archive

        ref, archive = ensure_agent_archive(log=_log)
        print(f"{ref}\t{archive}")
        return errors.EXIT_OK
    return _run_playbook_verb(args)


def _lab(args: argparse.Namespace) -> int:
    lab = Lab(args.name)
    log = _log
    if args.lab_verb == "image":
        from agentfactory_cli import engine, hostimage

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
    from agentfactory_cli.engine import engine_running

    hosts = lab.hosts() if engine_running() else []
    services = {h.name: lab.services(h) for h in hosts}
    if json_mode:
        doc = {"lab": lab.name, "inventory": str(lab.inventory_path) if lab.inventory_path.exists() else None,
               "hosts": [{"name": h.name, "state": h.state, "services": services[h.name],
                          "ports": {str(k): v for k, v in h.ports.items()}} for h in hosts]}
        print(json.dumps(doc, indent=2))
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
        print(json.dumps({"lab": lab.name, "ca": str(lab.ca_file), "accounts": rows}, indent=2))
        return
    # Plain columns, never truncated: these are values to copy.
    print(f"Lab {lab.name!r}: accounts (verify TLS with the CA {lab.ca_file})")
    header = {"service": "service", "url": "url", "user": "user", "secret": "password or API key"}
    widths = {k: max(len(r[k] or "-") for r in [header, *rows]) for k in ("service", "url", "user")}
    for row in [header, *rows]:
        print("  ".join((row[k] or "-").ljust(widths[k]) for k in ("service", "url", "user")) + "  " + row["secret"])
    print(f"Example: curl --cacert {lab.ca_file} -H 'Authorization: Bearer <API key>' <gateway url>/")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: bad options are invalid input too
        return errors.EXIT_INVALID_INPUT if exc.code else errors.EXIT_OK
    try:
        if args.verb == "lab":
            return _lab(args)
        if args.verb == "image":
            return _image(args)
        return _run_playbook_verb(args)
    except errors.AgentFactoryError as exc:
        _err.print(f"[red]error:[/] {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]")
        return errors.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
