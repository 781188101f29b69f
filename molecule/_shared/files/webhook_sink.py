#!/usr/bin/env python3
"""Test helper: a webhook receiver that appends every POSTed JSON body to a file, one per line.

Molecule scenarios run it inside a test host (loopback only) so Alertmanager's webhook
notifications can be checked. Not part of any role.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 5001
LOG = sys.argv[2] if len(sys.argv) > 2 else "/var/tmp/webhook-sink.jsonl"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            record = json.loads(body)
        except ValueError:
            record = {"invalid": body.decode(errors="replace")}
        record["_path"] = self.path
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
