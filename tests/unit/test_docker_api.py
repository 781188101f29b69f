"""module_utils/docker_api: the Engine API client, against a small HTTP server on a unix socket
in a temporary directory (the shape of the engine's answers, no engine needed)."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from test_agent_health import docker_api  # the collection on sys.path, as the module sees it


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Engine(BaseHTTPRequestHandler):
    """Answers like the engine: JSON bodies, {"message": ...} on errors."""

    requests: list[tuple[str, str, dict, object]] = []

    def address_string(self):  # a unix socket has no client address
        return "local"

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append((self.command, url.path, query, body))
        if url.path == "/containers/json":
            self._answer(200, [{"Id": "abc", "Labels": {"agentfactory.agent": "a"}}])
        elif url.path == "/containers/abc/json":
            self._answer(200, {"Id": "abc", "Name": "/a-0"})
        elif url.path == "/containers/abc/stats":
            self._answer(200, {"cpu_stats": {"cpu_usage": {"total_usage": 5}}})
        elif url.path == "/containers/boom/json":
            self._answer(500, {"message": "engine on fire"})
        elif url.path == "/containers/create":
            self._answer(201, {"Id": "new", "Warnings": []})
        elif url.path == "/containers/new/start":
            self._answer(204, None)
        else:
            self._answer(404, {"message": f"No such container: {url.path.split('/')[2]}"})

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def engine(tmp_path):
    path = str(tmp_path / "docker.sock")
    server = _Server(path, _Engine)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Engine.requests = []
    yield docker_api.Engine(path, timeout=5)
    server.shutdown()
    server.server_close()


def test_containers_are_listed_by_label_with_stopped_ones(engine):
    assert engine.available()
    assert engine.containers("agentfactory.agent") == [{"Id": "abc", "Labels": {"agentfactory.agent": "a"}}]
    ((method, path, query, _),) = _Engine.requests
    assert (method, path) == ("GET", "/containers/json")
    assert query["all"] == "1"
    assert json.loads(query["filters"]) == {"label": ["agentfactory.agent"]}


def test_inspect_answers_none_for_a_missing_container_and_raises_other_errors(engine):
    assert engine.inspect("abc") == {"Id": "abc", "Name": "/a-0"}
    assert engine.inspect("gone") is None
    with pytest.raises(docker_api.EngineError, match="engine on fire") as info:
        engine.inspect("boom")
    assert info.value.status == 500


def test_stats_is_one_sample_without_waiting(engine):
    assert engine.stats("abc") == {"cpu_stats": {"cpu_usage": {"total_usage": 5}}}
    assert _Engine.requests[-1][2] == {"stream": "false", "one-shot": "true"}


def test_bodies_go_as_json_and_empty_answers_are_none(engine):
    assert engine.call("POST", "/containers/create", {"name": "a-0"}, {"Image": "x"}) == {"Id": "new", "Warnings": []}
    assert _Engine.requests[-1] == ("POST", "/containers/create", {"name": "a-0"}, {"Image": "x"})
    assert engine.call("POST", "/containers/new/start") is None


def test_a_missing_socket_is_named(tmp_path):
    engine = docker_api.Engine(str(tmp_path / "none.sock"))
    assert not engine.available()
    with pytest.raises(docker_api.EngineError, match=r"cannot reach the Docker engine at .*none\.sock"):
        engine.containers("x")
