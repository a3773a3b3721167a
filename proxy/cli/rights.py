"""CLI commands for contacts, consent and data-subject rights; the work is done in rights.py.

gdpr-proxy contacts import FILE.csv [--map "E-mail=address,Firma=company"] [--dry-run]
gdpr-proxy contacts show ADDRESS
gdpr-proxy consent ADDRESS --tracking granted|denied [--how TEXT]
gdpr-proxy consent ADDRESS --marketing granted|denied [--how TEXT]
gdpr-proxy export ADDRESS [--output FILE] [--language CODE]
gdpr-proxy forget ADDRESS        (or --pending: list erasure requests awaiting confirmation)
gdpr-proxy purge [--dry-run]
gdpr-proxy register

The rights modules are imported inside the commands that use them, so `serve` starts without them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from proxy.addresses import AddressError, AddressPolicy, normalise
from proxy.cli.common import with_store
from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.schema import SchemaError
from proxy.store import Store
from proxy.store.contacts import ConsentKind, ConsentValue

CONSENT_CHOICES = ("granted", "denied")
SHOWN_FIELDS = ("name", "company", "role", "language", "country", "source", "source_detail", "reason", "status")


def normalised(address: str, policy: AddressPolicy) -> str:
    try:
        return normalise(address, policy)
    except AddressError as exc:
        raise UserError(str(exc)) from None


def _run(config: Config, work: Callable[[Store], Awaitable[int]]) -> int:
    return asyncio.run(with_store(config, work))


def _write_private(path: Path, text: str) -> None:
    """Exports hold personal data: owner-only, like the store."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise UserError(f"{path}: cannot be written: {exc.strerror}") from None


async def _refuse_erased(store: Store, address: str) -> None:
    if await store.erased_among([address]):
        raise UserError(f"{address}: this person asked to be forgotten; nothing is recorded about them")


# -- contacts ----------------------------------------------------------------------------


def cmd_contacts_import(args: argparse.Namespace, config: Config) -> int:
    from proxy.rights import contacts_csv as contact_csv

    path = Path(args.file)
    mapping = contact_csv.parse_mapping(args.map or [])
    parsed = contact_csv.read_contacts_csv(path, config.addresses.policy, mapping)

    async def work(store: Store) -> int:
        if args.dry_run:
            erased = await store.erased_among(row.address for row in parsed.rows)
            parsed.problems += [
                (row.line, f"{path}:{row.line}: address: this person asked to be forgotten")
                for row in parsed.rows
                if row.address in erased
            ]
            parsed.raise_problems()
            print(f"{path}: {len(parsed.rows)} row(s) valid; nothing imported (--dry-run)")
        else:
            result = await contact_csv.import_contacts(store, parsed)
            print(f"{path}: {len(parsed.rows)} row(s) read, {result.added} new contact(s), {result.updated} updated")
        if parsed.ignored_columns:
            print(f"columns not imported: {', '.join(parsed.ignored_columns)}", file=sys.stderr)
        return 0

    return _run(config, work)


def cmd_contacts_show(args: argparse.Namespace, config: Config) -> int:
    address = normalised(args.address, config.addresses.policy)

    async def work(store: Store) -> int:
        held = await store.personal_data(address)
        for line in describe_contact(address, held):
            print(line)
        return 0

    return _run(config, work)


def describe_contact(address: str, held: dict[str, Any]) -> list[str]:
    contact = held["contact"]
    lines = [address]
    erased = [s for s in held["suppressions"] if s["kind"] == "hash"]
    if erased:
        lines.append(f"  erased on {erased[0]['created_at'][:10]}: only a keyed hash is kept, mail is refused")
    if contact is None:
        lines.append("  no contact record")
    else:
        for key in SHOWN_FIELDS:
            lines.append(f"  {key + ':':19}{contact[key] or '-'}")
        history = held["consent_history"]
        for kind in ("tracking", "marketing"):
            latest = next((e for e in reversed(history) if e["kind"] == kind), None)
            detail = f" ({latest['at'][:10]}, {latest['how'] or 'how not recorded'})" if latest else ""
            lines.append(f"  {kind + ' consent:':19}{contact[f'{kind}_consent']}{detail}")
        for label, column in (
            ("first contact", "first_contact_at"),
            ("last contact", "last_contact_at"),
            ("last reply", "last_reply_at"),
        ):
            lines.append(f"  {label + ':':19}{contact[column] or '-'}")
        bounce = contact["bounce_state"] or "-"
        lines.append(f"  {'bounces:':19}{bounce} ({contact['soft_bounces']} soft)")
        lines.append(f"  {'consent history:':19}{len(history)} decision(s)")
    lines.append(f"  {'messages sent:':19}{len(held['relayed_messages'])}")
    lines.append(f"  {'classified replies:':19}{len(held['classified_replies'])}")
    for s in held["suppressions"]:
        if s["kind"] != "hash":
            lines.append(f"  {'suppressed:':19}{s['created_at'][:10]} {s['kind']} {s['value']} ({s['reason']})")
    return lines


def cmd_consent(args: argparse.Namespace, config: Config) -> int:
    address = normalised(args.address, config.addresses.policy)
    asked: list[tuple[ConsentKind, ConsentValue | None]] = [("tracking", args.tracking), ("marketing", args.marketing)]
    changes = [(kind, value) for kind, value in asked if value]
    if not changes:
        raise UserError("say which consent: --tracking granted|denied or --marketing granted|denied")
    how = args.how or "recorded with gdpr-proxy consent"

    async def work(store: Store) -> int:
        await _refuse_erased(store, address)
        for kind, value in changes:
            changed = await store.set_consent(address, kind, value, how)
            print(f"{address}: {kind} consent {value}" + ("" if changed else " (unchanged, decision recorded)"))
        return 0

    return _run(config, work)


# -- rights ------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from proxy.rights.subject_rights import export_personal_data
    from proxy.rules.answers import load_answers

    address = normalised(args.address, config.addresses.policy)
    try:
        answers = load_answers(config.user_rules_path)
    except SchemaError as exc:
        raise UserError(f"answer texts:\n{exc}") from None

    async def work(store: Store) -> int:
        held = await export_personal_data(store, config, answers, address, args.language)
        text = json.dumps(held, ensure_ascii=False, indent=2) + "\n"
        if args.output:
            _write_private(Path(args.output), text)
            print(f"{address}: written to {args.output} (answer in {held['answer']['language']})")
        else:
            sys.stdout.write(text)
        return 0

    return _run(config, work)


def cmd_forget(args: argparse.Namespace, config: Config) -> int:
    from proxy.rights.subject_rights import files_mentioning, forget

    async def pending(store: Store) -> int:
        requests = await store.pending_erasure_requests()
        for r in requests:
            print(f"{r['created_at'][:10]}  {r['address']}  {r['where_found']}: {r['evidence']}")
        print(f"{len(requests)} pending erasure request(s)", file=sys.stderr)
        return 0

    if args.pending:
        return _run(config, pending)
    if not args.address:
        raise UserError("name the address to forget (or --pending to list requests)")
    address = normalised(args.address, config.addresses.policy)

    async def work(store: Store) -> int:
        report = await forget(store, address)
        print(f"{address}: erased ({report.total} record(s) removed); a keyed hash keeps it blocked")
        leftovers = files_mentioning(config, address)
        if leftovers:
            print(
                f"warning: {len(leftovers)} captured or queued message file(s) still contain the address; "
                "delete them if they are no longer needed:",
                file=sys.stderr,
            )
            for path in leftovers:
                print(f"  {path}", file=sys.stderr)
        return 0

    return _run(config, work)


def cmd_purge(args: argparse.Namespace, config: Config) -> int:
    from proxy.rights.subject_rights import purge, retention_of

    async def work(store: Store) -> int:
        report = await purge(store, retention_of(config), dry_run=args.dry_run)
        for line in report.lines():
            print(line)
        return 0

    return _run(config, work)


def cmd_register(args: argparse.Namespace, config: Config) -> int:
    from proxy.rights.register import register_markdown
    from proxy.rights.subject_rights import retention_of

    sys.stdout.write(register_markdown(config, retention_of(config)))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("contacts", help="contact records: import a CSV file, show one")
    csub = p.add_subparsers(dest="contacts_command", required=True, metavar="ACTION")
    pi = csub.add_parser(
        "import",
        help="import contacts from CSV (columns: address, name, company, role, language, country, "
        "source, source_detail, reason, status, tracking_consent, marketing_consent)",
    )
    pi.add_argument("file")
    pi.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD,...",
        help='rename the file\'s columns, e.g. --map "E-mail=address,Firma=company"',
    )
    pi.add_argument("--dry-run", action="store_true", help="validate only, import nothing")
    pi.set_defaults(func=cmd_contacts_import)
    ps = csub.add_parser("show", help="print what is recorded about ADDRESS")
    ps.add_argument("address")
    ps.set_defaults(func=cmd_contacts_show)

    p = sub.add_parser("consent", help="record a tracking or marketing consent decision")
    p.add_argument("address")
    p.add_argument("--tracking", choices=CONSENT_CHOICES, help="consent to open tracking")
    p.add_argument("--marketing", choices=CONSENT_CHOICES, help="consent to marketing mail (consumer addresses)")
    p.add_argument("--how", help='how it was given, e.g. "reply of 2026-11-20" (kept as proof)')
    p.set_defaults(func=cmd_consent)

    p = sub.add_parser("export", help="everything held about ADDRESS as JSON, with an answer (Art. 15)")
    p.add_argument("address")
    p.add_argument("--output", "-o", help="write to FILE (owner-only) instead of standard output")
    p.add_argument("--language", help="language of the answer (default: the contact's)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("forget", help="erase every trace of ADDRESS, keep it blocked (Art. 17)")
    p.add_argument("address", nargs="?")
    p.add_argument("--pending", action="store_true", help="list erasure requests awaiting confirmation")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("purge", help="delete data past its retention limit")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("register", help="print the processing activities for your Art. 30 register (markdown)")
    p.set_defaults(func=cmd_register)
