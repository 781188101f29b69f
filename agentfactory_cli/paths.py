"""Where the project and its runtime state live."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Where setup.py puts the project in a wheel: a collections directory of its own.
INSTALLED_COLLECTION = Path("share", "agentfactory", "collections", "ansible_collections", "agentfactory", "fleet")


def project_root() -> Path:
    """The directory holding ansible.cfg, playbooks/ and roles/.

    From a checkout (or an editable install) that is the package's parent; a wheel installs them
    as the collection agentfactory.fleet under <prefix>/share/agentfactory/collections
    (setup.py). AGENTFACTORY_HOME points the CLI at another checkout.
    """
    env = os.environ.get("AGENTFACTORY_HOME")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "ansible.cfg").exists():
        return checkout
    installed = Path(sys.prefix) / INSTALLED_COLLECTION
    return installed if (installed / "ansible.cfg").exists() else checkout


def _is_checkout(root: Path) -> bool:
    return (root / "agentfactory_cli").is_dir()


def state_dir() -> Path:
    """Runtime state (lab keys, runner artifacts, apt cache): never committed, never inside the
    installed package. AGENTFACTORY_STATE_DIR, else .agentfactory in a checkout, else
    $XDG_STATE_HOME/agentfactory (default ~/.local/state/agentfactory)."""
    env = os.environ.get("AGENTFACTORY_STATE_DIR")
    if env:
        return Path(env).resolve()
    root = project_root()
    if _is_checkout(root):
        return root / ".agentfactory"
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "agentfactory"


def collections_root() -> Path:
    """The directory whose ansible_collections/agentfactory/fleet is this project.

    A checkout commits the link .ansible/collections/ansible_collections/agentfactory/fleet -> the
    root; a wheel installs the project at <prefix>/share/agentfactory/collections/
    ansible_collections/agentfactory/fleet itself (setup.py).
    """
    root = project_root()
    if root.parent.parent.name == "ansible_collections":
        return root.parents[2]
    return root / ".ansible" / "collections"
