#!/usr/bin/python3
"""Stand-in agent replica for the gateway scenario (no Docker needed).

    echo_backend.py HOST FIRST_PORT INDEX     # listens on FIRST_PORT + INDEX, replica echo-INDEX

GET /healthz -> 200 "ok"; GET /slow?seconds=N -> waits N seconds, then answers like /;
GET /headers -> the request's header names and X-Gateway-Client, one per line (lower case);
anything else -> 200 "<host> echo-<index>", so a test can tell which replica answered.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOST, FIRST_PORT, INDEX = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ANSWER = f"{HOST} echo-{INDEX}\n".encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            body = b"ok\n"
        elif url.path == "/headers":
            names = sorted(name.lower() for name in self.headers)
            client = self.headers.get("X-Gateway-Client", "")
            body = ("\n".join(names) + f"\nclient={client}\n").encode()
        else:
            if url.path == "/slow":
                time.sleep(float(parse_qs(url.query).get("seconds", ["3"])[0]))
            body = ANSWER
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", FIRST_PORT + INDEX), Handler).serve_forever()
