"""What the operator sees while a playbook runs and after: live progress, failures, the recap.

Displays only draw: lines streamed from the events as they come, the live table from the run's
progress (runner.RunEvents), and everything after the run from its RunResult.

Progress and messages go to stderr; the recap (or, with --json, the one JSON document of
agentfactory_cli/jsondoc.py) to stdout, so `agentfactory bootstrap --json | jq` always gets
clean input.

Whatever comes from hosts, inventories or catalogs (host and task names, messages, facts) is
shown through plain(): as text, never as rich markup, with control characters made visible, so
that it can neither break the display nor drive the terminal.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agentfactory_cli import errors, jsondoc
from agentfactory_cli.runner import RECAP_KEYS, RunEvents, RunResult, failure_of, outcome

# C0 and C1 controls, DEL, and the bidi controls that reorder what a terminal shows ("\n" and
# "\t" stay: multi-line messages are fine).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\r": "\\r", "\x1b": "\\x1b"}


def clean(value: Any) -> str:
    """The text of a value from outside, with every control character escaped visibly."""
    def escape(m: re.Match) -> str:
        c = m.group()
        return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    # CRLF is a line end (a pty's, in ansible's own output): only a lone CR can overwrite a line.
    return _CONTROL.sub(escape, str(value).replace("\r\n", "\n"))


def plain(value: Any, style: str = "") -> Text:
    """A value from outside as rich text: never markup, controls escaped."""
    return Text(clean(value), style=style)


def verdict_of(result: RunResult) -> str:
    """The result in words, naming what went wrong (a host unreachable is not a task failed)."""
    unreachable = sum(1 for h in result.hosts.values() if h.get("unreachable"))
    failed = sum(1 for h in result.hosts.values() if h.get("failed"))
    words = {
        errors.EXIT_OK: "[green]ok[/]",
        errors.EXIT_INTERRUPTED: "[yellow]interrupted[/]",
        errors.EXIT_UNREACHABLE: f"[magenta]unreachable: {unreachable} host(s)[/]"
                                 + (f", [red]failed: {failed} host(s)[/]" if failed else ""),
        errors.EXIT_HOST_FAILED: f"[red]failed: a task failed on {failed} host(s)[/]",
        errors.EXIT_INVALID_INPUT: "[red]invalid input[/]",
    }
    return words.get(result.exit_code, "[red]error[/]")


class RunDisplay:
    """Renders a run: its progress and failures as they come, then its result."""

    def __init__(self, json_mode: bool = False, verbosity: int = 0, show_diff: bool = False,
                 err: Console | None = None, out: Console | None = None):
        self.json_mode = json_mode
        self.verbosity = verbosity
        self.show_diff = show_diff
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)
        # Logs and pipes get wide tables instead of rich's 80-column default.
        self.out = out or Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        self.progress = RunEvents()  # the run's, from start() on
        self.started = time.monotonic()
        self._live: Live | None = None
        self._display_broken = False

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, req, progress: RunEvents | None = None) -> None:
        self.started = time.monotonic()
        if progress is not None:
            self.progress = progress
        mode = " (check mode)" if req.check else ""
        where = f"playbooks/{req.playbook}{mode} on {', '.join(str(p) for p in req.inventories)}"
        self.say(Text.assemble((req.verb, "bold"), ": ", plain(where + (f" --limit {req.limit}" if req.limit else ""))))
        if self.err.is_terminal and not self.verbosity:
            self._live = Live(self._render(), console=self.err, refresh_per_second=8, transient=True)
            self._live.start()

    def stop(self) -> None:
        if self._live:
            self._live.stop()
            self._live = None

    def note(self, message: str) -> None:
        self.say(plain(message, "yellow"))

    def say(self, renderable) -> None:
        """Print to stderr; a display that fails says so once and the run goes on."""
        try:
            self.err.print(renderable)
        except Exception as exc:  # a terminal gone, a rich bug: never the run's end
            if not self._display_broken:
                self._display_broken = True
                sys.stderr.write(f"warning: the display failed ({type(exc).__name__}: {str(exc)[:300]!r}); "
                                 "the run goes on\n")

    # --- events ----------------------------------------------------------------------------

    def event(self, ev: dict[str, Any]) -> bool:
        """One event, as the runner has folded it into the progress: the lines it streams."""
        name = ev.get("event", "")
        data = ev.get("event_data", {})
        if self.verbosity and ev.get("stdout"):
            self.say(plain(ev["stdout"]))
        if name == "playbook_on_play_start" and not self._live and not self.verbosity:
            self.say(Text.assemble(("PLAY", "cyan"), " ", plain(data.get("play", ""))))
        if failure := failure_of(ev):
            style = "red" if failure["kind"] == "failed" else "magenta"
            text = f"{failure['host']} | {failure['task']}: {failure['message']}"
            self.say(Text.assemble((failure["kind"].upper(), style), " ", plain(text)))
        if self.show_diff and not self.verbosity and outcome(ev) and (data.get("res") or {}).get("diff") \
                and ev.get("stdout"):
            self.say(plain(ev["stdout"]))  # ansible's own rendering of the diff
        if self._live:
            # The progress is what matters; the next event redraws.
            with contextlib.suppress(Exception):
                self._live.update(self._render())
        return True  # keep the event in the run's artifacts

    # --- rendering -------------------------------------------------------------------------

    def _render(self):
        elapsed = time.monotonic() - self.started
        progress = self.progress
        head = Text.assemble(("PLAY ", "cyan"), plain(progress.play or "starting"), (f"  {elapsed:5.0f}s", "dim"))
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        for col in ("host", "task in flight", "ok", "changed", "failed"):
            table.add_column(col, justify="right" if col in ("ok", "changed", "failed") else "left")
        for host in sorted(progress.counts):
            c = progress.counts[host]
            bad = c["failed"] or c["unreachable"]
            table.add_row(plain(host, "red" if bad else ""),
                          plain(progress.in_flight[host]) if host in progress.in_flight else Text("-", style="dim"),
                          str(c["ok"]), str(c["changed"]), str(c["failed"] + c["unreachable"]))
        return Group(head, table)

    def exit_code(self, result: RunResult) -> int:
        return result.exit_code

    def finish(self, result: RunResult) -> None:
        """The end of the run: its error on stderr, then the JSON document or the report on stdout."""
        self.stop()
        if result.error:
            self.say(plain(result.error, "red"))
        if self.json_mode:
            jsondoc.write(self.document(result))
        else:
            self.report(result)

    def document(self, result: RunResult) -> dict[str, Any]:
        """The --json document; displays add their own keys."""
        return jsondoc.run_document(result, rc=self.exit_code(result))

    def report(self, result: RunResult) -> None:
        """The recap for a terminal or a log."""
        table = Table(title="Recap", title_justify="left")
        table.add_column("host")
        for key in RECAP_KEYS:
            table.add_column(key, justify="right")
        styles = {"changed": "yellow", "failed": "red", "unreachable": "magenta"}
        for host, counts in result.hosts.items():
            table.add_row(plain(host), *[
                Text(str(counts[k]), style=styles.get(k, "") if counts[k] else "dim") for k in RECAP_KEYS
            ])
        if result.hosts:
            self.out.print(table)
        else:
            self.out.print("No host ran a task.")
        elapsed = time.monotonic() - self.started
        verdict = verdict_of(result)
        self.out.print(f"Result: {verdict} (exit {result.exit_code}, {result.status}, {elapsed:.1f}s)")
        self.out.print(Text.assemble("Artifacts: ", plain(result.artifacts)))
