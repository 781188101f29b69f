"""agentfactory: roll out and run fleets of AI agents with Ansible."""

__version__ = "0.1.0"
