#!/usr/bin/python3
"""Check an exporter-toolkit web config before it replaces the live one (validate: %s).

promtool has `check web-config`, but promtool is only on Prometheus hosts; this checks the
same things the services would refuse at start: known keys, a readable certificate and key,
bcrypt hashes. Exit 1 with a message naming the problem.
"""

import json
import re
import sys

KNOWN = {"tls_server_config", "basic_auth_users", "http_server_config"}
BCRYPT = re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}")


def problems(path):
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        return [f"cannot read {path}: {exc}"]
    if not isinstance(config, dict):
        return ["the web config is not a mapping"]
    found = [f"unknown key {key!r}" for key in sorted(set(config) - KNOWN)]
    tls = config.get("tls_server_config") or {}
    for key in ("cert_file", "key_file"):
        if tls and key not in tls:
            found.append(f"tls_server_config has no {key}")
        elif tls:
            try:
                with open(tls[key], "rb"):
                    pass
            except OSError as exc:
                found.append(f"tls_server_config.{key}: {exc}")
    for user, digest in (config.get("basic_auth_users") or {}).items():
        if not isinstance(digest, str) or not BCRYPT.fullmatch(digest):
            found.append(f"basic_auth_users.{user}: not a bcrypt hash")
    return found


if __name__ == "__main__":
    errors = problems(sys.argv[1])
    for line in errors:
        print(f"web config: {line}", file=sys.stderr)
    sys.exit(1 if errors else 0)
