"""The reference agent (agents/reference/agent.py): in-process and as a real process.

Loopback only, every wait bounded.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

AGENT_PY = Path(__file__).resolve().parents[2] / "agents" / "reference" / "agent.py"
SECRET = "hunter2-do-not-show"
WAIT = 15  # seconds, the upper bound of every wait below


def load_module():
    spec = importlib.util.spec_from_file_location("reference_agent", AGENT_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = load_module()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get_json(port: int, path: str):
    status, _headers, body = request(port, "GET", path)
    return status, json.loads(body)


def post_json(port: int, path: str, payload) -> tuple[int, dict]:
    data = json.dumps(payload).encode()
    status, _headers, body = request(port, "POST", path, data, {"Content-Type": "application/json"})
    return status, json.loads(body)


# --------------------------------------------------------------------------------------------
# In process


@pytest.fixture
def serve():
    """Start an Agent on a free loopback port; returns (agent, port)."""
    started = []

    def start(config=None, **kwargs):
        kwargs.setdefault("name", "support-bot")
        kwargs.setdefault("replica", "support-bot-1")
        agent = ref.Agent(config or {"model": "small"}, **kwargs)
        server = ref.make_server(agent, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return agent, server.server_address[1]

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


def test_healthz_ok(serve):
    _agent, port = serve()
    status, body = get_json(port, "/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert (body["agent"], body["replica"], body["version"]) == ("support-bot", "support-bot-1", "1.0.0")
    assert body["uptime_seconds"] >= 0


def test_healthz_503_when_config_says_unhealthy(serve):
    _agent, port = serve({"model": "small", "unhealthy": True})
    status, body = get_json(port, "/healthz")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert "unhealthy: true" in body["reason"]


def test_reload_changes_health(serve):
    agent, port = serve()
    assert get_json(port, "/healthz")[0] == 200
    agent.reload({"unhealthy": True, "unhealthy_reason": "testing"})
    assert get_json(port, "/healthz")[1]["reason"] == "testing"
    agent.reload({})
    assert get_json(port, "/healthz")[0] == 200


def test_metrics_expose_requests_uptime_build_and_process(serve):
    _agent, port = serve()
    get_json(port, "/healthz")
    get_json(port, "/healthz")
    request(port, "GET", "/no/such/page")
    status, headers, body = request(port, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert 'agent_requests_total{code="200",path="/healthz"} 2.0' in text
    assert 'agent_requests_total{code="404",path="other"} 1.0' in text
    assert re.search(r"^agent_uptime_seconds \d", text, re.M)
    assert re.search(r'^agent_build_info\{.*version="1\.0\.0".*\} 1\.0$', text, re.M)
    assert 'replica="support-bot-1"' in text
    assert 'model="small"' in text
    assert "agentfactory_agent_healthy 1.0" in text
    assert "agent_request_duration_seconds_bucket" in text
    assert re.search(r"^process_cpu_seconds_total \d", text, re.M)
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
    # The scrape itself is counted on the next one.
    text = request(port, "GET", "/metrics")[2].decode()
    assert 'agent_requests_total{code="200",path="/metrics"} 1.0' in text


def test_task_echoes_and_counts_words(serve):
    _agent, port = serve({"model": "tiny-llm"})
    status, body = post_json(port, "/v1/task", {"input": "count these three  words"})
    assert status == 200
    assert body["output"] == "count these three  words"
    assert body["words"] == 4
    assert body["characters"] == len("count these three  words")
    assert (body["agent"], body["replica"], body["model"]) == ("support-bot", "support-bot-1", "tiny-llm")
    text = request(port, "GET", "/metrics")[2].decode()
    assert "agent_tasks_total 1.0" in text
    assert 'agent_requests_total{code="200",path="/v1/task"} 1.0' in text


@pytest.mark.parametrize(("body", "headers", "code"), [
    (b"{not json", {}, 400),
    (b'{"text": "no input"}', {}, 400),
    (b'["input"]', {}, 400),
    (b'{"input": 5}', {}, 400),
    (b"x" * (64 * 1024 + 1), {}, 413),
])
def test_task_rejects_bad_requests(serve, body, headers, code):
    _agent, port = serve()
    status, _headers, data = request(port, "POST", "/v1/task", body, headers)
    assert status == code
    assert "error" in json.loads(data)


def test_task_needs_content_length(serve):
    _agent, port = serve()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("POST", "/v1/task")
        conn.endheaders()
        assert conn.getresponse().status == 411
    finally:
        conn.close()


def test_wrong_method_and_unknown_path(serve):
    _agent, port = serve()
    status, headers, _body = request(port, "GET", "/v1/task")
    assert (status, headers["Allow"]) == (405, "POST")
    assert request(port, "DELETE", "/healthz")[0] == 405
    assert request(port, "GET", "/v2/task")[0] == 404


def test_root_describes_the_agent_without_secrets(serve):
    _agent, port = serve({"model": "small"}, secrets={"API_KEY": SECRET})
    status, body = get_json(port, "/")
    assert status == 200
    assert body["agent"] == "support-bot"
    assert body["model"] == "small"
    assert body["secrets_loaded"] == 1
    assert body["endpoints"]["task"] == "POST /v1/task"
    for path in ("/", "/healthz", "/metrics"):
        assert SECRET not in request(port, "GET", path)[2].decode()


def test_custom_health_and_metrics_paths(serve):
    _agent, port = serve(health_path="/ready", metrics_path="/prom")
    assert get_json(port, "/ready")[0] == 200
    assert request(port, "GET", "/prom")[0] == 200
    assert request(port, "GET", "/healthz")[0] == 404


def test_load_config(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("model: small\ntemperature: 0.2\n")
    assert ref.load_config(str(path)) == {"model": "small", "temperature": 0.2}
    assert ref.load_config(None) == {}
    path.write_text("")
    assert ref.load_config(str(path)) == {}
    for text in ("- a list\n", "key: [unclosed\n"):
        path.write_text(text)
        with pytest.raises(ref.ConfigError):
            ref.load_config(str(path))
    with pytest.raises(ref.ConfigError, match="cannot read"):
        ref.load_config(str(tmp_path / "missing.yml"))


def test_load_secrets(tmp_path, caplog):
    (tmp_path / "API_KEY").write_text(SECRET + "\n")
    (tmp_path / "API_KEY").chmod(0o600)
    (tmp_path / "OTHER").write_text("open")
    (tmp_path / "OTHER").chmod(0o644)
    (tmp_path / ".hidden").write_text("skip")
    (tmp_path / "subdir").mkdir()
    with caplog.at_level("WARNING"):
        assert ref.load_secrets(str(tmp_path)) == {"API_KEY": SECRET, "OTHER": "open"}
    assert "OTHER is readable by others" in caplog.text
    assert SECRET not in caplog.text
    assert ref.load_secrets(None) == {}
    with pytest.raises(ref.ConfigError):
        ref.load_secrets(str(tmp_path / "nope"))


# --------------------------------------------------------------------------------------------
# As a process, the way Docker and systemd run it


class Process:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        full_env = {**os.environ, "LOG_LEVEL": "info", **env}
        self.proc = subprocess.Popen(
            [sys.executable, str(AGENT_PY), *args], env=full_env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}; log so far: {''.join(self.log)}")

    def wait(self) -> int:
        code = self.proc.wait(timeout=WAIT)
        time.sleep(0.1)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def run():
    processes: list[Process] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Process:
        process = Process(list(args), env or {})
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


LISTENING = r"listening on http://127\.0\.0\.1:(\d+)"


def test_process_serves_and_stops_cleanly_on_sigterm(run, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("model: small\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "API_KEY").write_text(SECRET)
    (secrets / "API_KEY").chmod(0o600)
    agent = run("--config", str(config), "--port", "0", "--host", "127.0.0.1", "--secrets-dir", str(secrets),
                env={"AGENT_REPLICA": "support-bot-2", "AGENT_NAME": "support-bot"})
    port = int(agent.wait_for(LISTENING)[1])
    status, body = get_json(port, "/healthz")
    assert (status, body["replica"]) == (200, "support-bot-2")
    status, body = post_json(port, "/v1/task", {"input": "hello world"})
    assert (status, body["words"], body["model"]) == (200, 2, "small")
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.wait() == 0
    log = "".join(agent.log)
    assert "received SIGTERM" in log
    assert "stopped" in log
    assert SECRET not in log


def test_process_reads_config_and_port_from_environment(run, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("model: from-env\nunhealthy: true\n")
    agent = run("--host", "127.0.0.1", env={"AGENT_CONFIG": str(config), "AGENT_PORT": "0"})
    port = int(agent.wait_for(LISTENING)[1])
    status, body = get_json(port, "/healthz")
    assert (status, body["status"]) == (503, "unhealthy")
    assert get_json(port, "/")[1]["model"] == "from-env"


def test_process_reloads_config_on_sighup(run, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("model: small\n")
    agent = run("--config", str(config), "--port", "0", "--host", "127.0.0.1")
    port = int(agent.wait_for(LISTENING)[1])
    assert get_json(port, "/healthz")[0] == 200
    config.write_text("model: small\nunhealthy: true\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for("config reloaded")
    assert get_json(port, "/healthz")[0] == 503


def test_process_fails_on_start_when_asked(run, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("fail_on_start: true\n")
    agent = run("--config", str(config), "--port", "0", "--host", "127.0.0.1")
    assert agent.wait() == 3
    assert "fail_on_start" in "".join(agent.log)


@pytest.mark.parametrize("text", [None, "- not\n- a mapping\n"])
def test_process_refuses_a_bad_config(run, tmp_path, text):
    config = tmp_path / "config.yml"
    if text is not None:
        config.write_text(text)
    agent = run("--config", str(config), "--port", "0", "--host", "127.0.0.1")
    assert agent.wait() == 2
    assert str(config) in "".join(agent.log)


def test_a_client_hanging_up_mid_request_prints_no_traceback(serve, capfd):
    _agent, port = serve()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /heal")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    time.sleep(0.5)
    assert get_json(port, "/healthz")[0] == 200  # still serving
    assert "Traceback" not in capfd.readouterr().err
