"""The user's decisions on uncertain replies, read from the mailbox: moved to a GDPR folder, or flagged.

A reply waiting for review is found by its Message-ID; the daily summary notice names the
review entries it covers in a header, so moving the summary decides every reply in it.  A
flag on a waiting reply in the INBOX means "opt-out" (the relay's own notices are flagged by
the relay and carry no reply's Message-ID, so they never count).  Once a day, the replies
still waiting are summarised in one notice in the INBOX.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import date
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from proxy.config.imap import ImapSettings
from proxy.outbound.notices import NOT_OPT_OUT_FOLDER, OPT_OUT_FOLDER, REVIEW_HEADER, NoticeBox
from proxy.rights.subject_rights import forget
from proxy.store import Store
from proxy.watcher.imap.connection import FolderUnavailable, ImapConnection, ImapError

log = logging.getLogger(__name__)


async def decide(store: Store, entry: dict[str, Any], opt_out: bool) -> None:
    """What `gdpr-proxy review confirm|dismiss` does, for one review entry."""
    await store.set_verdict_status(entry["id"], "confirmed" if opt_out else "dismissed")
    address = entry["address"]
    if opt_out and entry["verdict"] == "erasure":
        await forget(store, address, source="review")
    elif opt_out:
        await store.add_suppression("address", address, "opt-out", "review", str(entry["evidence"])[:200])
    else:
        await store.remove_suppression_if("address", address, "review")


def _headers(item: dict[str, Any]) -> tuple[str | None, list[int]]:
    raw = next((v for k, v in item.items() if k.startswith("BODY[") and isinstance(v, bytes | bytearray)), b"")
    header = BytesHeaderParser().parsebytes(bytes(raw))
    ids = [int(n) for n in re.findall(r"\d+", str(header.get(REVIEW_HEADER, "")))]
    mid = str(header.get("Message-ID", "")).strip() or None
    return mid, ids


class MailboxDecisions:
    def __init__(self, settings: ImapSettings, store: Store, notices: NoticeBox, state: Path, every: float = 60.0):
        self.settings = settings
        self.store = store
        self.notices = notices
        self.state = state  # when the last summary went out, and which entries it listed
        self.every = every

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.round()
            except (ImapError, OSError, TimeoutError) as exc:
                log.warning("reading your review decisions from the mailbox: %s", exc)
            except Exception:
                log.exception("reading your review decisions from the mailbox failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)

    async def round(self, today: date | None = None) -> int:
        """Apply the decisions found; send the daily summary when due; returns how many were decided."""
        pending = {v["id"]: v for v in await self.store.verdicts("pending") if v["verdict"] == "uncertain"}
        decided = 0
        if pending:
            decided = await self._read_decisions(pending)
        waiting = [v for i, v in pending.items() if v.get("status") == "pending"]
        await asyncio.to_thread(self._summary_if_due, waiting, today or date.today())
        return decided

    async def _read_decisions(self, pending: dict[int, dict[str, Any]]) -> int:
        by_message_id = {v["message_id"]: v for v in pending.values() if v.get("message_id")}
        conn = ImapConnection(self.settings)
        await conn.open()
        decided = 0
        try:
            places = ((OPT_OUT_FOLDER, True, "ALL"), (NOT_OPT_OUT_FOLDER, False, "ALL"), ("INBOX", True, "FLAGGED"))
            for folder, opt_out, which in places:
                try:
                    await conn.select(folder)
                except FolderUnavailable:
                    if folder != "INBOX":
                        await conn.create(folder)  # so that the user finds the folder to move replies to
                    continue
                for uid in await conn.uid_search(which):
                    item = await conn.uid_fetch(uid, "BODY.PEEK[HEADER]")
                    if item is None:
                        continue
                    mid, ids = _headers(item)
                    if which == "FLAGGED":
                        ids = []  # only a reply itself counts when flagged, never a summary
                    entries = [pending[i] for i in ids if i in pending]
                    if mid in by_message_id:
                        entries.append(by_message_id[mid])
                    for entry in entries:
                        if entry.get("status") != "pending":
                            continue
                        await decide(self.store, entry, opt_out)
                        entry["status"] = "decided"
                        decided += 1
                        log.info("review #%d decided in the mailbox (%s): %s", entry["id"], folder, opt_out)
        finally:
            await conn.close()
        return decided

    def _summary_if_due(self, waiting: list[dict[str, Any]], today: date) -> None:
        try:
            state = json.loads(self.state.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("day") == today.isoformat():
            return
        fresh = [v for v in waiting if v["id"] not in set(state.get("listed", []))]
        if not fresh:
            return
        self.notices.uncertain_summary(waiting)
        listed = sorted(set(state.get("listed", [])) | {v["id"] for v in waiting})
        self.state.write_text(json.dumps({"day": today.isoformat(), "listed": listed}))
