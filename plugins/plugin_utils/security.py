"""Credentials helpers shared by the roles (through filter plugins) and the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac

# bcrypt's own base64 alphabet (./A-Za-z0-9), in place of the standard one (A-Za-z0-9+/).
_B64_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_BCRYPT = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_BCRYPT = bytes.maketrans(_B64_STD, _B64_BCRYPT)
# Cost 10: every scrape is checked against the hash; higher costs burn the exporters' CPU.
DEFAULT_ROUNDS = 10


class SecurityError(ValueError):
    """A credential that cannot be used (empty password, bad cost)."""


def bcrypt_hash(password: str, context: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """A bcrypt hash of `password` that is the same on every run for the same `context`.

    A random salt would rewrite every web config on every run (never idempotent). The salt is
    derived instead, keyed by the password, from `context` (say "node_exporter/host-1/prometheus"),
    so equal passwords in different places still hash differently and the salt reveals nothing.
    """
    import bcrypt  # imported late: only the roles that hash need it

    if not isinstance(password, str) or not password:
        raise SecurityError(f"bcrypt_hash: the password for {context!r} is empty")
    if not 4 <= int(rounds) <= 31:
        raise SecurityError(f"bcrypt_hash: rounds must be 4-31 (got {rounds})")
    raw = hmac.new(password.encode(), b"agentfactory-bcrypt-salt:" + context.encode(), hashlib.sha256).digest()[:16]
    salt_chars = base64.b64encode(raw).rstrip(b"=").translate(_TO_BCRYPT)  # 22 characters
    salt = b"$2b$%02d$" % int(rounds) + salt_chars
    return bcrypt.hashpw(password.encode(), salt).decode()


def basic_auth_hashes(users: dict[str, str], context: str, rounds: int = DEFAULT_ROUNDS) -> dict[str, str]:
    """{user: password} -> {user: stable bcrypt hash}, each salted by `context` and the user."""
    if not isinstance(users, dict):
        raise SecurityError(f"basic auth users for {context!r} must be a mapping of user to password")
    return {user: bcrypt_hash(password, f"{context}/{user}", rounds) for user, password in users.items()}


def scrape_client(client: dict, ca_file: str, secrets_dir: str) -> dict:
    """How Prometheus reaches one kind of target: the `scheme`, `tls_config` and `basic_auth`
    of a scrape job (or an alertmanagers entry), from {job, tls, username, password}.

    The password itself stays out of prometheus.yml: it is read from <secrets_dir>/<job>.
    """
    for key in ("job", "tls", "username", "password"):
        if key not in client:
            raise SecurityError(f"scrape client {client.get('job', '?')!r} has no {key!r}")
    settings: dict = {"scheme": "https" if _truthy(client["tls"]) else "http"}
    if _truthy(client["tls"]):
        settings["tls_config"] = {"ca_file": ca_file}
    if client["password"]:
        settings["basic_auth"] = {"username": client["username"], "password_file": f"{secrets_dir}/{client['job']}"}
    return settings


def _truthy(value) -> bool:
    """Ansible's notion of a boolean, for values that arrive as strings from templating."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
