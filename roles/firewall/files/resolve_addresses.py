"""Resolve firewall sources on the host itself, read-only: prints {"resolved": {entry: [address,
...]}, "unresolved": [entry, ...]} as JSON.

An entry is a host name (resolved with the host's own resolver, IPv4 and IPv6), an IP literal or
a CIDR (passed through). The entries before `--hosts` are the operator's (SSH, operator and
client sources): one that does not resolve is reported on stderr and the exit code is 1, a
firewall must not be written with them missing. The entries after it are inventory hosts: one
that does not resolve (a host that is down, whose name its DNS dropped) is left out and listed
as unresolved, so it is shut out until the next run instead of failing every other host.
Run by the firewall role as `python3 -c <this file> ENTRY... --hosts ENTRY...`.
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


def main(argv):
    split = argv.index("--hosts") if "--hosts" in argv else len(argv)
    required, hosts = argv[:split], [h for h in argv[split + 1 :] if h not in argv[:split]]
    result, missing, unresolved = {}, [], []
    for entry in required + hosts:
        try:
            result[entry] = resolve(entry)
        except (socket.gaierror, UnicodeError) as exc:
            if entry in hosts:
                result[entry] = []
                unresolved.append(entry)
            else:
                missing.append(f"{entry}: {exc}")
    if missing:
        sys.stderr.write("cannot resolve: " + "; ".join(missing) + "\n")
        return 1
    sys.stdout.write(json.dumps({"resolved": result, "unresolved": unresolved}, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
