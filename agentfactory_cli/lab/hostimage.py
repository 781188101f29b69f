"""Build the lab's "bare host" image locally: Debian 12 with systemd, sshd and python3.

No image registry is reachable from our machines, so the image is made from Debian's own
packages with debootstrap and imported into the local Docker engine. Lab hosts and molecule
scenarios both run it. The recipe's hash is stored as a label, so a changed recipe rebuilds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from agentfactory_cli.errors import LabError
from agentfactory_cli.paths import state_dir

IMAGE = os.environ.get("AGENTFACTORY_HOST_IMAGE", "agentfactory/testhost:bookworm")
SUITE = "bookworm"
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "sudo", "openssh-server",
    "ca-certificates", "iproute2", "procps", "curl", "gnupg",
]
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Files written into the root filesystem after debootstrap, relative to its root.
_FILES = {
    # Hosts keep the packages they download, so a cache mounted here is filled and reused.
    "etc/apt/apt.conf.d/10agentfactory-keep-debs": (
        'APT::Keep-Downloaded-Packages "true";\n'
        'Binary::apt::APT::Keep-Downloaded-Packages "true";\n'
    ),
    # Several hosts share one package cache: wait for its lock instead of failing.
    "etc/apt/apt.conf.d/10agentfactory-lock-timeout": 'DPkg::Lock::Timeout "300";\n',
    "etc/ssh/sshd_config.d/agentfactory.conf": (
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    ),
}
# Units that have nothing to do in a container and only slow the boot or fail it.
_MASKED_UNITS = [
    "getty@tty1.service", "console-getty.service", "systemd-remount-fs.service",
    "dev-hugepages.mount", "sys-fs-fuse-connections.mount", "systemd-firstboot.service",
]


def recipe_hash(mirror: str) -> str:
    text = repr((SUITE, PACKAGES, sorted(_FILES.items()), _MASKED_UNITS, mirror, 2))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian mirror this machine itself uses (an on-prem mirror works the same way)."""
    env = os.environ.get("AGENTFACTORY_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for src in sources:
        for block in src.read_text(errors="replace").split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", block, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1).rstrip("/")
    for lst in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if lst.is_file():
            m = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", lst.read_text(), re.M)
            if m:
                return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def image_recipe_label(image: str = IMAGE) -> str | None:
    res = subprocess.run(
        ["docker", "image", "inspect", "--format",
         '{{ index .Config.Labels "agentfactory.recipe" }}', image],
        capture_output=True, text=True,
    )
    return res.stdout.strip() if res.returncode == 0 else None


def ensure_image(image: str = IMAGE, log=print) -> bool:
    """Build the host image unless an up-to-date one exists. Returns True when it built."""
    mirror = debian_mirror()
    return build_rootfs_image(
        image, recipe_hash(mirror), PACKAGES, lambda rootfs: _customise(rootfs, mirror),
        ['CMD ["/lib/systemd/systemd"]', "ENV container=docker"], log=log,
    )


def build_rootfs_image(image: str, recipe: str, packages: list[str], customise, changes: list[str],
                       log=print) -> bool:
    """debootstrap a minimal Debian, let `customise(rootfs)` adjust it, import it as `image`.

    Skipped when `image` exists with the same recipe label. Returns True when it built.
    """
    if image_recipe_label(image) == recipe:
        return False
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is not installed: run 'make deps' (or apt-get install debootstrap)")
    mirror = debian_mirror()
    log(f"Building image {image} from {mirror} (debootstrap, about a minute)...")
    build_root = state_dir() / "build"
    build_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build_root) as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
               SUITE, str(rootfs), mirror]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-15:])
            raise LabError(f"debootstrap failed (exit {res.returncode}):\n{tail}")
        customise(rootfs)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        change_args = [arg for c in [*changes, f"LABEL agentfactory.recipe={recipe}"] for arg in ("--change", c)]
        imp = subprocess.run(["docker", "import", *change_args, "-", image],
                             stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise LabError(f"docker import of {image} failed: {imp.stderr.strip()}")
    log(f"Built {image}.")
    return True


def strip_rootfs(rootfs: Path) -> None:
    """Leave out what a running system does not need: package lists, docs, manuals, locales."""
    for pattern in ("var/lib/apt/lists/*_*", "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
        for f in rootfs.glob(pattern):
            f.unlink()
    for rel in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        shutil.rmtree(rootfs / rel, ignore_errors=True)


def _customise(rootfs: Path, mirror: str) -> None:
    security = "http://deb.debian.org/debian-security"
    if "snapshot" not in mirror and not mirror.startswith("http://deb.debian.org"):
        security = mirror + "-security"  # on-prem mirrors usually sit side by side
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {mirror} {SUITE} main\n"
        f"deb {mirror} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n"
    )
    for rel, text in _FILES.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    units = rootfs / "etc/systemd/system"
    for unit in _MASKED_UNITS:
        link = units / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # Each container gets its own machine-id at boot.
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    # A bare host: no package lists and no cached packages baked in.
    for pattern in ("var/lib/apt/lists/*_*", "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
        for f in rootfs.glob(pattern):
            f.unlink()
