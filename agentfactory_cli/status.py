"""Displays for the two reporting verbs: `status` (fleet health) and `check` (prerequisites).

Both run a read-only playbook and read what its modules returned from the run's result: the
extractors here pick it out of the events (the verbs register them, runner.RunEvents keeps it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.table import Table
from rich.text import Text

from agentfactory_cli import errors
from agentfactory_cli.display import RunDisplay, clean, plain
from agentfactory_cli.runner import RunResult

# The names of the extracts (RunResult.extracts) and what each keeps per host.
HEALTH = "agent_health"
PRECHECK = "precheck"
UPDATE = "update_outcome"


def health_report(data: dict[str, Any]) -> dict[str, Any] | None:
    """agent_health's result."""
    return (data.get("res") or {}) if str(data.get("task_action", "")).endswith("agent_health") else None


def precheck_facts(data: dict[str, Any]) -> dict[str, Any] | None:
    """What playbooks/prechecks.yml found on the host (the agentfactory_precheck fact)."""
    return ((data.get("res") or {}).get("ansible_facts") or {}).get("agentfactory_precheck") or None


def update_outcome(data: dict[str, Any]) -> str | None:
    """How the rolling update ended on the host (the agentfactory_update_outcome fact)."""
    return ((data.get("res") or {}).get("ansible_facts") or {}).get("agentfactory_update_outcome")


def _memory(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def fleet_summary(per_host: dict[str, dict[str, Any]], unknown: dict[str, dict[str, int]] | None = None,
                  ) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Fold agent_health results from every host into per-agent totals and one replica list.

    `unknown`: the replicas the catalog places on the hosts that did not report (host -> agent
    -> count): desired, and neither running nor healthy as far as anyone knows.
    """
    agents: dict[str, dict[str, int]] = defaultdict(
        lambda: {"desired": 0, "running": 0, "healthy": 0, "unknown": 0, "hosts": 0})
    replicas = []
    for host in sorted(per_host):
        res = per_host[host]
        for name, summary in (res.get("agents") or {}).items():
            total = agents[name]
            for key in ("desired", "running", "healthy"):
                total[key] += int(summary.get(key) or 0)
            total["hosts"] += 1
        replicas += [{"host": host, **r} for r in res.get("replicas") or []]
    for placed in (unknown or {}).values():
        for name, count in placed.items():
            agents[name]["desired"] += count
            agents[name]["unknown"] += count
    return dict(agents), replicas


class StatusDisplay(RunDisplay):
    """`agentfactory status`: one table of every replica, a line per agent, health as exit code.

    `desired`: the replicas the catalog places on each host of the run (PlaybookRequest.desired);
    those of a host that sends no report (unreachable, failed, never reached) count as unknown.
    """

    def __init__(self, desired: dict[str, dict[str, int]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.desired = dict(desired or {})

    def start(self, req, progress=None) -> None:
        self.desired = dict(req.desired)  # the preflight's, done by now (runner.run_playbook's gate)
        super().start(req, progress)

    def unreported(self, result: RunResult) -> dict[str, str]:
        """The hosts with replicas placed that sent no health report, and why."""
        out = {}
        for host in sorted(set(self.desired) - set(result.extracts.get(HEALTH, {}))):
            counts = result.hosts.get(host) or {}
            if counts.get("unreachable"):
                out[host] = "unreachable"
            elif counts.get("failed"):
                out[host] = "failed"
            elif not any(counts.values()):
                out[host] = "not reached"
            # Else the host ran the play and skipped the report: by its own view of the catalog
            # (host_vars) nothing is placed there, and that view is the one it runs.
        return out

    def summary(self, result: RunResult) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]], dict[str, str]]:
        unreported = self.unreported(result)
        agents, replicas = fleet_summary(result.extracts.get(HEALTH, {}), {h: self.desired[h] for h in unreported})
        return agents, replicas, unreported

    def healthy(self, result: RunResult) -> bool:
        agents, _, _ = self.summary(result)
        return all(a["healthy"] == a["desired"] for a in agents.values())

    def exit_code(self, result: RunResult) -> int:
        if result.exit_code != errors.EXIT_OK:
            return result.exit_code
        return errors.EXIT_OK if self.healthy(result) else errors.EXIT_HOST_FAILED

    def document(self, result: RunResult) -> dict[str, Any]:
        agents, replicas, unreported = self.summary(result)
        return {**super().document(result), "healthy": self.healthy(result), "agents": agents,
                "replicas": replicas, "unknown_hosts": unreported}

    def report(self, result: RunResult) -> None:
        agents, replicas, unreported = self.summary(result)
        if replicas:
            table = Table(title="Fleet status", title_justify="left")
            for col in ("agent", "host", "replica", "state", "health", "latency", "restarts", "cpu", "memory"):
                table.add_column(col, justify="right" if col in ("latency", "restarts", "cpu", "memory") else "left")
            for r in replicas:
                good = r.get("health") == "healthy"
                health = plain(r.get("health") or "-", "green" if good else "red")
                if not good and r.get("error"):
                    health.append(f" ({clean(r['error'])})", style="dim")
                latency = f"{r['latency_ms']:.0f} ms" if isinstance(r.get("latency_ms"), int | float) else "-"
                cpu = f"{r['cpu_percent']:.1f}%" if isinstance(r.get("cpu_percent"), int | float) else "-"
                table.add_row(plain(r.get("agent", "?")), plain(r["host"]), plain(r.get("name", "?")),
                              plain(r.get("state") or "-"), health, latency,
                              plain(r.get("restarts") if r.get("restarts") is not None else "-"), cpu,
                              _memory(r.get("memory_bytes")))
            self.out.print(table)
        elif not result.failures:
            self.out.print("No agent of the catalog is placed on these hosts.")
        for name, a in sorted(agents.items()):
            style = "green" if a["healthy"] == a["desired"] else "red"
            line = plain(f"{name}: {a['healthy']}/{a['desired']} healthy", style)
            if a["unknown"]:
                why: dict[str, list[str]] = defaultdict(list)
                for host, reason in unreported.items():
                    if self.desired[host].get(name):
                        why[reason].append(host)
                line.append_text(plain(f", {a['unknown']} unknown: "
                                       + "; ".join(f"{_few(hosts)} {reason}" for reason, hosts in why.items()),
                                       style))
                if a["hosts"]:
                    line.append(f" ({a['running']} running on the {a['hosts']} host(s) that answered)")
            else:
                line.append(f" ({a['running']} running on {a['hosts']} host(s))")
            self.out.print(line)
        if result.exit_code != errors.EXIT_OK:
            self.out.print(f"[red]Status incomplete (exit {result.exit_code}): see the messages above.[/]")
        self.out.print(Text.assemble("Artifacts: ", plain(result.artifacts)))


def _few(hosts: list[str], shown: int = 5) -> str:
    more = f" and {len(hosts) - shown} more" if len(hosts) > shown else ""
    return ", ".join(hosts[:shown]) + more


class CheckDisplay(RunDisplay):
    """`agentfactory check`: a verdict per host from playbooks/prechecks.yml, in the order of
    what it rests on: the input (checked before the run), then connectivity, then prerequisites."""

    def __init__(self, agents: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.agents = list(agents or [])

    def input_verdict(self, req) -> str:
        catalog = (f"agent catalog valid ({len(self.agents)} agent(s): {', '.join(self.agents)})" if self.agents
                   else "no agent catalog (agentfactory_agents is not set)")
        return f"Input: inventory valid ({len(req.hosts)} host(s)), {catalog}"

    def start(self, req, progress=None) -> None:
        # Printed before any host is contacted: host failures come after it, as they happen.
        self.agents = list(req.agents)  # the preflight's, done by now (runner.run_playbook's gate)
        if not self.json_mode:
            self.say(plain(self.input_verdict(req), "green"))
        super().start(req, progress)

    def problems(self, result: RunResult) -> dict[str, list[str]]:
        problems: dict[str, list[str]] = defaultdict(list)
        for f in result.failures:
            problems[f["host"]].append(f["message"] if f["kind"] == "failed" else f"unreachable: {f['message']}")
        return problems

    def document(self, result: RunResult) -> dict[str, Any]:
        problems, facts = self.problems(result), result.extracts.get(PRECHECK, {})
        hosts = {h: {**result.hosts.get(h, {}), "facts": facts.get(h, {}), "problems": problems.get(h, [])}
                 for h in sorted(set(result.hosts) | set(facts))}
        return {**super().document(result), "hosts": hosts}

    def report(self, result: RunResult) -> None:
        problems, facts = self.problems(result), result.extracts.get(PRECHECK, {})
        table = Table(title="Host checks", title_justify="left")
        for col in ("host", "verdict", "os", "python", "systemd", "free /", "docker", "agents"):
            table.add_column(col)
        for host in sorted(set(result.hosts) | set(facts)):
            f = facts.get(host, {})
            bad = problems.get(host)
            verdict = Text("problems" if bad else "ready", style="red" if bad else "green")
            table.add_row(plain(host), verdict, plain(f.get("os", "-")), plain(f.get("python", "-")),
                          "yes" if f.get("systemd") else ("no" if f else "-"),
                          plain(f"{f['root_free_gb']} GB") if "root_free_gb" in f else "-",
                          "running" if f.get("docker") else ("not yet" if f else "-"),
                          plain(", ".join(map(str, f.get("agents") or [])) or "-"))
        self.out.print(table)
        for host, lines in sorted(problems.items()):
            for line in lines:
                self.out.print(Text.assemble(plain(host, "red"), ": ", plain(line)))
        unreachable = sorted(h for h, c in result.hosts.items() if c.get("unreachable"))
        failed = sorted(h for h, c in result.hosts.items() if c.get("failed") and h not in unreachable)
        if result.exit_code == errors.EXIT_OK:
            word, why = ("ready", "green"), "input valid, every host reachable and meeting the prerequisites"
        elif unreachable:
            word = ("NOT ready", "red")
            why = f"input valid; {len(unreachable)} host(s) unreachable ({_few(unreachable)})"
            if failed:
                why += f"; {len(failed)} reachable host(s) miss prerequisites ({_few(failed)})"
        elif failed:
            word, why = ("NOT ready", "red"), f"input valid, hosts reachable; {len(failed)} host(s) miss prerequisites"
        else:
            word, why = ("NOT ready", "red"), "the checks did not complete"
        self.out.print(Text.assemble("Verdict: ", word, ": ", plain(why), f" (exit {result.exit_code})"))


class UpdateDisplay(RunDisplay):
    """`agentfactory update`: the usual progress and recap, then which hosts got the new
    version, which were rolled back and which the run never reached."""

    OUTCOMES = ("updated", "unchanged", "rolled_back", "failed", "untouched")

    def __init__(self, agent: str, placed: list[str], **kwargs):
        super().__init__(**kwargs)
        self.agent = agent
        self.placed = placed

    def summary(self, result: RunResult) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {key: [] for key in self.OUTCOMES}
        outcomes = result.extracts.get(UPDATE, {})
        for host in self.placed or sorted(set(outcomes) | set(result.hosts)):
            outcome = outcomes.get(host)
            if outcome is None:
                # Reached but failed before any outcome (unreachable, image pull...): not updated.
                outcome = "failed" if host in result.hosts else "untouched"
            groups[outcome].append(host)
        return groups

    def document(self, result: RunResult) -> dict[str, Any]:
        return {**super().document(result), "update": {"agent": self.agent, **self.summary(result)}}

    def report(self, result: RunResult) -> None:
        summary = self.summary(result)
        super().report(result)
        styles = {"updated": "green", "unchanged": "dim", "rolled_back": "yellow", "failed": "red",
                  "untouched": "cyan"}
        line = Text.assemble("Update of ", plain(self.agent), ": ")
        for i, (k, v) in enumerate((k, v) for k, v in summary.items() if v):
            line.append_text(Text("; " if i else ""))
            line.append_text(plain(f"{k.replace('_', ' ')}: {', '.join(v)}", styles[k]))
        self.out.print(line)
