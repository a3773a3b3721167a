"""Data-subject rights and retention: access export (Art. 15), erasure (Art. 17), purge.

The CLI (proxy/cli_rights.py), the running service (daily ``purge``) and the reply watcher
(``handle_erasure_request``) all come through here.  Addresses are normalised with the
configured policy before they reach the store, exactly as the relay stores them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.addresses import DEFAULT_POLICY, AddressPolicy, domain_of, normalise
from proxy.config.settings import RetentionConfig
from proxy.rules.answers import AnswerRules, render_answer
from proxy.rules.footers import recipient_language
from proxy.rules.ruleset import RuleSet, load_rules
from proxy.rules.sources import provenance
from proxy.store import Store, StoreError

if TYPE_CHECKING:
    from proxy.config.settings import Config

log = logging.getLogger("gdpr_proxy.rights")


def retention_of(config: Config) -> RetentionConfig:
    return config.retention


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- access (Art. 15) --------------------------------------------------------------------


async def export_personal_data(
    store: Store,
    config: Config,
    answers: AnswerRules,
    address: str,
    language: str | None = None,
    rules: RuleSet | None = None,
) -> dict[str, Any]:
    """Everything held about ``address`` (normalised), plus a ready-to-send answer.

    The answer's language is the footer's (contact, then country domain, then the default),
    and it names the source and the reason in the words the footer used.
    """
    held: dict[str, Any] = {"address": address, "generated_at": _utc_now().isoformat(timespec="seconds")}
    held.update(await store.personal_data(address))
    contact = held["contact"] or {}
    held["first_contact"] = contact.get("first_contact_at")
    held["last_contact"] = contact.get("last_contact_at")
    for entry in held["suppressions"]:
        if entry["kind"] == "hash":
            entry["value"] = "(keyed hash of the address, kept after erasure)"
    sender = config.sender
    retention = retention_of(config)
    rules = rules or load_rules(config.user_rules_path)
    wanted = language or recipient_language(rules.regions, contact, domain_of(address), sender.default_language)
    code, _ = answers.pick(wanted, sender.default_language)
    source, reason = provenance(
        rules.vocabulary, rules.footers, contact, code, sender.default_source, sender.default_reason
    )
    # The data list names the source and reason as the footer did, not by their keys.
    shown = dict(contact)
    if contact.get("source") or contact.get("source_detail"):
        shown["source"] = source.text
    if contact.get("reason"):
        shown["reason"] = reason.text
    answer = render_answer(
        answers,
        code,
        {**held, "contact": shown if contact else None},
        {
            "source": source.text,
            "reason": reason.text,
            "sender_name": sender.name.strip() or "(sender.name)",
            "company": sender.company.strip() or "(sender.company)",
            "opt_out_address": sender.opt_out_address.strip() or "(sender.opt_out_address)",
            "privacy_policy_url": sender.privacy_policy_url.strip() or "(sender.privacy_policy_url)",
            "contact_days": str(retention.contacts_without_reply_days),
            "message_days": str(retention.relayed_messages_days),
        },
    )
    held["answer"] = {
        "language": answer.language,
        "direction": answer.direction,
        "to": address,
        "subject": answer.subject,
        "text": answer.text,
    }
    return held


# -- erasure (Art. 17) -------------------------------------------------------------------


def files_mentioning(config: Config, address: str) -> list[Path]:
    """Message files outside the store that still contain ``address``: captured or queued mail.

    The store cannot erase these (a queued copy may carry other recipients too), so the
    user is told where they are.
    """
    needle = address.lower().encode()
    found = []
    for directory in (config.capture_path, config.queue_path):
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            try:
                if needle in path.read_bytes().lower():
                    found.append(path)
            except OSError:
                continue
    return found


@dataclass(frozen=True)
class ForgetReport:
    removed: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.removed.values())


async def forget(store: Store, address: str, source: str = "cli") -> ForgetReport:
    """Erase ``address`` (normalised) everywhere, keep its keyed hash, and leave no copy on disk.

    A message the relay accepted just before the hash went in may still record its
    delivery afterwards; erasing once more catches that.
    """
    removed = await store.erase_address(address, source)
    for _ in range(3):
        await store.compact()
        if not await store.mentions(address):
            break
        more = await store.erase_address(address, source)
        removed = {k: removed.get(k, 0) + more.get(k, 0) for k in {*removed, *more}}
    else:
        raise StoreError("the address was recorded again during erasure; run forget once more")
    return ForgetReport(removed)


async def handle_erasure_request(
    store: Store,
    address: str,
    retention: RetentionConfig,
    evidence: str,
    *,
    where: str = "reply",
    message_id: str | None = None,
    language: str | None = None,
    policy: AddressPolicy = DEFAULT_POLICY,
) -> str:
    """An erasure request found in a reply: forget now, or hold it for a person to confirm.

    With ``erasure_requests: confirm`` the request becomes a pending 'erasure' verdict and
    the address is suppressed meanwhile, so nothing more is sent while it waits.
    Returns one line saying what was done (without the address, for the log).
    """
    address = normalise(address, policy)
    if retention.erasure_requests == "automatic":
        report = await forget(store, address, source="watcher")
        return f"erasure request: erased ({report.total} record(s) removed, keyed hash kept)"
    await store.record_erasure_request(address, evidence, where, message_id, language)
    return "erasure request: suppressed and pending confirmation (gdpr-proxy forget ADDRESS to erase)"


# -- retention ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeReport:
    removed: dict[str, int] = field(default_factory=dict)  # table -> rows (would be) deleted
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.removed.values())

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        return [f"{table}: {verb} {count}" for table, count in self.removed.items()]


async def purge(
    store: Store, retention: RetentionConfig, now: dt.datetime | None = None, dry_run: bool = False
) -> PurgeReport:
    """Delete what is past its retention limit; suppressions and erasure hashes are kept."""
    now = now or _utc_now()

    def before(days: int) -> str:
        return (now - dt.timedelta(days=days)).astimezone(dt.UTC).isoformat(timespec="seconds")

    removed = await store.purge_older(
        before(retention.contacts_without_reply_days),
        before(retention.relayed_messages_days),
        before(retention.verdicts_days),
        dry_run=dry_run,
    )
    if not dry_run and any(removed.values()):
        # Older page versions would otherwise stay in the WAL until the next checkpoint.
        await store.checkpoint_quietly()
    log.info("retention purge: %s", ", ".join(f"{t} {n}" for t, n in removed.items()))
    return PurgeReport(removed, dry_run)
