"""The fleet model, as the CLI imports it: from the collection agentfactory.fleet.

Validation, normalisation and placement live in plugins/plugin_utils so that a collection built
with `ansible-galaxy collection build` carries them to AWX or any controller; the CLI reads
the very same code through Ansible's own collection loader, never a copy.

    from agentfactory_cli.model import catalog, fleet
"""

from __future__ import annotations

from agentfactory_cli.paths import collections_root


def _install_collection_loader() -> None:
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(collections_root())])


_install_collection_loader()

# The loader must be in place first: these names exist only through it.
from ansible_collections.agentfactory.fleet.plugins.plugin_utils import (  # noqa: E402
    catalog,
    firewall,
    fleet,
    gateway,
    placement,
    security,
    targets,
)

__all__ = ["catalog", "firewall", "fleet", "gateway", "placement", "security", "targets"]
