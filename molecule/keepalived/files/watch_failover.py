"""Wait until the floating address has moved, and say when (the time, from the clock every
container of this machine shares). Bounded by TIMEOUT seconds.

    python3 watch_failover.py address 198.18.47.250 TIMEOUT     # on the new holder: on its interface
    python3 watch_failover.py http URL EXPECTED TIMEOUT         # on a client: answered by the new holder

Prints one JSON object: at (epoch seconds, null on timeout), polls, errors (failed requests).
Exit 0 when seen, 1 on timeout.
"""

import json
import subprocess
import sys
import time
import urllib.request


def holds(address):
    listing = subprocess.run(["ip", "-j", "-4", "address", "show"], capture_output=True, text=True, check=True)
    return any(info.get("local") == address for link in json.loads(listing.stdout) for info in link["addr_info"])


def answered_by(url, expected):
    try:
        with urllib.request.urlopen(url, timeout=0.2) as answer:
            return answer.read().decode().strip() == expected, False
    except OSError:
        return False, True


def main(argv):
    mode, args, timeout = argv[0], argv[1:-1], float(argv[-1])
    deadline = time.time() + timeout
    polls = errors = 0
    while time.time() < deadline:
        polls += 1
        if mode == "address":
            seen = holds(args[0])
        else:
            seen, failed = answered_by(args[0], args[1])
            errors += failed
        if seen:
            print(json.dumps({"at": time.time(), "polls": polls, "errors": errors}))
            return 0
        time.sleep(0.01)
    print(json.dumps({"at": None, "polls": polls, "errors": errors}))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
