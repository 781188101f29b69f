"""The catalog's built-in defaults and the agent containers' labels: the one place they are written.

Pure data, no imports, so that both sides read it: the fleet model on the controller
(plugins/plugin_utils/catalog.py, under ``agentfactory_agent_defaults`` and each agent's own
fields) and the modules on the hosts (agent_health, for an agent it is given only in part;
agent_containers).
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

# The labels of an agent's containers: the contract between the agent role's modules
# (agent_containers writes them, agent_health reads them) and anyone listing containers.
LABELS = {
    "agent": "agentfactory.agent",
    "replica": "agentfactory.replica",
    "config_hash": "agentfactory.config-hash",
    "image": "agentfactory.image",
    "host_port": "agentfactory.host-port",
    "health_path": "agentfactory.health-path",
    "config_path": "agentfactory.config-path",
    # the agent's own environment (JSON), without the AGENT_* contract: what a rollback restores
    "env": "agentfactory.env",
    # sha256 of the body the container was created with (agent_containers compares it)
    "spec": "agentfactory.spec",
}
