"""From a classified reply to the store: who gets suppressed, and what is recorded.

A reply can only ever add suppressions or review entries: nothing a stranger writes can
unsuppress an address or grant consent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from proxy.addresses import AddressError, AddressPolicy, domain_of, normalise
from proxy.classify.classifier import Verdict, classify
from proxy.config.settings import Config
from proxy.outbound.upstream import Upstream
from proxy.relay.headers import message_id
from proxy.rights.subject_rights import handle_erasure_request
from proxy.rules.ruleset import RuleHolder
from proxy.store import Store
from proxy.watcher.confirm import confirmation_message
from proxy.watcher.imap.follow import FetchedMessage, ImapWatcher

log = logging.getLogger("gdpr_proxy.watcher")

ACTED_ON = {"opt-out", "erasure", "bounce"}


@dataclass
class Handled:
    verdict: Verdict
    suppressed: list[str] = field(default_factory=list)
    duplicate: bool = False


class ReplyProcessor:
    """The watcher's handler: classify each new message and update the store."""

    def __init__(self, store: Store, rules: RuleHolder, config: Config, upstream: Upstream | None = None):
        self.store = store
        self.rules = rules
        self.config = config
        self.upstream = upstream  # for the optional "you have been removed" note
        self.policy = AddressPolicy(config.addresses.strip_subaddress, config.addresses.subaddress_separators)
        self.watcher: ImapWatcher | None = None  # set when running against a mailbox

    def _normalise(self, address: str) -> str | None:
        try:
            return normalise(address, self.policy)
        except AddressError:
            return None

    async def __call__(self, message: FetchedMessage) -> None:
        handled = await self.handle(message.raw)
        if self.watcher is not None and handled.verdict.verdict in ACTED_ON and not handled.duplicate:
            await self._mark(message)

    async def handle(self, raw: bytes) -> Handled:
        rules = self.rules.current
        verdict = classify(raw, rules.reply_rules, rules.footer_fingerprints)
        mid = message_id(raw)
        if mid and await self.store.has_verdict_for(mid):
            return Handled(verdict, duplicate=True)
        handled = Handled(verdict)
        kind = verdict.verdict
        if kind in ("opt-out", "erasure", "uncertain"):
            await self._opt_out(verdict, mid, handled)
        elif kind == "bounce":
            await self._bounce(verdict, mid, handled)
        elif kind == "none" and verdict.sender:
            sender = self._normalise(verdict.sender)
            if sender:
                await self.store.note_reply(sender)
        label = f"<{mid}>" if mid else "<no Message-ID>"
        log.info("%s reply classified %s; %d address(es) suppressed", label, kind, len(handled.suppressed))
        return handled

    async def _opt_out(self, verdict: Verdict, mid: str | None, handled: Handled) -> None:
        """The replier and the original recipients of the message they answer."""
        people = [a for a in (self._normalise(x) for x in (verdict.sender, *verdict.addresses)) if a]
        originals = await self.store.recipients_of(verdict.in_reply_to)
        people = list(dict.fromkeys(people + answered_for(people[0] if people else None, originals)))
        if verdict.verdict == "erasure":
            for address in people:
                outcome = await handle_erasure_request(
                    self.store,
                    address,
                    self.config.retention,
                    verdict.evidence,
                    where=verdict.where,
                    message_id=mid,
                    language=verdict.language,
                    policy=self.policy,
                )
                handled.suppressed.append(address)
                log.info("%s", outcome)
            return
        if verdict.verdict == "uncertain":
            status = "pending"
            reason = "review" if self.config.watcher.uncertain == "suppress_until_reviewed" else None
        else:
            status = "applied"
            reason = verdict.verdict
        for address in people:
            await self.store.record_verdict(
                address, mid, verdict.verdict, verdict.evidence, verdict.where, verdict.language, status
            )
            if reason is None:
                continue
            if await self.store.add_suppression("address", address, reason, "watcher", verdict.evidence[:200]):
                handled.suppressed.append(address)
                if address == self._normalise(verdict.sender) and verdict.verdict == "opt-out":
                    await self._confirm(address, verdict, mid)
            if self.config.watcher.suppress_domain and verdict.verdict != "uncertain":
                await self.store.add_suppression(
                    "domain", domain_of(address), reason, "watcher", verdict.evidence[:200]
                )

    async def _confirm(self, address: str, verdict: Verdict, mid: str | None) -> None:
        """Once per address (only when newly suppressed), and only to the person who wrote."""
        if not self.config.watcher.confirm_opt_out or self.upstream is None or self.upstream.captures:
            return
        sender = self.config.sender
        note = confirmation_message(self.rules.current.answers, verdict.language, address, sender, mid)
        result = await self.upstream.deliver(sender.opt_out_address, [address], note, smtputf8=False)
        if result.refused:
            log.warning("opt-out confirmation not accepted upstream: %s", next(iter(result.refused.values())))

    async def _bounce(self, verdict: Verdict, mid: str | None, handled: Handled) -> None:
        for failed in verdict.addresses:
            address = self._normalise(failed)
            if not address:
                continue
            await self.store.record_verdict(
                address, mid, "bounce", verdict.evidence, verdict.where, verdict.language, "applied"
            )
            if await self.store.add_suppression("address", address, "bounce", "watcher", verdict.evidence[:200]):
                handled.suppressed.append(address)
        for failed in verdict.temporary_failures:
            address = self._normalise(failed)
            if address:
                await self.store.note_soft_bounce(address)

    async def _mark(self, message: FetchedMessage) -> None:
        assert self.watcher is not None
        settings = self.config.watcher
        try:
            if settings.flag_keyword:
                await self.watcher.add_keyword(message.folder, message.uid, settings.flag_keyword)
            if settings.move_to:
                await self.watcher.move(message.folder, message.uid, settings.move_to)
        except Exception as exc:  # flagging is a convenience; the verdict is already stored
            log.warning("could not flag or move UID %d in %s: %s", message.uid, message.folder, exc)


def answered_for(replier: str | None, originals: list[str]) -> list[str]:
    """The original recipients a reply speaks for.

    A message to one person: that person, whoever answers (an assistant, an alias).  A message
    to several: only those at the replier's own domain or its subdomains; an assistant at one
    company cannot opt out someone at another.
    """
    if len(originals) == 1:
        return originals
    if replier is None:
        return []
    domain = domain_of(replier)
    return [a for a in originals if _same_organisation(domain_of(a), domain)]


def _same_organisation(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def make_watcher(
    config: Config, store: Store, rules: RuleHolder, upstream: Upstream | None = None
) -> tuple[ImapWatcher, ReplyProcessor]:
    assert config.imap is not None
    processor = ReplyProcessor(store, rules, config, upstream)
    watcher = ImapWatcher(config.imap, store, processor)
    processor.watcher = watcher
    return watcher, processor
