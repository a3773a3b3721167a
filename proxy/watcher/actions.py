"""From a classified reply to the store: who gets suppressed, and what is recorded.

A reply can only ever add suppressions or review entries: nothing a stranger writes can
unsuppress an address or grant consent.  Bounces are read like a mail operator reads them:
only a recipient who is gone is suppressed (reason bounce, with the report's evidence);
temporary failures are counted and suspend an address for a while; failures caused by the
user's own set-up (DMARC, SPF, blocklists) never touch the recipient and warn the user.
Spam complaints suppress the person who complained (reason complaint).  Bounce suppressions
made before this reading existed are re-judged once from their recorded evidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from proxy.addresses import AddressError, AddressPolicy, domain_of, normalise
from proxy.classify import mimeparse
from proxy.classify.bounce import Bounce, Failure, parse_bounce, we_wrote_to
from proxy.classify.bounce_reasons import classify_failure, find_status
from proxy.classify.classifier import Verdict, classify
from proxy.classify.complaints import NOT_COMPLAINTS
from proxy.config.settings import Config
from proxy.outbound.upstream import Upstream
from proxy.relay.headers import message_id
from proxy.rights.subject_rights import handle_erasure_request
from proxy.rules.bounces import BounceRules
from proxy.rules.ruleset import RuleHolder
from proxy.store import Store
from proxy.watcher.confirm import confirmation_message
from proxy.watcher.imap.follow import FetchedMessage, ImapWatcher

log = logging.getLogger("gdpr_proxy.watcher")

ACTED_ON = {"opt-out", "erasure", "bounce", "complaint"}
REJUDGED_KEY = "bounces_rejudged_v1"  # meta key: old bounce suppressions re-judged once


@dataclass
class Handled:
    verdict: Verdict
    suppressed: list[str] = field(default_factory=list)
    duplicate: bool = False
    suspended: list[str] = field(default_factory=list)  # bounce: too many temporary failures
    sender_side: list[str] = field(default_factory=list)  # bounce: what is wrong with the user's set-up


class SenderProblems(Protocol):
    """Where warnings about the user's own set-up go besides the log (the notices to the user's INBOX)."""

    def sender_problem(self, details: str) -> object: ...


class ReplyProcessor:
    """The watcher's handler: classify each new message and update the store."""

    def __init__(self, store: Store, rules: RuleHolder, config: Config, upstream: Upstream | None = None):
        self.store = store
        self.rules = rules
        self.config = config
        self.upstream = upstream  # for the optional "you have been removed" note
        self.policy = AddressPolicy(config.addresses.strip_subaddress, config.addresses.subaddress_separators)
        self.watcher: ImapWatcher | None = None  # set when running against a mailbox
        self.notices: SenderProblems | None = None  # set by the service when notices to the user exist
        self._prepared = False

    def _normalise(self, address: str) -> str | None:
        try:
            return normalise(address, self.policy)
        except AddressError:
            return None

    async def __call__(self, message: FetchedMessage) -> None:
        handled = await self.handle(message.raw)
        if self.watcher is not None and handled.verdict.verdict in ACTED_ON and not handled.duplicate:
            await self._mark(message)

    async def prepare(self) -> None:
        """Once per start: lift suspensions that ran out, re-judge bounce suppressions of old releases."""
        self._prepared = True
        await self.store.lift_expired_suspensions()
        if await self.store.first_time(REJUDGED_KEY):
            lifted = await rejudge_bounce_suppressions(self.store, self.rules.current.bounce_rules)
            if lifted:
                log.info(
                    "%d bounce suppression(s) of an older release lifted: the failure was not permanent", len(lifted)
                )

    async def handle(self, raw: bytes) -> Handled:
        if not self._prepared:
            await self.prepare()
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
            await self._bounce(raw, verdict, mid, handled)
        elif kind == "complaint":
            await self._complaint(verdict, mid, handled)
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
                address, mid, verdict.verdict, verdict.review_note, verdict.where, verdict.language, status
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

    async def _bounce(self, raw: bytes, verdict: Verdict, mid: str | None, handled: Handled) -> None:
        rules = self.rules.current.bounce_rules
        bounce = parse_bounce(mimeparse.parse(raw), rules)
        if bounce is None:
            return
        relayed = await self.store.recipients_of(verdict.in_reply_to)
        for failure in bounce.failures:
            address = self._failed_recipient(failure, relayed, bounce)
            domain = (
                domain_of(address or failure.final_recipient or failure.address)
                if "@" in (address or failure.final_recipient or failure.address)
                else ""
            )
            reason = failure.reason
            if failure.category == "sender-side":
                await self._sender_side(failure, domain, mid, rules, handled)
                continue
            if not address:
                continue
            await self.store.record_delivery_failure(
                address, domain, failure.category, reason.reason, reason.evidence, mid
            )
            await self.store.record_verdict(address, mid, "bounce", reason.evidence, bounce.where, None, "applied")
            if reason.suppresses:
                if await self.store.add_suppression("address", address, "bounce", "watcher", reason.evidence[:200]):
                    handled.suppressed.append(address)
            elif failure.category in ("temporary", "mailbox-full"):
                await self.store.note_soft_bounce(address)
                await self._maybe_suspend(address, reason.evidence, rules, handled)

    def _failed_recipient(self, failure: Failure, relayed: list[str], bounce: Bounce) -> str | None:
        found = we_wrote_to(failure, relayed, bounce)
        return self._normalise(found) if found else None

    async def _maybe_suspend(self, address: str, evidence: str, rules: BounceRules, handled: Handled) -> None:
        limits = rules.suspension
        failures = await self.store.temporary_failures(address, limits.within_days)
        if failures < limits.failures:
            return
        note = f"{failures} temporary failures within {limits.within_days} days; last: {evidence}"
        if await self.store.suspend_address(address, limits.suspend_days, note):
            handled.suspended.append(address)
            log.info(
                "an address suspended for %d days after %d temporary delivery failures", limits.suspend_days, failures
            )

    async def _sender_side(
        self, failure: Failure, domain: str, mid: str | None, rules: BounceRules, handled: Handled
    ) -> None:
        """The receiving server refused the user's own set-up: warn, and leave the recipient alone."""
        reason = failure.reason
        first_today = not any(
            w["reason"] == reason.reason for w in await self.store.sender_side_warnings(within_days=1)
        )
        await self.store.record_delivery_failure(None, domain, "sender-side", reason.reason, reason.evidence, mid)
        await self.store.record_verdict("", mid, "bounce", reason.evidence, "sender-side", None, "applied")
        advice = rules.advice(reason.reason) or "Check the set-up of the mail server you send through."
        details = f"A receiving server ({domain or 'unknown'}) refused your mail because of your own set-up: {advice}"
        details += f" Evidence: {reason.evidence}"
        handled.sender_side.append(details)
        log.warning("%s", details)
        if first_today and self.notices is not None:
            try:
                self.notices.sender_problem(details)
            except Exception as exc:  # the warning is logged and in status; a notice is a convenience
                log.warning("could not queue the notice about your set-up: %s", exc)

    async def _complaint(self, verdict: Verdict, mid: str | None, handled: Handled) -> None:
        """A spam complaint: the person who pressed "this is spam" is never written to again."""
        if verdict.reason in NOT_COMPLAINTS:
            log.info("feedback report %s: not a complaint about a recipient", verdict.reason)
            return
        people = [a for a in (self._normalise(x) for x in verdict.addresses) if a]
        if not people:
            relayed = await self.store.recipients_of(verdict.in_reply_to)
            people = relayed if len(relayed) == 1 else []  # the provider hid the address
        for address in people:
            await self.store.record_verdict(address, mid, "complaint", verdict.evidence, verdict.where, None, "applied")
            # a feedback loop's or a mail client's "unsubscribe" is that request; anything else a spam complaint
            reason = "unsubscribe" if verdict.reason == "opt-out" else "complaint"
            if await self.store.add_suppression("address", address, reason, "watcher", verdict.evidence[:200]):
                handled.suppressed.append(address)

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


def judged_gone(evidence: str, rules: BounceRules) -> bool:
    """Whether the evidence recorded with a bounce suppression shows a recipient who is gone."""
    if "recipient-gone (" in evidence:
        return True  # recorded by this release
    action = "failed" if "action: failed" in evidence.lower() else ""
    reason = classify_failure(find_status(evidence), evidence, rules, action)
    return reason is not None and reason.suppresses


async def rejudge_bounce_suppressions(store: Store, rules: BounceRules) -> list[str]:
    """Lift the bounce suppressions whose evidence shows a failure that was soft or the sender's own."""
    lifted = []
    for address, evidence in await store.bounce_suppressions():
        if not judged_gone(evidence, rules) and await store.remove_suppression_if("address", address, "bounce"):
            lifted.append(address)
    return lifted


def make_watcher(
    config: Config, store: Store, rules: RuleHolder, upstream: Upstream | None = None
) -> tuple[ImapWatcher, ReplyProcessor]:
    assert config.imap is not None
    processor = ReplyProcessor(store, rules, config, upstream)
    watcher = ImapWatcher(config.imap, store, processor)
    processor.watcher = watcher
    return watcher, processor
