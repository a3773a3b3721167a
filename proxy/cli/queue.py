"""`gdpr-proxy queue`: what waits for the upstream server, as Postfix users know it (mailq, postqueue -f)."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.outbound.spool import Spool, SpoolEntry
from proxy.service import control


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)}s"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_entries(entries: list[SpoolEntry], now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    lines = []
    for e in sorted(entries, key=lambda e: e.created):
        what = {"notice": "notice for you", "bounce": "bounce for you"}.get(e.kind, ", ".join(e.recipients))
        retry = "now" if e.next_attempt <= now else f"in {_age(e.next_attempt - now)}"
        lines.append(f"{e.id[:12]}  {_age(now - e.created):>6}  {what}")
        lines.append(f"              attempts {e.attempts}, next {retry}; last error: {e.last_error or '-'}")
    return lines


def cmd_queue(args: argparse.Namespace, config: Config) -> int:
    spool = Spool(config.queue_path)
    if args.action == "delete":
        if not args.id:
            raise UserError("queue delete needs the id of the entry (see gdpr-proxy queue)")
        try:
            entry = spool.find(args.id)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None
        spool.remove(entry)
        print(f"{entry.id[:12]}: deleted, it will not be sent ({', '.join(entry.recipients)})")
        return 0
    if args.action == "flush":
        count = spool.retry_now()
        try:
            asyncio.run(control.query(control.socket_path(config.data_path), "flush"))
        except control.ControlError as exc:
            raise UserError(f"{count} message(s) queued, but the relay is not running ({exc}); start it") from None
        print(f"{count} message(s) queued: the relay is trying them now")
        return 0
    entries = spool.entries()
    for line in format_entries(entries):
        print(line)
    print(f"{len(entries)} message(s) in the queue {config.queue_path}")
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("queue", help="list the messages waiting for your mail server; flush; delete ID")
    p.add_argument("action", nargs="?", choices=["flush", "delete"], help="flush: try now; delete ID: drop one")
    p.add_argument("id", nargs="?", help="the id `gdpr-proxy queue` shows (its first characters are enough)")
    p.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file (as before the command)")
    p.set_defaults(func=cmd_queue)
