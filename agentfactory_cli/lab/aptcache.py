"""A package cache shared by every lab and molecule test host, without sharing apt's lock.

Hosts cannot mount one cache directory together: apt locks /var/cache/apt/archives and a
second host installing at the same time fails with "Could not get lock". So each host mounts
its own directory, seeded with hard links from a common pool, and whatever it downloaded is
linked back into the pool the next time the cache is touched. Hard links cost no disk space.

    python -m agentfactory_cli.lab.aptcache molecule/X/molecule.yml...   # before a molecule run
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agentfactory_cli.paths import state_dir


def cache_root() -> Path:
    return state_dir() / "apt-cache"


def _link_missing(src_dir: Path, dst_dir: Path) -> int:
    linked = 0
    for deb in src_dir.glob("*.deb"):
        target = dst_dir / deb.name
        if not target.exists():
            try:
                os.link(deb, target)
                linked += 1
            except OSError:
                pass  # a concurrent run linked it first, or the file just went away
    return linked


def collect() -> int:
    """Link every host's downloaded packages into the pool."""
    pool = cache_root() / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    hosts = cache_root() / "hosts"
    return sum(_link_missing(d, pool) for d in hosts.glob("*") if d.is_dir())


def host_dir(name: str) -> Path:
    """A host's own cache directory, filled from the pool."""
    collect()
    path = cache_root() / "hosts" / name
    (path / "partial").mkdir(parents=True, exist_ok=True)
    _link_missing(cache_root() / "pool", path)
    return path


def prepare_scenario(molecule_yml: Path) -> list[Path]:
    """Seed the cache directory of every platform a molecule scenario declares."""
    import yaml

    platforms = (yaml.safe_load(molecule_yml.read_text()) or {}).get("platforms") or []
    return [host_dir(p["name"]) for p in platforms if "name" in p]


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        prepare_scenario(Path(arg))
