"""Where the project and its runtime state live."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


def project_root() -> Path:
    """The directory holding ansible.cfg, playbooks/ and roles/.

    From a checkout (or an editable install) that is the package's parent; a wheel installs them
    under <prefix>/share/agentfactory (setup.py). AGENTFACTORY_HOME points the CLI at another
    checkout.
    """
    env = os.environ.get("AGENTFACTORY_HOME")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "ansible.cfg").exists():
        return checkout
    installed = Path(sys.prefix) / "share" / "agentfactory"
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
