"""Store targets as the config names them: a file path or a PostgreSQL URL, and how to show one."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def is_postgresql_url(target: object) -> bool:
    return isinstance(target, str) and target.lower().startswith(POSTGRESQL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return "postgresql://(unreadable URL)"
