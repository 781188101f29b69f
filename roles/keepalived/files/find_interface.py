"""Find the interface a floating IPv4 address belongs on, read-only (run by the keepalived role
on the host, in check mode too).

    python3 find_interface.py 172.30.0.250/24 [INTERFACE]

Prints one JSON object: interface (the one whose IPv4 network contains the address, or the one
given), address (this host's own address there, without prefix: keepalived's unicast source) and
holds (whether the floating address is on the host now). Exit 1 with a message on stderr when
no interface fits, the given one does not exist or has no IPv4 address.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys


def addresses(ip_json: str) -> list[tuple[str, ipaddress.IPv4Interface]]:
    """(interface, address/prefix) of every IPv4 address in `ip -j -4 address show` output."""
    found = []
    for link in json.loads(ip_json or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and "local" in info:
                found.append((link["ifname"], ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")))
    return found


def choose(virtual: str, found: list[tuple[str, ipaddress.IPv4Interface]], wanted: str = "") -> dict:
    vip = ipaddress.IPv4Interface(virtual)
    holds = any(addr.ip == vip.ip for _name, addr in found)
    # The host's own addresses: the floating one may be there too (this host holds it now).
    own = [(name, addr) for name, addr in found if addr.ip != vip.ip]
    if wanted:
        on_it = [addr for name, addr in own if name == wanted]
        if not on_it and wanted not in {name for name, _addr in found}:
            raise LookupError(f"interface {wanted} has no IPv4 address on this host (or does not exist)")
        inside = [addr for addr in on_it if vip.ip in addr.network]
        chosen = (inside or on_it)[0] if (inside or on_it) else None
        return {"interface": wanted, "address": str(chosen.ip) if chosen else "", "holds": holds}
    inside = [(name, addr) for name, addr in own if vip.ip in addr.network]
    if not inside:
        networks = ", ".join(f"{name} {addr.network}" for name, addr in own) or "none"
        raise LookupError(f"no interface of this host has an IPv4 network containing {vip.ip} (found: {networks})")
    name, addr = inside[0]
    return {"interface": name, "address": str(addr.ip), "holds": holds}


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: find_interface.py ADDRESS/PREFIX [INTERFACE]", file=sys.stderr)
        return 2
    try:
        listing = subprocess.run(["ip", "-j", "-4", "address", "show"], check=True, capture_output=True, text=True)
        result = choose(argv[0], addresses(listing.stdout), argv[1] if len(argv) == 2 else "")
    except (LookupError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
