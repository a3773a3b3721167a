"""What the running service tells about itself: the start-up lines, and `gdpr-proxy status`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.config.settings import Config
from proxy.store import StoreError
from proxy.store.base import today

if TYPE_CHECKING:
    from proxy.service.state import Service

log = logging.getLogger("gdpr_proxy.app")


def status_line(service: Service) -> str:
    errors = len(service.rules.errors)
    where = f"{service.config.listen.host}:{service.port}"
    return f"listening on {where}" + (f"; {errors} rule error(s), see gdpr-proxy status" if errors else "")


async def _upstream_reachable(config: Config) -> dict[str, Any]:
    if config.upstream is None:
        return {"reachable": None, "error": None}
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(config.upstream.host, config.upstream.effective_port), 3
        )
    except (OSError, TimeoutError) as exc:
        return {"reachable": False, "error": str(exc) or type(exc).__name__}
    writer.close()
    return {"reachable": True, "error": None}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone().isoformat(timespec="seconds") if moment else None


async def service_status(service: Service) -> dict[str, Any]:
    """What `gdpr-proxy status` shows; keys documented in proxy/cli_service.format_status."""
    day = today()
    await service.handler.flush_counts()  # so that status counts the message sent a second ago
    store: dict[str, Any] = {"where": service.config.store_display, "reachable": True, "error": None}
    try:
        counts = await asyncio.wait_for(service.store.counts_for(day), 5)
    except (StoreError, TimeoutError) as exc:  # status must still answer: that is when it is needed
        counts = {}
        store.update(reachable=False, error=str(exc) or "no answer within 5 s")
    watcher = None
    if service.watcher is not None:
        w = service.watcher.status()
        state = "connected" + (" (IDLE)" if w.idle_in_use else " (polling)") if w.connected else "disconnected"
        watcher = {
            "state": state,
            "last_check": _iso(w.last_check),
            "error": w.last_error,
            "messages_handled": w.messages_handled,
            "unreadable": {"count": w.unreadable, "last": w.last_unreadable},  # skipped, recorded in the store
        }
    bounces: dict[str, Any] = {"suspended": None, "sender_side": []}
    try:  # addresses suspended after temporary failures; what receiving servers hold against the user's set-up
        bounces = {
            "suspended": await asyncio.wait_for(service.store.suspended_count(), 5),
            "sender_side": await asyncio.wait_for(service.store.sender_side_warnings(), 5),
        }
    except (StoreError, TimeoutError):
        pass
    entries = await asyncio.to_thread(service.spool.entries)
    return {
        "pid": os.getpid(),
        "up_since": _iso(datetime.fromtimestamp(service.started_at, UTC)),
        "listen": f"{service.config.listen.host}:{service.port}",
        "capture_mode": service.upstream.captures,
        "upstream": {"description": service.upstream.description, **await _upstream_reachable(service.config)},
        "watcher": watcher,
        "today": {
            "day": day,
            "relayed": counts.get("relayed", 0),
            "refused": counts.get("refused", 0),
            "modified": counts.get("modified", 0),
            "suppressed": {
                name.removeprefix("suppressed."): n for name, n in counts.items() if name.startswith("suppressed.")
            },
            "refused_recipients": {
                name.removeprefix("refused_recipient."): n
                for name, n in counts.items()
                if name.startswith("refused_recipient.")
            },
            # first contacts sent with the footer's default words for a missing source or reason
            "unrecorded": {
                name.removeprefix("unrecorded."): n for name, n in counts.items() if name.startswith("unrecorded.")
            },
        },
        "store": store,
        "bounces": bounces,
        "queue": len(entries),
        "queue_entries": [
            {
                "id": e.id[:12],
                "age_seconds": int(time.time() - e.created),
                "kind": e.kind,
                "recipients": e.recipients,
                "attempts": e.attempts,
                "last_error": e.last_error,
            }
            for e in sorted(entries, key=lambda e: e.created)[:20]
        ],
        "rule_errors": [dataclasses.asdict(e) for e in service.rules.errors],
    }


def announce(service: Service) -> None:
    config = service.config
    where = f"{config.listen.host}:{service.port}"
    log.info(
        "gdpr-mail-proxy listening on %s (SMTP, %s)",
        where,
        "AUTH required" if config.smtp.require_auth else "no AUTH",
    )
    log.info("store: %s", config.store_display)
    log.info(
        "rules: %s",
        ", ".join(sorted(set(Path(p).parent.as_posix() for p in service.rules.current.sources.values()))),
    )
    if service.upstream.captures:
        log.info("CAPTURE MODE: no upstream server configured; messages are written to %s/new", config.capture_path)
    else:
        log.info("upstream: %s", service.upstream.description)
