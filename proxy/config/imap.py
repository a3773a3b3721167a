"""How the reply watcher reaches the user's mailbox (the ``imap:`` section of the config)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

# RFC 2177: servers may drop an IDLE connection after 30 minutes without a command; stay
# safely under the 29 minutes the RFC recommends.
IDLE_RENEW_LIMIT = 1740


@dataclass(frozen=True)
class ImapSettings:
    host: str
    username: str
    port: int | None = None  # 993 for tls, 143 otherwise
    security: Literal["tls", "starttls", "none"] = "tls"
    password_env: str | None = None
    password_file: str | None = None
    password_credential: str | None = None
    oauth2_command: str | None = None  # prints an OAuth2 access token (Gmail, Microsoft 365)
    ca_file: str | None = None  # for a server whose certificate comes from a private CA
    folders: tuple[str, ...] = ("INBOX",)
    use_idle: bool = True
    idle_renew_seconds: int = 1500
    poll_seconds: int = 60
    first_scan_days: int = 30
    max_part_bytes: int = 65536
    timeout_seconds: float = 30.0

    @property
    def account(self) -> str:
        """The checkpoint key: one mailbox of one server."""
        return f"{self.username}@{self.host}"

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    @property
    def has_password(self) -> bool:
        return bool(self.password_env or self.password_file or self.password_credential)

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.host:
            yield "host", "must not be empty"
        if not self.username:
            yield "username", "must not be empty"
        if self.port is not None and not 0 < self.port < 65536:
            yield "port", f"must be between 1 and 65535, got {self.port}"
        if not self.has_password and not self.oauth2_command:
            yield (
                "password_env",
                ("no way to log in: set password_env, password_file, password_credential or oauth2_command"),
            )
        if self.has_password and self.oauth2_command:
            yield "oauth2_command", "set either a password source or oauth2_command, not both"
        if self.security == "none" and not _is_loopback(self.host):
            yield (
                "security",
                (
                    "'none' would send the password in clear over the network; "
                    "use 'tls' or 'starttls' (only a loopback host may use 'none')"
                ),
            )
        if not self.folders:
            yield "folders", "must name at least one folder"
        if len(set(self.folders)) != len(self.folders):
            yield "folders", "lists a folder twice"
        if not 0 < self.idle_renew_seconds < IDLE_RENEW_LIMIT:
            yield (
                "idle_renew_seconds",
                (f"must be between 1 and {IDLE_RENEW_LIMIT - 1} (servers may drop an IDLE after 29 minutes)"),
            )
        if self.poll_seconds <= 0:
            yield "poll_seconds", "must be greater than 0"
        if self.first_scan_days <= 0:
            yield "first_scan_days", "must be greater than 0"
        if self.max_part_bytes < 1024:
            yield "max_part_bytes", "must be at least 1024"
        if self.timeout_seconds <= 0:
            yield "timeout_seconds", "must be greater than 0"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
