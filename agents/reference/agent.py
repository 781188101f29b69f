#!/usr/bin/env python3
"""agentfactory reference agent: a small, real agent service to copy for your own.

It does what every agent in an agentfactory fleet must do: read its rendered config file,
listen on a port, answer health checks on ``/healthz``, expose Prometheus metrics on
``/metrics``, do its work on ``POST /v1/task``, and stop cleanly on SIGTERM. The "work" here is
trivial (echo and count the words of the input); replace it with yours.

Only the standard library's ``http.server`` plus ``prometheus-client`` and ``PyYAML``
(Debian: python3-prometheus-client, python3-yaml; prometheus-client 0.16 or later).

Run: ``python3 agent.py --config config.yml --port 8080`` (see README.md for every option).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

VERSION = "1.0.0"
DEFAULT_PORT = 8080
MAX_BODY_BYTES = 64 * 1024
TASK_PATH = "/v1/task"

# Exit codes.
EXIT_OK = 0
EXIT_CONFIG = 2  # bad flags, unreadable or invalid config
EXIT_FAIL_ON_START = 3  # the config asked the agent to fail (broken-agent tests)

log = logging.getLogger("agent")


class ConfigError(Exception):
    """The config file cannot be used."""


def load_config(path: str | None) -> dict[str, Any]:
    """The config file as a mapping; no path means an empty config."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def load_secrets(directory: str | None) -> dict[str, str]:
    """One secret per regular file in ``directory`` (file name -> content, without the final newline).

    Values are kept in memory only; they are never logged or served. Hidden files are skipped.
    """
    if not directory:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"secrets directory {directory} does not exist")
    secrets: dict[str, str] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        mode = stat.S_IMODE(entry.stat().st_mode)
        if mode & 0o077:
            log.warning("secret file %s is readable by others (mode %04o); expected 0600", entry.name, mode)
        try:
            secrets[entry.name] = entry.read_text(encoding="utf-8").rstrip("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read secret file {entry.name}: {exc}") from exc
    return secrets


class Agent:
    """The agent's state, metrics and request handling, independent of the HTTP server."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        name: str,
        replica: str,
        version: str = VERSION,
        secrets: Mapping[str, str] | None = None,
        health_path: str = "/healthz",
        metrics_path: str = "/metrics",
    ) -> None:
        self.config = dict(config)
        self.name = name
        self.replica = replica
        self.version = version
        self._secrets = dict(secrets or {})
        self.health_path = health_path
        self.metrics_path = metrics_path
        self.stopping = False
        self._started = time.monotonic()

        self.registry = CollectorRegistry()
        # Process CPU, memory and file descriptors; Python and GC information.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "agent_requests_total", "HTTP requests served, by path and status code.",
            ["path", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "agent_request_duration_seconds", "Time spent serving HTTP requests, by path.",
            ["path"], registry=self.registry,
        )
        self.tasks = Counter("agent_tasks_total", "Tasks completed.", registry=self.registry)
        self.uptime = Gauge("agent_uptime_seconds", "Seconds since the agent started.", registry=self.registry)
        self.uptime.set_function(self.uptime_seconds)
        self.healthy = Gauge("agentfactory_agent_healthy", "1 when the agent reports itself healthy.",
                             registry=self.registry)
        self.healthy.set_function(lambda: 1.0 if self.is_healthy()[0] else 0.0)
        self.build = Info("agent_build", "The agent's build and identity.", registry=self.registry)
        self.build.info({"version": version, "agent": name, "replica": replica,
                         "model": str(self.config.get("model", ""))})

        self._routes: dict[str, dict[str, Callable[[Callable[[], bytes]], tuple[int, str, bytes]]]] = {
            "/": {"GET": self._info},
            health_path: {"GET": self._health},
            metrics_path: {"GET": self._metrics},
            TASK_PATH: {"POST": self._task},
        }

    # -- state -----------------------------------------------------------------------------

    def uptime_seconds(self) -> float:
        return time.monotonic() - self._started

    def is_healthy(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "stopping"
        if self.config.get("unhealthy"):
            return False, str(self.config.get("unhealthy_reason") or "the config says unhealthy: true")
        return True, ""

    def reload(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)

    # -- requests --------------------------------------------------------------------------

    def handle(self, method: str, path: str, read_body: Callable[[], bytes]) -> tuple[int, str, bytes, dict]:
        """Serve one request: (status, content type, body, extra headers)."""
        route = self._routes.get(path)
        if route is None:
            return (*_json(404, {"error": f"no such path: {path}"}), {})
        if method not in route:
            allow = ", ".join(sorted(route))
            return (*_json(405, {"error": f"{method} not allowed on {path}; use {allow}"}), {"Allow": allow})
        return (*route[method](read_body), {})

    def observe(self, path: str, code: int, seconds: float) -> None:
        label = path if path in self._routes else "other"  # bounded label values
        self.requests.labels(path=label, code=str(code)).inc()
        self.latency.labels(path=label).observe(seconds)

    def _identity(self) -> dict[str, Any]:
        return {"agent": self.name, "replica": self.replica, "version": self.version}

    def _info(self, _read_body: Callable[[], bytes]) -> tuple[int, str, bytes]:
        return _json(200, {
            **self._identity(),
            "model": self.config.get("model"),
            "uptime_seconds": round(self.uptime_seconds(), 3),
            "secrets_loaded": len(self._secrets),
            "endpoints": {
                "health": f"GET {self.health_path}",
                "metrics": f"GET {self.metrics_path}",
                "task": f"POST {TASK_PATH}",
            },
        })

    def _health(self, _read_body: Callable[[], bytes]) -> tuple[int, str, bytes]:
        ok, reason = self.is_healthy()
        body = {"status": "ok" if ok else "unhealthy", **self._identity(),
                "uptime_seconds": round(self.uptime_seconds(), 3)}
        if not ok:
            body["reason"] = reason
        return _json(200 if ok else 503, body)

    def _metrics(self, _read_body: Callable[[], bytes]) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def _task(self, read_body: Callable[[], bytes]) -> tuple[int, str, bytes]:
        try:
            payload = json.loads(read_body() or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _json(400, {"error": f"the body must be JSON: {exc}"})
        if not isinstance(payload, dict) or not isinstance(payload.get("input"), str):
            return _json(400, {"error": 'the body must be a JSON object with a string "input"'})
        text = payload["input"]
        self.tasks.inc()
        # The whole "work" of the reference agent: replace this with yours.
        return _json(200, {
            **self._identity(),
            "model": self.config.get("model"),
            "output": text,
            "words": len(text.split()),
            "characters": len(text),
        })


class HTTPError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _json(code: int, body: Any) -> tuple[int, str, bytes]:
    return code, "application/json", (json.dumps(body, sort_keys=True) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    """Thin HTTP glue around :class:`Agent` (HTTP/1.0: one request per connection)."""

    server_version = f"agentfactory-reference-agent/{VERSION}"
    sys_version = ""
    timeout = 15  # seconds a client may take to send its request
    server: AgentServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "Content-Length is required")
        try:
            size = int(length)
        except ValueError:
            raise HTTPError(400, "Content-Length must be a number") from None
        if size < 0 or size > MAX_BODY_BYTES:
            raise HTTPError(413, f"the body must be at most {MAX_BODY_BYTES} bytes")
        return self.rfile.read(size)

    def _dispatch(self, method: str) -> None:
        agent = self.server.agent
        started = time.monotonic()
        path = urlsplit(self.path).path or "/"
        headers: dict = {}
        try:
            code, ctype, body, headers = agent.handle(method, path, self._read_body)
        except HTTPError as exc:
            code, ctype, body = _json(exc.code, {"error": str(exc)})
        except Exception:
            log.exception("error serving %s %s", method, path)
            code, ctype, body = _json(500, {"error": "internal error"})
        # Counted before the answer leaves: a client's next request always sees this one counted.
        agent.observe(path, code, time.monotonic() - started)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Probes every few seconds would drown the log: they go to debug.
        path = urlsplit(self.path).path if hasattr(self, "path") else ""
        quiet = path in (self.server.agent.health_path, self.server.agent.metrics_path)
        log.log(logging.DEBUG if quiet else logging.INFO, "%s %s", self.address_string(), format % args)


class AgentServer(ThreadingHTTPServer):
    """A threading HTTP server that finishes the requests in flight when it closes."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], agent: Agent) -> None:
        self.agent = agent
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request (a TCP health check, a timed-out probe) is routine:
        # one debug line, not socketserver's traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("%s hung up: %s", client_address[0], sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


def make_server(agent: Agent, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> AgentServer:
    """Bind (port 0 picks a free port: see ``server.server_address``); serve with serve_forever()."""
    return AgentServer((host, port), agent)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0: any free port), got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="agentfactory reference agent")
    parser.add_argument("--config", default=env.get("AGENT_CONFIG"),
                        help="YAML config file (env AGENT_CONFIG; default: empty config)")
    parser.add_argument("--port", type=_port, default=env.get("AGENT_PORT", str(DEFAULT_PORT)),
                        help=f"port to listen on (env AGENT_PORT; default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--host", default=env.get("AGENT_HOST", "0.0.0.0"),
                        help="address to listen on (env AGENT_HOST; default 0.0.0.0)")
    parser.add_argument("--secrets-dir", default=env.get("AGENT_SECRETS_DIR"),
                        help="directory with one file per secret (env AGENT_SECRETS_DIR)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    args = parse_args(argv)
    level = str(env.get("LOG_LEVEL", "info")).upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        secrets = load_secrets(args.secrets_dir)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG

    name = env.get("AGENT_NAME") or str(config.get("name") or "reference-agent")
    replica = env.get("AGENT_REPLICA") or socket.gethostname()
    if config.get("fail_on_start"):
        log.error("the config says fail_on_start: true; exiting")
        return EXIT_FAIL_ON_START

    agent = Agent(
        config, name=name, replica=replica, secrets=secrets,
        version=env.get("AGENT_VERSION") or VERSION,
        health_path=env.get("AGENT_HEALTH_PATH") or "/healthz",
        metrics_path=env.get("AGENT_METRICS_PATH") or "/metrics",
    )
    try:
        server = make_server(agent, args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror or exc)
        return EXIT_CONFIG

    def stop(signum: int, _frame: Any) -> None:
        if agent.stopping:
            return
        log.info("received %s, stopping", signal.Signals(signum).name)
        agent.stopping = True
        # shutdown() waits for serve_forever() to return, so it cannot run in this (main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    def reload(_signum: int, _frame: Any) -> None:
        try:
            agent.reload(load_config(args.config))
            log.info("config reloaded")
        except ConfigError as exc:
            log.error("config not reloaded: %s", exc)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)

    host, port = server.server_address[:2]
    log.info("agent %s (replica %s, version %s, model %s) listening on http://%s:%s; %d secret(s) loaded",
             name, replica, agent.version, config.get("model"), host, port, len(secrets))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()  # waits for the requests in flight
    log.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
