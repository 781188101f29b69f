"""Resolve firewall sources on the host itself, read-only: prints {entry: [address, ...]} as JSON.

An entry is a host name (resolved with the host's own resolver, IPv4 and IPv6), an IP literal or
a CIDR (passed through). Any name that does not resolve is reported on stderr and the exit code
is 1: a firewall must not be written with a host missing.
Run by the firewall role as `python3 -c <this file> ENTRY...`.
"""

import ipaddress
import json
import socket
import sys


def resolve(entry):
    try:
        return [str(ipaddress.ip_network(entry, strict=False))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(entry, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0].split("%", 1)[0] for info in infos})


def main(entries):
    result, missing = {}, []
    for entry in entries:
        try:
            result[entry] = resolve(entry)
        except (socket.gaierror, UnicodeError) as exc:
            missing.append(f"{entry}: {exc}")
    if missing:
        sys.stderr.write("cannot resolve: " + "; ".join(missing) + "\n")
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
