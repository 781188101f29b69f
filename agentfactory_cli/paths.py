"""Where the project and its runtime state live."""

from __future__ import annotations

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
