"""Filters for credentials: thin shims over plugin_utils/security.py (tested there)."""

from __future__ import annotations

from ansible_collections.agentfactory.fleet.plugins.plugin_utils import security as _security
from ansible_collections.agentfactory.fleet.plugins.plugin_utils.filtershim import filter_shim


class FilterModule:
    """agentfactory_* filters for web configs and htpasswd files."""

    def filters(self):
        return {
            # password | agentfactory_bcrypt(context, rounds) -> a stable bcrypt hash (idempotent configs)
            "agentfactory_bcrypt": filter_shim(_security.bcrypt_hash, _security.SecurityError),
            # {job, tls, username, password} | agentfactory_scrape_client(ca_file, secrets_dir)
            #   -> {scheme, tls_config, basic_auth} of a Prometheus scrape job
            "agentfactory_scrape_client": filter_shim(_security.scrape_client, _security.SecurityError),
            # {user: password} | agentfactory_basic_auth_hashes(context, rounds) -> {user: bcrypt hash}
            "agentfactory_basic_auth_hashes": filter_shim(_security.basic_auth_hashes, _security.SecurityError),
        }
