"""Reading a contacts CSV file: every row validated before anything is imported.

The file (``gdpr-proxy contacts import FILE.csv``) has a header line naming its columns,
in any order; only ``address`` is required:

    address            the e-mail address (required)
    name               the person's name
    company            their company
    role               their role or job title
    language           language for the disclosure footer and answers: ISO 639-1, e.g. de
    country            ISO 3166-1 alpha-2 country code, e.g. FR (decides the region's rules)
    source             where the address was obtained: a key of rules/sources.yaml such as
                       trade_fair or company_website (said in each recipient's language), or own words
    source_detail      the particulars, shown in brackets: the fair's or the list provider's name
    reason             the legitimate-interest reason for contacting this person
    status             prospect (the default), customer, or inbound (they wrote to us first):
                       customers and inbound contacts get no cold-mail footer
    tracking_consent   unknown, granted or denied (open tracking in the mail)
    marketing_consent  unknown, granted or denied (needed for consumer addresses)

Headers are matched without regard to case, spaces or hyphens; ``email`` and ``e-mail``
are accepted for ``address``.  ``--map "E-mail=address,Firma=company"`` renames the
columns of a CRM export.  Other columns are ignored (and listed), so an export's extra
fields are never stored.  An empty cell keeps what is stored already.

Encoding: UTF-8, with or without BOM.  The delimiter is a comma, a semicolon (French and
German Excel) or a tab, detected from the header line.  Re-importing updates contacts;
first and last contact dates are never changed by an import.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from proxy.addresses import AddressError, AddressPolicy, normalise
from proxy.errors import UserError
from proxy.store import Store
from proxy.store.contacts import IMPORTED_FIELDS

COLUMNS = ("address", *IMPORTED_FIELDS)
STATUS_VALUES = ("prospect", "customer", "inbound")
ALIASES = {"email": "address", "e_mail": "address", "mail": "address", "email_address": "address"}
CONSENT_VALUES = ("unknown", "granted", "denied")
MAX_LENGTH = {"source": 500, "reason": 500}
DEFAULT_MAX_LENGTH = 200

_LANGUAGE = re.compile(r"[a-z]{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ContactRow:
    line: int
    values: dict[str, str]  # "address" (normalised) and the non-empty imported fields

    @property
    def address(self) -> str:
        return self.values["address"]


@dataclass
class ContactFile:
    path: Path
    rows: list[ContactRow]
    ignored_columns: list[str] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, "path:line: column: problem")

    def raise_problems(self) -> None:
        if self.problems:
            lines = [text for _, text in sorted(self.problems, key=lambda p: p[0])]
            raise UserError("nothing imported; fix these rows first:\n" + "\n".join(lines))


def header_key(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def parse_mapping(specs: list[str]) -> dict[str, str]:
    """``["E-mail=address,Firma=company"]`` -> {"e_mail": "address", "firma": "company"}."""
    mapping: dict[str, str] = {}
    for spec in specs:
        for pair in filter(None, (p.strip() for p in spec.split(","))):
            source, eq, target = pair.partition("=")
            target = header_key(target)
            if not eq or not source.strip():
                raise UserError(f"--map: {pair!r} is not COLUMN=FIELD")
            if target not in COLUMNS:
                raise UserError(f"--map: {target!r} is not one of {', '.join(COLUMNS)}")
            mapping[header_key(source)] = target
    return mapping


def decode(data: bytes, path: Path) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path}: UTF-16 text; save the file as 'CSV UTF-8 (comma delimited)' and import that")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); this looks like another "
            "encoding such as Windows-1252 or Latin-1: save the file as 'CSV UTF-8' and import that"
        ) from None


def detect_delimiter(text: str) -> str:
    """The delimiter used most in the header line, outside quotes (comma when none)."""
    header = text.split("\n", 1)[0]
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _check_value(column: str, value: str, policy: AddressPolicy) -> tuple[str, str | None]:
    """(stored value, problem or None)."""
    if column == "address":
        try:
            return normalise(value, policy), None
        except AddressError as exc:
            return value, str(exc)
    if len(value) > MAX_LENGTH.get(column, DEFAULT_MAX_LENGTH):
        return value, f"longer than {MAX_LENGTH.get(column, DEFAULT_MAX_LENGTH)} characters"
    if _CONTROL.search(value):
        return value, "contains control or text-direction characters"
    if column == "language":
        code = value.lower()
        return code, None if _LANGUAGE.fullmatch(code) else f"{value!r} is not a two-letter language code such as 'de'"
    if column == "country":
        code = value.upper()
        return code, None if _COUNTRY.fullmatch(code) else f"{value!r} is not a two-letter country code such as 'FR'"
    if column == "status":
        word = value.lower()
        return word, None if word in STATUS_VALUES else f"{value!r} is not one of {', '.join(STATUS_VALUES)}"
    if column in ("tracking_consent", "marketing_consent"):
        word = value.lower()
        return word, None if word in CONSENT_VALUES else f"{value!r} is not one of {', '.join(CONSENT_VALUES)}"
    return value, None


def read_contacts_csv(path: Path, policy: AddressPolicy, mapping: dict[str, str] | None = None) -> ContactFile:
    """Parse and validate the whole file; bad rows are collected in ``problems``, not raised."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read: {exc.strerror}") from None
    text = decode(data, path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=detect_delimiter(text))
    header = next(reader, None)
    if not header:
        raise UserError(f"{path}:1: empty file; the header needs an 'address' column")
    columns, ignored = _columns(header, mapping or {}, path)
    result = ContactFile(path, [], ignored)

    def problem(line: int, column: str, text: str) -> None:
        result.problems.append((line, f"{path}:{line}: {column}: {text}"))

    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            problem(line, "(row)", f"{len(cells)} fields but the header has {len(header)}")
            continue
        values: dict[str, str] = {}
        for index, column in columns.items():
            raw = cells[index].strip() if index < len(cells) else ""
            if not raw:
                continue
            value, bad = _check_value(column, raw, policy)
            if bad:
                problem(line, column, bad)
            values[column] = value
        if "address" not in values:
            problem(line, "address", "empty")
            continue
        if values["address"] in seen:
            problem(line, "address", f"same address as line {seen[values['address']]}")
            continue
        seen[values["address"]] = line
        result.rows.append(ContactRow(line, values))
    return result


def _columns(header: list[str], mapping: dict[str, str], path: Path) -> tuple[dict[int, str], list[str]]:
    """Column index -> field, and the header names that are not imported."""
    columns: dict[int, str] = {}
    ignored: list[str] = []
    for index, name in enumerate(header):
        key = header_key(name)
        target = mapping.get(key) or (key if key in COLUMNS else ALIASES.get(key))
        if target is None:
            if name.strip():
                ignored.append(name.strip())
            continue
        if target in columns.values():
            raise UserError(f"{path}:1: {target}: more than one column gives {target!r}")
        columns[index] = target
    if "address" not in columns.values():
        raise UserError(
            f"{path}:1: the header needs an 'address' column (or --map \"YOUR-COLUMN=address\"); "
            f"found: {', '.join(h.strip() for h in header)}"
        )
    return columns, ignored


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int


async def import_contacts(store: Store, contact_file: ContactFile) -> ImportResult:
    """Refuse addresses whose owner asked to be forgotten, then upsert all rows in one transaction.

    Raises UserError listing every bad row (syntax or erased), and then imports nothing.
    """
    erased = await store.erased_among(row.address for row in contact_file.rows)
    for row in contact_file.rows:
        if row.address in erased:
            contact_file.problems.append(
                (row.line, f"{contact_file.path}:{row.line}: address: this person asked to be forgotten")
            )
    contact_file.raise_problems()
    added, updated = await store.upsert_contacts(
        [row.values for row in contact_file.rows], how=f"contacts import of {contact_file.path.name}"
    )
    return ImportResult(added, updated)
