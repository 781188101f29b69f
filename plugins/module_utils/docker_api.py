# Copyright: agentfactory contributors
# Apache License 2.0 (see galaxy.yml)
"""The Docker Engine API on the host's own socket, with the standard library only.

The agent modules ask the engine directly: one request on a local socket takes milliseconds,
where each `docker` CLI call starts a Go binary (about 0.1 s) and `docker stats --no-stream`
waits for a second sample (about 2 s). Paths carry no API version, so the engine answers in its
own; the modules read only fields that every engine since 20.10 (API 1.41) returns.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
from urllib.parse import quote, urlencode

DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineError(Exception):
    """A request the engine refused or could not answer; `status` is the HTTP status, if any."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """A client of the engine at `socket_path`; each call is one request on a new connection."""

    def __init__(self, socket_path=DEFAULT_SOCKET, timeout=60.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def available(self):
        """Whether the engine's socket exists (the engine may still be stopped)."""
        try:
            return stat.S_ISSOCK(os.stat(self.socket_path).st_mode)
        except OSError:
            return False

    def call(self, method, path, query=None, body=None, timeout=None):
        """The decoded JSON answer (None when empty); EngineError for any status above 299."""
        url = path + ("?" + urlencode(query) if query else "")
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn = _UnixConnection(self.socket_path, self.timeout if timeout is None else timeout)
        try:
            conn.request(method, url, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(f"cannot reach the Docker engine at {self.socket_path}: {exc}") from exc
        finally:
            conn.close()
        if response.status >= 300 and response.status != 304:  # 304: already started or stopped
            raise EngineError(_message(data) or f"HTTP {response.status}", response.status)
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise EngineError(f"the Docker engine answered {method} {path} with no JSON: {exc}") from exc

    # -- containers -------------------------------------------------------------------------

    def containers(self, label):
        """Summaries of every container (running or not) that carries `label` (KEY or KEY=VALUE)."""
        return self.call("GET", "/containers/json", {"all": "1", "filters": json.dumps({"label": [label]})}) or []

    def _found(self, path):
        """GET `path`; None when the engine has no such object (404)."""
        try:
            return self.call("GET", path)
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    def inspect(self, ident):
        """The container's full description, or None when there is no such container."""
        return self._found(f"/containers/{quote(ident, safe='')}/json")

    def stats(self, ident):
        """One sample of the container's counters, taken now (no wait for a second sample)."""
        return self.call("GET", f"/containers/{quote(ident, safe='')}/stats", {"stream": "false", "one-shot": "true"})

    def create(self, name, body):
        return self.call("POST", "/containers/create", {"name": name}, body)

    def start(self, ident):
        self.call("POST", f"/containers/{quote(ident, safe='')}/start")

    def stop(self, ident, seconds):
        """Stop, killing after `seconds`; the request may take that long, and some more."""
        self.call("POST", f"/containers/{quote(ident, safe='')}/stop", {"t": str(seconds)}, timeout=seconds + 30)

    def remove(self, ident):
        self.call("DELETE", f"/containers/{quote(ident, safe='')}", {"force": "1", "v": "1"})

    # -- images -----------------------------------------------------------------------------

    def image(self, reference):
        """The image's description (its Id), or None when the host does not have it."""
        return self._found(f"/images/{quote(reference, safe='')}/json")


def _message(data):
    try:
        return str(json.loads(data).get("message") or "").strip()
    except (ValueError, AttributeError):
        return data.decode("utf-8", "replace").strip()[:500]
