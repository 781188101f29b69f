"""Where the project and its runtime state live."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def project_root() -> Path:
    """The directory holding ansible.cfg, playbooks/ and roles/.

    The package ships inside the project (installed editable), so the default is the
    package's parent; AGENTFACTORY_HOME points the CLI at another checkout.
    """
    env = os.environ.get("AGENTFACTORY_HOME")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Runtime state (lab keys, runner artifacts, apt cache): never committed."""
    env = os.environ.get("AGENTFACTORY_STATE_DIR")
    return Path(env).resolve() if env else project_root() / ".agentfactory"


def ensure_collection_link() -> None:
    """Make the project importable as the collection agentfactory.fleet (FQCN module names).

    ansible.cfg puts ./.ansible/collections on the collections path; the project root itself
    is the collection, so a link there is all it takes (ansible-lint makes the same link).
    """
    root = project_root()
    link = root / ".ansible" / "collections" / "ansible_collections" / "agentfactory" / "fleet"
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # made by a concurrent run
        link.symlink_to(root, target_is_directory=True)
