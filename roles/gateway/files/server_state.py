#!/usr/bin/python3
"""Set one HAProxy server to ready, drain or maint through the runtime API, idempotently.

Run on a gateway host by the gateway role's tasks/server_state.yml (ansible.builtin.script):

    server_state.py --socket /run/haproxy/admin.sock --backend echo --server af-lab-2_echo-1 \
        --state drain --timeout 60 [--wait-up] [--check]

Reads `show servers state <backend>` first and sends `set server <backend>/<server> state ...`
only when the server is not in that state already. With drain, waits (at most --timeout
seconds) until the server has no current session and nothing queued (`show stat`). With
--wait-up and ready, waits until the health check sees the server UP. --check reads only.

A backend or server this gateway does not have (not in its configuration yet, or no more) is
not an error: it gets no traffic here, whatever the state asked for; it is reported as absent.

Prints one JSON object: changed, before, after (ready|drain|maint|absent), absent, operational
(UP, DOWN, ...), sessions (current sessions at the end), waited (seconds), timed_out, msg. Exit
status 0 when the state is as asked (a wait that timed out included: the caller decides), 1 on errors.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import socket
import sys
import time

# srv_admin_state bits (HAProxy's enum srv_admin): forced maintenance and forced drain are what
# `set server ... state` sets and clears; the other bits (inherited, configuration, DNS) are not ours.
FMAINT = 0x01
FDRAIN = 0x08
OPERATIONAL = {0: "DOWN", 1: "STARTING", 2: "UP", 3: "STOPPING"}
POLL = 0.5


class Failure(Exception):
    pass


class Absent(Exception):
    """The gateway has no such backend or server."""


def ask(path: str, command: str) -> str:
    """One command on the runtime API (non-interactive mode: the socket closes after the answer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def server_state(path: str, backend: str, server: str) -> dict:
    answer = ask(path, f"show servers state {backend}")
    lines = [ln for ln in answer.splitlines() if ln.strip()]
    if answer.strip() == "Can't find backend.":
        raise Absent(f"this gateway has no backend {backend}")
    if not lines or not lines[0].strip().isdigit():
        raise Failure(f"HAProxy: {answer.strip() or 'no answer'} (backend {backend})")
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        fields = line.split()
        # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
        if len(fields) >= 7 and fields[1] == backend and fields[3] == server:
            admin = int(fields[6])
            if admin & FMAINT:
                state = "maint"
            elif admin & FDRAIN:
                state = "drain"
            else:
                state = "ready"
            return {"state": state, "operational": OPERATIONAL.get(int(fields[5]), fields[5]), "admin": admin}
    raise Absent(f"backend {backend} has no server {server} on this gateway")


def sessions(path: str, backend: str, server: str) -> int:
    """Current sessions plus queued requests of the server (`show stat`: scur + qcur)."""
    rows = csv.DictReader(io.StringIO(ask(path, "show stat").lstrip("# ")))
    for row in rows:
        if row.get("pxname") == backend and row.get("svname") == server:
            return int(row.get("scur") or 0) + int(row.get("qcur") or 0)
    raise Failure(f"backend {backend} has no server {server} in show stat")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--state", required=True, choices=["ready", "drain", "maint"])
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--wait-up", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    result = {"changed": False, "backend": args.backend, "server": args.server, "wanted": args.state,
              "absent": False, "waited": 0.0, "timed_out": False}
    try:
        if not os.path.exists(args.socket):
            if args.check:  # check mode before HAProxy is installed: nothing to read yet
                result.update(msg=f"{args.socket} does not exist yet (check mode)", before=None, after=None)
                print(json.dumps(result))
                return 0
            raise Failure(f"{args.socket} does not exist: is HAProxy (the gateway role) running here?")
        before = server_state(args.socket, args.backend, args.server)
        result["before"] = before["state"]
        result["changed"] = before["state"] != args.state
        if result["changed"] and not args.check:
            answer = ask(args.socket, f"set server {args.backend}/{args.server} state {args.state}").strip()
            if answer:
                raise Failure(f"HAProxy refused the state {args.state}: {answer}")
        now = before if args.check else server_state(args.socket, args.backend, args.server)
        if not args.check and now["state"] != args.state:
            raise Failure(f"the server is {now['state']} after setting it to {args.state}")
        result["after"] = args.state if args.check else now["state"]
        result["operational"] = now["operational"]

        start = time.monotonic()
        deadline = start + args.timeout
        if args.state == "drain" and not args.check:
            result["sessions"] = left = sessions(args.socket, args.backend, args.server)
            while left > 0 and time.monotonic() < deadline:
                time.sleep(POLL)
                result["sessions"] = left = sessions(args.socket, args.backend, args.server)
            result["timed_out"] = left > 0
        elif args.state == "ready" and args.wait_up and not args.check:
            while now["operational"] != "UP" and time.monotonic() < deadline:
                time.sleep(POLL)
                now = server_state(args.socket, args.backend, args.server)
            result["operational"] = now["operational"]
            result["timed_out"] = now["operational"] != "UP"
        result["waited"] = round(time.monotonic() - start, 1)
        if result["timed_out"]:
            what = f"{result.get('sessions')} session(s) left" if args.state == "drain" else result["operational"]
            result["msg"] = f"{args.backend}/{args.server}: still {what} after {args.timeout:g} s"
        else:
            result["msg"] = f"{args.backend}/{args.server}: {result['before']} -> {result['after']}"
    except Absent as exc:
        result.update(before="absent", after="absent", absent=True, msg=f"{exc}: nothing to do")
    except (Failure, OSError, ValueError) as exc:
        result.update(failed=True, msg=str(exc))
        print(json.dumps(result))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
