"""Logging to stderr, plain for journald and terminals or JSON for machines."""

from __future__ import annotations

import json
import logging
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(_no_library_chatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# Libraries whose DEBUG and INFO lines carry what must never reach a log: aiosmtpd logs every
# command, AUTH exchanges included; aiosqlite and asyncpg log each statement with its
# parameters (addresses, which `forget` could not erase from a journal); aioimaplib logs the raw
# protocol, message contents included.
QUIET_LOGGERS = ("mail.log", "aiosqlite", "asyncpg", "aioimaplib")


def _no_library_chatter(record: logging.LogRecord) -> bool:
    """Also when something sets one of those loggers to DEBUG again: only their warnings pass."""
    if record.levelno >= logging.WARNING:
        return True
    return not any(record.name == name or record.name.startswith(name + ".") for name in QUIET_LOGGERS)
