"""The catalog's built-in defaults: the one place they are written.

Pure data, no imports, so that both sides read it: the fleet model on the controller
(plugins/plugin_utils/catalog.py, under ``agentfactory_agent_defaults`` and each agent's own
fields) and the agent_health module on the hosts, for an agent it is given only in part.
"""

from __future__ import annotations

BUILTIN_DEFAULTS = {
    "runtime": "docker",
    "image_source": "registry",
    "command": [],
    "replicas": 1,
    "port": 8080,
    "hosts": "agent_hosts",
    "env": {},
    "secrets": {},
    "config": {},
    "health": {"path": "/healthz", "interval": 10, "timeout": 5, "retries": 3},
    "metrics": {"path": "/metrics"},
    "resources": {},
    "capabilities": [],
    "update": {"batch": 1, "health_timeout": 60, "rollback": True},
}
