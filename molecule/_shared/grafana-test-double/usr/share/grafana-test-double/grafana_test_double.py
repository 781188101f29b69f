#!/usr/bin/env python3
"""TEST DOUBLE of Grafana for agentfactory's molecule scenarios. It is NOT Grafana.

Grafana cannot be downloaded on the machines that run our tests, so the grafana role is tested
against this stand-in, packaged as `grafana-test-double` with Grafana's unit name, paths and
command names. It implements only what the role relies on, with Grafana's observable behaviour:

server (grafana-server):
  * reads grafana.ini ([server] http_addr/http_port, [security] admin_user/admin_password,
    [paths] data/provisioning); values may be wrapped in triple quotes as in Grafana;
  * creates the admin user from admin_password on its FIRST start only (empty data directory);
    later changes to grafana.ini do not change the stored password, as in Grafana;
  * reads datasource provisioning at start and refuses to start when a file is invalid;
    reads dashboard providers at start and their dashboard JSON files on every request (Grafana
    polls them);
  * GET /api/health (no auth), and with basic auth: GET /api/user, /api/datasources,
    /api/search, /api/dashboards/uid/<uid>; wrong credentials give 401.
cli (grafana-cli): `[--homepath DIR] [--config FILE] admin reset-admin-password
  (--password-from-stdin | PASSWORD)` changes the stored admin password.

Not implemented: everything else (UI, queries, users, orgs, plugins, alerting, brute-force
protection, sessions, password strength rules, `--user-id`). Passwords are stored as
PBKDF2-SHA256 hashes in a JSON file.
"""

from __future__ import annotations

import base64
import configparser
import glob
import hashlib
import hmac
import json
import os
import pwd
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

VERSION = "0.0.0-test-double"
USERS_FILE = "test-double-users.json"


def read_ini(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    parser.read(path)
    return parser


def ini_value(parser: configparser.ConfigParser, section: str, key: str, default: str) -> str:
    value = parser.get(section, key, fallback=default).strip()
    if len(value) >= 6 and value.startswith('"""') and value.endswith('"""'):
        value = value[3:-3]
    return value


def _hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000).hex()


def users_path(parser: configparser.ConfigParser) -> Path:
    return Path(ini_value(parser, "paths", "data", "/var/lib/grafana")) / USERS_FILE


def store_admin(path: Path, login: str, password: str) -> None:
    salt = secrets.token_hex(8)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"id": 1, "login": login, "salt": salt, "hash": _hash(password, salt)}))
    try:
        grafana = pwd.getpwnam("grafana")
        os.chown(tmp, grafana.pw_uid, grafana.pw_gid)
    except (KeyError, PermissionError):
        pass
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def check_login(path: Path, login: str, password: str) -> dict | None:
    try:
        user = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if login == user["login"] and hmac.compare_digest(_hash(password, user["salt"]), user["hash"]):
        return user
    return None


def load_datasources(provisioning: Path) -> list[dict]:
    """Like Grafana at start: every file must parse, with apiVersion and named, typed datasources."""
    found = []
    for name in sorted(glob.glob(str(provisioning / "datasources" / "*.y*ml"))):
        doc = yaml.safe_load(Path(name).read_text()) or {}
        if "apiVersion" not in doc or not isinstance(doc.get("datasources", []), list):
            raise ValueError(f"{name}: not a datasource provisioning file")
        for ds in doc.get("datasources") or []:
            if not ds.get("name") or not ds.get("type"):
                raise ValueError(f"{name}: datasource without name or type")
            found.append({
                "id": len(found) + 1, "uid": ds.get("uid", ""), "name": ds["name"], "type": ds["type"],
                "url": ds.get("url", ""), "access": ds.get("access", "proxy"),
                "isDefault": bool(ds.get("isDefault")), "jsonData": ds.get("jsonData") or {},
                "readOnly": not ds.get("editable", False), "_file": name,
                # Like Grafana's API: whether basic auth is on and its user, never the secure fields.
                "basicAuth": bool(ds.get("basicAuth")), "basicAuthUser": ds.get("basicAuthUser", ""),
            })
    return found


def load_providers(provisioning: Path) -> list[dict]:
    providers = []
    for name in sorted(glob.glob(str(provisioning / "dashboards" / "*.y*ml"))):
        doc = yaml.safe_load(Path(name).read_text()) or {}
        for prov in doc.get("providers") or []:
            path = (prov.get("options") or {}).get("path")
            if prov.get("type", "file") == "file" and path:
                providers.append({"name": prov.get("name", ""), "folder": prov.get("folder", ""), "path": path})
    return providers


def load_dashboards(providers: list[dict]) -> list[dict]:
    """Dashboards from the providers' directories; invalid JSON is skipped, as Grafana does."""
    found = []
    for prov in providers:
        for name in sorted(glob.glob(os.path.join(prov["path"], "**", "*.json"), recursive=True)):
            try:
                dash = json.loads(Path(name).read_text())
            except (OSError, ValueError) as exc:
                print(f"test double: skipping dashboard {name}: {exc}", file=sys.stderr)
                continue
            found.append({"dashboard": dash, "folder": prov["folder"], "file": name})
    return found


def serve(argv: list[str]) -> int:
    config = "/etc/grafana/grafana.ini"
    for arg in argv:
        if arg.startswith("--config="):
            config = arg.split("=", 1)[1]
    ini = read_ini(config)
    users = users_path(ini)
    if not users.exists():  # first start: the only time admin_password from grafana.ini applies
        users.parent.mkdir(parents=True, exist_ok=True)
        store_admin(users, ini_value(ini, "security", "admin_user", "admin"),
                    ini_value(ini, "security", "admin_password", "admin"))
    provisioning = Path(ini_value(ini, "paths", "provisioning", "/etc/grafana/provisioning"))
    try:
        datasources = load_datasources(provisioning)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"test double: datasource provisioning failed: {exc}", file=sys.stderr)
        return 1
    providers = load_providers(provisioning)

    class Handler(BaseHTTPRequestHandler):
        server_version = "grafana-test-double/" + VERSION

        def _send(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _user(self) -> dict | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            try:
                login, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None
            return check_login(users, login, password)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/api/health":
                return self._send(200, {"commit": "test-double", "database": "ok", "version": VERSION})
            user = self._user()
            if user is None:
                return self._send(401, {"message": "Invalid username or password"})
            if path == "/api/user":
                return self._send(200, {"id": user["id"], "login": user["login"], "isGrafanaAdmin": True})
            if path == "/api/datasources":
                return self._send(200, [{k: v for k, v in d.items() if k != "_file"} for d in datasources])
            dashboards = load_dashboards(providers)
            if path == "/api/search":
                return self._send(200, [
                    {"uid": d["dashboard"].get("uid"), "title": d["dashboard"].get("title"),
                     "type": "dash-db", "folderTitle": d["folder"], "tags": d["dashboard"].get("tags", [])}
                    for d in dashboards
                ])
            if path.startswith("/api/dashboards/uid/"):
                uid = path.rsplit("/", 1)[1]
                for d in dashboards:
                    if d["dashboard"].get("uid") == uid:
                        return self._send(200, {"dashboard": d["dashboard"], "meta": {
                            "provisioned": True, "provisionedExternalId": os.path.basename(d["file"]),
                            "folderTitle": d["folder"]}})
                return self._send(404, {"message": "Dashboard not found"})
            return self._send(404, {"message": "Not found (grafana-test-double implements few endpoints)"})

        def log_message(self, *args):
            pass

    host = ini_value(ini, "server", "http_addr", "") or "0.0.0.0"
    port = int(ini_value(ini, "server", "http_port", "3000"))
    print(f"grafana-test-double {VERSION} listening on {host}:{port} (NOT Grafana)", flush=True)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
    return 0


def cli(argv: list[str]) -> int:
    config = "/etc/grafana/grafana.ini"
    rest = []
    args = iter(argv)
    for arg in args:
        if arg in ("--homepath", "--config"):
            value = next(args, "")
            if arg == "--config":
                config = value
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        elif arg.startswith("--homepath="):
            continue
        else:
            rest.append(arg)
    if rest[:2] != ["admin", "reset-admin-password"] or len(rest) != 3:
        print("grafana-test-double: only 'admin reset-admin-password (--password-from-stdin | PASSWORD)'"
              " is implemented", file=sys.stderr)
        return 1
    # Like grafana-cli: the first line of stdin, without its newline.
    password = sys.stdin.readline().rstrip("\r\n") if rest[2] == "--password-from-stdin" else rest[2]
    if not password:
        print("New password is too short", file=sys.stderr)
        return 1
    ini = read_ini(config)
    users = users_path(ini)
    if not users.exists():
        print("grafana-test-double: no database yet (start grafana-server once first)", file=sys.stderr)
        return 1
    store_admin(users, json.loads(users.read_text())["login"], password)
    print("Admin password changed successfully ✔")
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "server":
        sys.exit(serve(sys.argv[2:]))
    if mode == "cli":
        sys.exit(cli(sys.argv[2:]))
    print("usage: grafana_test_double.py server|cli ...", file=sys.stderr)
    sys.exit(2)
