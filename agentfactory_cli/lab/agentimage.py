"""Build the reference agent into a small container image, with no image registry involved.

A minimal Debian root filesystem with python3 and the agent's two libraries from Debian's own
packages, plus agents/reference/agent.py; imported into the local Docker engine. The lab loads
or pushes it to the hosts, as an operator would ship an agent built in their own CI.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from agentfactory_cli.lab import hostimage
from agentfactory_cli.paths import project_root, state_dir

REPOSITORY = "agentfactory/reference-agent"
PACKAGES = ["python3", "python3-prometheus-client", "python3-yaml"]
AGENT_UID = 10001  # the agent runs as this unprivileged user inside its container


def agent_source() -> Path:
    return project_root() / "agents" / "reference" / "agent.py"


def agent_version() -> str:
    m = re.search(r'^VERSION = "([^"]+)"', agent_source().read_text(), re.M)
    return m.group(1) if m else "0.0.0"


def image_ref(version: str | None = None) -> str:
    return f"{REPOSITORY}:{version or agent_version()}"


def ensure_agent_image(log=print) -> str:
    """Build the reference agent image for the current agent.py unless it exists. Returns its ref."""
    source = agent_source()
    code = source.read_bytes()
    recipe = hashlib.sha256(repr((PACKAGES, AGENT_UID, 1)).encode() + code).hexdigest()[:16]
    ref = image_ref()

    def customise(rootfs: Path) -> None:
        hostimage.strip_rootfs(rootfs)
        target = rootfs / "opt/agent/agent.py"
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        target.chmod(0o755)
        with open(rootfs / "etc/passwd", "a") as f:
            f.write(f"agent:x:{AGENT_UID}:{AGENT_UID}:agent:/nonexistent:/usr/sbin/nologin\n")
        with open(rootfs / "etc/group", "a") as f:
            f.write(f"agent:x:{AGENT_UID}:\n")

    hostimage.build_rootfs_image(
        ref, recipe, PACKAGES, customise,
        [
            'CMD ["python3", "/opt/agent/agent.py"]',
            f"USER {AGENT_UID}:{AGENT_UID}",
            "ENV AGENT_PORT=8080",
            "ENV AGENT_CONFIG=/etc/agent/config.yml",
            "ENV PYTHONUNBUFFERED=1",
            "EXPOSE 8080",
            f"LABEL org.opencontainers.image.version={agent_version()}",
        ],
        log=log,
    )
    return ref


def archive_path(version: str | None = None) -> Path:
    return state_dir() / "images" / f"reference-agent-{version or agent_version()}.tar"


def ensure_agent_archive(log=print) -> tuple[str, Path]:
    """The reference agent image as a `docker save` tarball, for hosts with no registry.

    Saved again only when the image changed (its id is kept beside the tarball).
    """
    from agentfactory_cli.lab.engine import docker, ensure_engine

    ensure_engine(log=log)
    ref = ensure_agent_image(log=log)
    image_id = docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    path = archive_path()
    stamp = path.with_suffix(".id")
    if path.exists() and stamp.exists() and stamp.read_text().strip() == image_id:
        return ref, path
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"Saving {ref} to {path}")
    tmp = path.with_suffix(".tmp")
    docker("save", "-o", str(tmp), ref)
    tmp.replace(path)
    stamp.write_text(image_id + "\n")
    return ref, path


def ensure_agent_variant(version: str, log=print) -> tuple[str, Path]:
    """Another version of the reference agent (same code, its version set to `version`) and its
    archive: what rolling-update tests and demos roll out. Built from the local image, no registry."""
    from agentfactory_cli.lab.engine import docker

    base = ensure_agent_image(log=log)
    ref = image_ref(version)
    if docker("image", "inspect", ref, check=False).returncode != 0:
        log(f"Building {ref} from {base}")
        dockerfile = f"FROM {base}\nENV AGENT_VERSION={version}\nLABEL org.opencontainers.image.version={version}\n"
        docker("build", "-q", "-t", ref, "-", input=dockerfile)
    path = archive_path(version)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        docker("save", "-o", str(tmp), ref)
        tmp.replace(path)
    return ref, path


if __name__ == "__main__":
    # `python -m agentfactory_cli.lab.agentimage`: build the image (used by `make molecule`).
    print(ensure_agent_image())
