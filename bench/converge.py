"""How fast a no-change run converges: the site under stock Ansible settings, under the project's
ansible.cfg and through the CLI; `status` against `ansible -m ping`; the cost per host-task as
the lab grows. Prints medians and the ratios the project aims for (issue 12). The project's
settings run modules through Mitogen (ansible.cfg's strategy); the site is also timed without it.

    .venv/bin/python bench/converge.py                   # 3 hosts, 3 runs of each, then 6 hosts
    .venv/bin/python bench/converge.py --runs 1 --scale-hosts 0 --keep

It starts a lab of its own ("bench": containers af-bench-*, loopback ports only), rolls out the
demo once, then alternates the variants so that a slow moment of the machine hits them alike.
Nothing here is a test: it measures and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAB = "bench"
# Stock Ansible: only what it takes to find the project's roles, plugins and collections.
STOCK_CFG = """[defaults]
roles_path = {root}/roles
library = {root}/plugins/modules
module_utils = {root}/plugins/module_utils
collections_path = {root}/.ansible/collections
"""


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command to the end, its output also to the log; the wall time in seconds and stdout."""
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    took = time.monotonic() - start
    with open(LOG, "a") as log:
        log.write(f"\n$ {' '.join(cmd)}  ({took:.1f} s, exit {res.returncode})\n{res.stdout}{res.stderr}")
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {res.returncode} (see {LOG})")
    return took, res.stdout


def cli(*args: str) -> float:
    return run([str(BIN / "agentfactory"), *args], env={"AGENTFACTORY_LAB": LAB})[0]


def roll_out(hosts: int) -> None:
    """The demo on a lab of `hosts` hosts: up, every playbook once, the reference agent."""
    cli("lab", "up", "--hosts", str(hosts))
    for verb in ("bootstrap", "monitoring", "registry"):
        cli(verb)
    cli("image", "push")
    cli("deploy", "--yes")
    cli("gateway")


def lab_files() -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from agentfactory_cli.lab import Lab

    lab = Lab(LAB)
    return lab.inventory_path, lab.vault_password_file


def playbook(inventory: Path, vault: Path) -> list[str]:
    return [str(BIN / "ansible-playbook"), "-i", str(inventory), "--vault-password-file", str(vault),
            str(ROOT / "playbooks" / "site.yml")]


def task_results(document: str) -> int:
    """Host-task results of a run, from the CLI's --json document (its recap's counts)."""
    hosts = json.loads(document)["hosts"]
    return sum(counts.get(k, 0) for counts in hosts.values() for k in ("ok", "failed", "skipped"))


def median_runs(variants: dict[str, tuple[list[str], dict[str, str]]], runs: int,
                outputs: dict[str, str]) -> dict[str, float]:
    """Each variant `runs` times, alternating; the median wall time of each (last stdout in `outputs`)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(runs):
        for name, (cmd, env) in variants.items():
            took, outputs[name] = run(cmd, env=env)
            times[name].append(took)
            print(f"  run {i + 1}/{runs} {name:<34} {took:7.1f} s", flush=True)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(hosts: int, runs: int, stock_cfg: Path) -> dict[str, float]:
    print(f"== {hosts} hosts: rolling out the demo once", flush=True)
    roll_out(hosts)
    inventory, vault = lab_files()
    project_cfg = ROOT / "ansible.cfg"
    agentfactory = str(BIN / "agentfactory")
    lab_env = {"AGENTFACTORY_LAB": LAB}
    outputs: dict[str, str] = {}
    variants = {
        "site, stock settings": (playbook(inventory, vault), {"ANSIBLE_CONFIG": str(stock_cfg)}),
        "site, the project's ansible.cfg": (playbook(inventory, vault), {"ANSIBLE_CONFIG": str(project_cfg)}),
        "site, agentfactory site": ([agentfactory, "site", "--yes", "--json"], lab_env),
    }
    # The same cfg with one Python per task on the host (Ansible's own way; Ctrl-C still stops between tasks).
    plain_env = {"ANSIBLE_CONFIG": str(project_cfg), "ANSIBLE_STRATEGY": "agentfactory.fleet.stoppable"}
    variants[WITHOUT_MITOGEN] = (playbook(inventory, vault), plain_env)
    site = median_runs(variants, runs, outputs)
    # One task per host: Ansible's own linear strategy is the faster ping (Mitogen's start would
    # cost more than the task), and status runs the same way (verbs.py: few_tasks).
    status = median_runs({
        "agentfactory status": ([agentfactory, "status", "--json"], lab_env),
        "ansible all -m ping": ([str(BIN / "ansible"), "all", "-i", str(inventory), "--vault-password-file",
                                 str(vault), "-m", "ansible.builtin.ping"],
                                {"ANSIBLE_CONFIG": str(project_cfg), "ANSIBLE_STRATEGY": "ansible.builtin.linear"}),
    }, runs, outputs)
    results = task_results(outputs["site, agentfactory site"])
    project = site["site, the project's ansible.cfg"]
    return {**site, **status, "host-task results": results, "per host-task (ms)": 1000 * project / results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=3, help="lab hosts of the main measurement (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant, medians quoted (default 3)")
    parser.add_argument("--scale-hosts", type=int, default=6,
                        help="a second lab size for the cost per host-task (0: skip; default 6, at most 10)")
    parser.add_argument("--keep", action="store_true", help="leave the bench lab up at the end")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 10 or not 0 <= args.scale_hosts <= 10 or args.runs < 1:
        parser.error("hosts: 1 to 10; scale-hosts: 0 to 10; runs: 1 or more")
    print(f"log of every command: {LOG}")
    with tempfile.TemporaryDirectory() as tmp:
        stock_cfg = Path(tmp) / "stock.cfg"
        stock_cfg.write_text(STOCK_CFG.format(root=ROOT))
        try:
            main_figures = measure(args.hosts, args.runs, stock_cfg)
            scaled = None
            if args.scale_hosts and args.scale_hosts != args.hosts:
                cli("lab", "down")
                scaled = measure(args.scale_hosts, 1, stock_cfg)
        finally:
            if not args.keep:
                cli("lab", "down")
    report(args.hosts, main_figures, args.scale_hosts, scaled)
    return 0


def report(hosts: int, figures: dict[str, float], scale_hosts: int, scaled: dict[str, float] | None) -> None:
    stock = figures["site, stock settings"]
    project = figures["site, the project's ansible.cfg"]
    via_cli = figures["site, agentfactory site"]
    status, ping = figures["agentfactory status"], figures["ansible all -m ping"]
    print(f"\nNo-change site on {hosts} hosts (medians):")
    for name in ("site, stock settings", "site, the project's ansible.cfg", "site, agentfactory site", WITHOUT_MITOGEN,
                 "agentfactory status", "ansible all -m ping"):
        if name not in figures:
            continue
        print(f"  {name:<34} {figures[name]:7.1f} s")
    print(f"  {'host-task results':<34} {figures['host-task results']:7.0f}")
    ratios = {
        "project settings / stock (goal <= 0.33)": project / stock,
        "CLI / ansible-playbook, same cfg (goal <= 1.05)": via_cli / project,
        "status / ping (goal <= 1.5)": status / ping,
    }
    ratios["project settings without Mitogen / stock"] = figures[WITHOUT_MITOGEN] / stock
    if scaled:
        ratios[f"per host-task at {scale_hosts} / at {hosts} hosts (goal <= 1.15)"] = (
            scaled["per host-task (ms)"] / figures["per host-task (ms)"])
        print(f"  per host-task: {figures['per host-task (ms)']:.0f} ms at {hosts} hosts, "
              f"{scaled['per host-task (ms)']:.0f} ms at {scale_hosts}")
    print("Ratios:")
    for name, value in ratios.items():
        print(f"  {name:<52} {value:5.2f}")
    print(json.dumps({"hosts": hosts, "figures": figures, "scaled": scaled, "ratios": ratios}))


LOG = Path(tempfile.gettempdir()) / "agentfactory-bench.log"
WITHOUT_MITOGEN = "site, project cfg, no Mitogen"

if __name__ == "__main__":
    sys.exit(main())
