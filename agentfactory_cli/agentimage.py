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

from agentfactory_cli import hostimage
from agentfactory_cli.paths import project_root

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
