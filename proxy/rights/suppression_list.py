"""What the CLI's store commands do: suppression list management and single-address checks."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from proxy.addresses import AddressError, AddressPolicy, normalise, normalise_domain
from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.relay.steps.recipients import first_refusal, recipient_checks
from proxy.rules.ruleset import RuleSet
from proxy.store import Store, SuppressionKind
from proxy.store.reasons import REASONS


def parse_target(value: str, policy: AddressPolicy) -> tuple[SuppressionKind, str]:
    """``someone@example.org`` is an address; ``example.org`` or ``@example.org`` a whole domain."""
    value = value.strip()
    try:
        if "@" in value.lstrip("@"):
            return "address", normalise(value, policy)
        return "domain", normalise_domain(value)
    except AddressError as exc:
        raise UserError(str(exc)) from None


@dataclass(frozen=True)
class ImportRow:
    line: int
    kind: SuppressionKind
    value: str
    reason: str
    note: str | None


def read_suppression_csv(path: Path, policy: AddressPolicy) -> list[ImportRow]:
    """Validate every row first; any bad row aborts the import with all problems listed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    column = next((f for f in ("address", "value", "email", "domain") if f in fields), None)
    if column is None:
        raise UserError(f"{path}:1: the header needs an 'address' column (optional: reason, note)")
    rows, problems = [], []
    for record in reader:
        record = {k.strip().lower(): (v or "").strip() for k, v in record.items() if k}
        line = reader.line_num
        value = record.get(column, "")
        if not value:
            problems.append(f"{path}:{line}: {column}: empty")
            continue
        reason = record.get("reason") or "import"
        if reason not in REASONS:
            problems.append(f"{path}:{line}: reason: {reason!r} is not one of {', '.join(REASONS)}")
            continue
        try:
            kind, normalised = parse_target(value, policy)
        except UserError as exc:
            problems.append(f"{path}:{line}: {column}: {exc}")
            continue
        rows.append(ImportRow(line, kind, normalised, reason, record.get("note") or None))
    if problems:
        raise UserError("nothing imported; fix these rows first:\n" + "\n".join(problems))
    return rows


async def import_suppressions(store: Store, rows: list[ImportRow]) -> int:
    added = 0
    for row in rows:
        added += await store.add_suppression(row.kind, row.value, row.reason, "import", row.note)
    return added


async def export_suppressions(store: Store) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["address", "kind", "reason", "source", "note", "created_at"])
    for s in await store.list_suppressions():
        writer.writerow([s.value, s.kind, s.reason, s.source, s.note or "", s.created_at])
    return out.getvalue()


async def explain_address(store: Store, rules: RuleSet, config: Config, address: str) -> tuple[bool, str]:
    """Would mail to ``address`` be refused at RCPT?  (refused, explanation)."""
    try:
        normalised = normalise(address, config.addresses.policy)
    except AddressError as exc:
        raise UserError(str(exc)) from None
    refusal = await first_refusal(recipient_checks(), store, rules, address, normalised)
    if refusal:
        check, reply = refusal
        return True, f"{address}: refused ({check}): {reply}"
    return False, f"{address}: would be sent (compared as {normalised})"
