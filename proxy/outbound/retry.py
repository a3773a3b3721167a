"""Retries what the spool holds, with back-off; re-checks each recipient first; tells the sender what failed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from proxy.config.settings import QueueConfig
from proxy.outbound.dsn import bounce_message
from proxy.outbound.notices import NoticeBox, Refusal
from proxy.outbound.spool import Spool, SpoolEntry
from proxy.outbound.upstream import Upstream
from proxy.store import StoreError

log = logging.getLogger("gdpr_proxy.retry")

# recipients -> those no longer allowed (opted out, erased, consumer without consent meanwhile)
Recheck = Callable[[list[str]], Awaitable[dict[str, Refusal]]]


class RetryRunner:
    def __init__(
        self,
        spool: Spool,
        upstream: Upstream,
        config: QueueConfig,
        hostname: str | None,
        record: Callable[[str | None, list[str]], Awaitable[None]] | None = None,
        recheck: Recheck | None = None,
        notices: NoticeBox | None = None,
    ):
        self.spool = spool
        self.upstream = upstream
        self.config = config
        self.hostname = hostname
        self.record = record  # marks delivered recipients as contacted, as the relay does
        self.recheck = recheck
        self.notices = notices
        self.wake = asyncio.Event()  # `gdpr-proxy queue flush`: try now, not at the next round

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("retry round failed")
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            try:
                await asyncio.wait(waits, timeout=min(self.config.retry_seconds, 30.0), return_when="FIRST_COMPLETED")
            finally:
                for w in waits:
                    w.cancel()
            self.wake.clear()

    async def run_once(self, now: float | None = None) -> int:
        """Try every due entry once; returns how many recipients were delivered."""
        delivered = 0
        for entry in await asyncio.to_thread(self.spool.due, now):
            delivered += await self._attempt(entry)
        return delivered

    def _label(self, entry: SpoolEntry) -> str:
        return f"<{entry.message_id}>" if entry.message_id else f"queue entry {entry.id}"

    def _expired(self, entry: SpoolEntry) -> bool:
        return time.time() - entry.created > self.config.give_up_after_hours * 3600

    async def _later(self, entry: SpoolEntry, error: str) -> None:
        entry.attempts += 1
        entry.last_error = error
        delay = min(self.config.retry_seconds * 2 ** (entry.attempts - 1), self.config.max_retry_seconds)
        entry.next_attempt = time.time() + delay
        await asyncio.to_thread(self.spool.save, entry)

    async def _attempt(self, entry: SpoolEntry) -> int:
        raw = await asyncio.to_thread(self.spool.message, entry)
        if (entry.is_notice or entry.is_bounce) and self.notices is not None:
            await self._hand_to_user(entry, raw)
            return 0
        if not entry.is_bounce and not entry.is_notice and self.recheck is not None:
            if not await self._still_allowed(entry, raw):
                return 0
        result = await self.upstream.deliver(entry.mail_from, entry.recipients, raw, entry.smtputf8)
        label = self._label(entry)
        temporary = [r for r, (code, _) in result.refused.items() if code < 500]
        permanent = {r: v for r, v in result.refused.items() if v[0] >= 500}
        if result.accepted:
            log.info("%s delivered from the queue to %d recipient(s)", label, len(result.accepted))
            if self.record is not None and not entry.is_bounce and not entry.is_notice:
                await self.record(entry.message_id, result.accepted)
        if self._expired(entry):
            permanent.update({r: result.refused[r] for r in temporary})
            temporary = []
        if permanent and entry.mail_from and not entry.is_bounce and not entry.is_notice:
            bounce = bounce_message(entry.mail_from, raw, permanent, self.hostname)
            await asyncio.to_thread(self.spool.put, "", [entry.mail_from], bounce, None, is_bounce=True)
        if permanent:
            log.warning("%s finally failed for %d recipient(s); sender notified", label, len(permanent))
        if temporary:
            entry.recipients = temporary
            await self._later(entry, "; ".join(f"{c} {t}" for c, t in (result.refused[r] for r in temporary)))
        else:
            await asyncio.to_thread(self.spool.remove, entry)
        return len(result.accepted)

    async def _still_allowed(self, entry: SpoolEntry, raw: bytes) -> bool:
        """Whoever opted out, was erased or lost consent while the copy waited is left out (and reported)."""
        assert self.recheck is not None
        try:
            refused = await self.recheck(entry.recipients)
        except StoreError as exc:
            # Never send to someone whose status is unknown: wait for the store.
            await self._later(entry, f"opt-out list cannot be read: {exc}")
            return False
        if not refused:
            return True
        log.info("%s: %d queued recipient(s) no longer allowed; left out", self._label(entry), len(refused))
        entry.recipients = [r for r in entry.recipients if r not in refused]
        if self.notices is not None:
            await asyncio.to_thread(self.notices.dropped_from_queue, entry.mail_from, raw, list(refused.values()))
        if entry.recipients:
            await asyncio.to_thread(self.spool.save, entry)
            return True
        await asyncio.to_thread(self.spool.remove, entry)
        return False

    async def _hand_to_user(self, entry: SpoolEntry, raw: bytes) -> None:
        """A notice or a bounce for the salesperson: into their INBOX, or mailed to them."""
        assert self.notices is not None
        done, error = await self.notices.deliver(entry, raw)
        if done:
            log.info("%s for the sender delivered (queue entry %s)", entry.kind, entry.id)
            await asyncio.to_thread(self.spool.remove, entry)
        elif self._expired(entry):
            log.error("%s for the sender given up after %d attempts: %s", entry.kind, entry.attempts + 1, error)
            await asyncio.to_thread(self.spool.remove, entry)
        else:
            await self._later(entry, error)
