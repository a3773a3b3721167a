"""Render the reply texts of texts/<lang>.yaml into raw replies shaped as real mail clients send them.

Each text holds only what a person typed.  Here it becomes one or two RFC 5322 messages
(Gmail, Outlook desktop, Outlook on the web, Apple Mail, Thunderbird, iPhone, bare plain
text) that quote our original message with the disclosure footer the relay added to it, in
the charsets and transfer encodings those clients use.  Traps are made from the texts too:
absence notices quoting an opt-out, positive replies quoting the footer's "reply STOP"
sentence.  Everything is seeded by the text's id, so the corpus is the same on every run.

    python -m tests.corpus.replies.build --write DIR    (writes DIR/<part>/<id>.eml to look at)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import quopri
import random
import re
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TEXTS_DIR = HERE / "texts"
REPO = HERE.parent.parent.parent
# The shipped footers: rules/ may be a link to proxy/rules/shipped/.
FOOTER_FILES = (REPO / "rules" / "footers.yaml", REPO / "proxy" / "rules" / "shipped" / "footers.yaml")

LANGUAGES = (
    "bg",
    "hr",
    "cs",
    "da",
    "nl",
    "en",
    "et",
    "fi",
    "fr",
    "de",
    "el",
    "hu",
    "ga",
    "it",
    "lv",
    "lt",
    "mt",
    "pl",
    "pt",
    "ro",
    "sk",
    "sl",
    "es",
    "sv",
    "ar",
    "tr",
    "ru",
    "uk",
    "no",
)
EXPECTS = ("opt-out", "erasure", "none", "auto-reply", "uncertain")
KINDS = (
    "short",
    "polite-signature",
    "not-interested",
    "plural",
    "third-person",
    "complaint-threat",
    "objection",
    "sloppy",
    "formal-informal",
    "long-mixed",
    "own-words",
    "legal",
    "positive",
    "positive-stop-word",
    "not-now",
    "referral",
    "access-request",
    "left-company",
    "question",
    "meeting",
    "thanks",
    "out-of-office",
    "ticket",
    "conflicting",
)
# Kinds of the renderings made here rather than written in the text files.
GENERATED_KINDS = ("out-of-office-headers", "trap-out-of-office-quoting", "trap-footer-quoted")
CLIENT_STRINGS = (
    "gmail_attribution",
    "apple_attribution",
    "thunderbird_attribution",
    "outlook_from",
    "outlook_sent",
    "outlook_to",
    "outlook_cc",
    "outlook_subject",
    "original_message",
    "reply_prefix",
    "forward_prefix",
    "mobile_signature",
    "weekday",
    "date",
    "time",
)
PARTS = ("train", "evaluation")

# Person-written replies: how often each client shape is drawn.
REPLY_SHAPES = {
    "gmail": 24,
    "outlook-word": 10,
    "outlook-word-html-only": 6,
    "outlook-plain": 6,
    "owa": 12,
    "apple": 11,
    "thunderbird": 8,
    "thunderbird-html": 4,
    "mobile": 12,
    "plain": 7,
}
AUTO_REPLY_SHAPES = {"exchange-notice": 3, "gmail-vacation": 2, "notice-plain": 2, "ticket-html": 1}
SECOND_RENDERING = 0.5  # share of texts rendered a second time in another shape
OOO_TRAP_SHARE = 0.25  # of opt-out texts
FOOTER_TRAP_SHARE = 0.5  # of positive replies
HEADER_AUTO_REPLY_SHARE = 0.5  # of auto-reply texts
LEGACY_SHARE = 0.35  # of renderings by clients that still use the language's old charset
POSITIVE_KINDS = ("positive", "positive-stop-word", "meeting", "thanks")

# The language's legacy charsets: Outlook's Windows code page first, then the ISO one.
LEGACY_CHARSETS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("cs", "sk", "pl", "hu", "sl", "hr", "ro"), ("windows-1250", "iso-8859-2")),
    **dict.fromkeys(("bg", "ru"), ("windows-1251", "koi8-r")),
    "uk": ("windows-1251", "koi8-u"),
    "ar": ("windows-1256",),
    "el": ("windows-1253", "iso-8859-7"),
    "tr": ("windows-1254", "iso-8859-9"),
    **dict.fromkeys(("lt", "lv", "et"), ("windows-1257", "iso-8859-13")),
    **dict.fromkeys(
        ("en", "fr", "de", "nl", "it", "es", "pt", "da", "sv", "fi", "no", "ga"),
        ("windows-1252", "iso-8859-1", "iso-8859-15"),
    ),
    "mt": ("iso-8859-3",),
}
LEGACY_CLIENTS = ("outlook-word", "outlook-word-html-only", "outlook-plain", "thunderbird", "plain", "apple")
RTL_LANGUAGES = ("ar",)

# People we wrote to: (display name, local part), and their company's domain.
PEOPLE: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "bg": (
        (
            ("Георги Петров", "georgi.petrov"),
            ("Мария Иванова", "maria.ivanova"),
            ("Николай Димитров", "n.dimitrov"),
            ("Елена Стоянова", "elena.stoyanova"),
        ),
        "balkantrans.bg",
    ),
    "hr": (
        (("Ivana Horvat", ""), ("Marko Kovačević", ""), ("Ana Babić", ""), ("Tomislav Marić", "")),
        "jadran-logistika.hr",
    ),
    "cs": (
        (("Jana Nováková", ""), ("Petr Svoboda", ""), ("Lucie Dvořáková", ""), ("Tomáš Černý", "")),
        "stavby-morava.cz",
    ),
    "da": (
        (("Mette Jensen", ""), ("Lars Nielsen", ""), ("Sofie Hansen", ""), ("Søren Pedersen", "")),
        "nordhavn-el.dk",
    ),
    "nl": (
        (("Sanne de Vries", ""), ("Jeroen Bakker", ""), ("Femke Visser", ""), ("Bram Janssen", "")),
        "vandermeer-bouw.nl",
    ),
    "en": (
        (("Daniel Hughes", ""), ("Sarah Collins", ""), ("Mark Thompson", ""), ("Emma Walsh", "")),
        "harrowfreight.co.uk",
    ),
    "et": ((("Kadri Tamm", ""), ("Mart Saar", ""), ("Liis Kask", ""), ("Andres Mägi", "")), "tallinna-metall.ee"),
    "fi": (
        (("Laura Virtanen", ""), ("Mikko Korhonen", ""), ("Anna Mäkinen", ""), ("Jukka Nieminen", "")),
        "pohjolakone.fi",
    ),
    "fr": (
        (("Claire Martin", ""), ("Julien Bernard", ""), ("Sophie Dubois", ""), ("Thomas Lefèvre", "")),
        "atelier-durand.fr",
    ),
    "de": (
        (("Katrin Müller", ""), ("Stefan Schneider", ""), ("Julia Weber", ""), ("Jürgen Fischer", "")),
        "hansa-technik.de",
    ),
    "el": (
        (
            ("Μαρία Παπαδοπούλου", "maria.papadopoulou"),
            ("Γιώργος Νικολάου", "g.nikolaou"),
            ("Ελένη Γεωργίου", "eleni.georgiou"),
            ("Δημήτρης Οικονόμου", "d.oikonomou"),
        ),
        "aigaio-systems.gr",
    ),
    "hu": (
        (
            ("Nagy Anna", "anna.nagy"),
            ("Kovács Péter", "peter.kovacs"),
            ("Tóth Eszter", "eszter.toth"),
            ("Szabó Gábor", "gabor.szabo"),
        ),
        "dunagep.hu",
    ),
    "ga": (
        (("Siobhán Ní Bhriain", ""), ("Seán Ó Murchú", ""), ("Aoife Nic Giolla", ""), ("Pádraig Ó Sé", "")),
        "cladach.ie",
    ),
    "it": (
        (("Giulia Rossi", ""), ("Marco Bianchi", ""), ("Francesca Romano", ""), ("Luca Ferrari", "")),
        "officine-lombarde.it",
    ),
    "lv": (
        (("Līga Bērziņa", ""), ("Jānis Kalniņš", ""), ("Ilze Ozola", ""), ("Andris Liepiņš", "")),
        "daugava-tehnika.lv",
    ),
    "lt": (
        (
            ("Rūta Kazlauskienė", ""),
            ("Tomas Petrauskas", ""),
            ("Agnė Jankauskaitė", ""),
            ("Mindaugas Stankevičius", ""),
        ),
        "baltic-statyba.lt",
    ),
    "mt": (
        (("Maria Borg", ""), ("Joseph Camilleri", ""), ("Marija Vella", ""), ("Ġorġ Farrugia", "")),
        "grandharbour.com.mt",
    ),
    "pl": (
        (("Anna Kowalska", ""), ("Piotr Nowak", ""), ("Katarzyna Wiśniewska", ""), ("Michał Wójcik", "")),
        "wisla-systemy.pl",
    ),
    "pt": ((("Ana Silva", ""), ("João Santos", ""), ("Mariana Ferreira", ""), ("Rui Costa", "")), "tejo-engenharia.pt"),
    "ro": (
        (("Ioana Popescu", ""), ("Andrei Ionescu", ""), ("Elena Dumitru", ""), ("Mihai Stănescu", "")),
        "carpati-soft.ro",
    ),
    "sk": (
        (("Zuzana Horváthová", ""), ("Martin Kováč", ""), ("Lenka Šimková", ""), ("Peter Baláž", "")),
        "tatry-stroje.sk",
    ),
    "sl": ((("Maja Novak", ""), ("Luka Horvat", ""), ("Nina Kranjc", ""), ("Matej Zupančič", "")), "sava-tehnika.si"),
    "es": (
        (("Lucía García", ""), ("Javier Fernández", ""), ("Marta López", ""), ("Carlos Martínez", "")),
        "ibertransportes.es",
    ),
    "sv": (
        (("Anna Lindqvist", ""), ("Erik Johansson", ""), ("Karin Svensson", ""), ("Johan Berg", "")),
        "norrlandsbygg.se",
    ),
    "ar": (
        (
            ("أحمد المنصوري", "ahmed.almansouri"),
            ("فاطمة الزهراني", "fatima.alzahrani"),
            ("خالد العتيبي", "khalid.alotaibi"),
            ("نورة القحطاني", "noura.alqahtani"),
        ),
        "khaleej-trading.ae",
    ),
    "tr": ((("Ayşe Yılmaz", ""), ("Mehmet Kaya", ""), ("Elif Demir", ""), ("Emre Şahin", "")), "anadolu-makine.com.tr"),
    "ru": (
        (
            ("Анна Смирнова", "anna.smirnova"),
            ("Дмитрий Козлов", "d.kozlov"),
            ("Елена Морозова", "elena.morozova"),
            ("Сергей Волков", "s.volkov"),
        ),
        "volga-tech.ru",
    ),
    "uk": (
        (
            ("Олена Шевченко", "olena.shevchenko"),
            ("Андрій Коваленко", "a.kovalenko"),
            ("Наталія Бондаренко", "n.bondarenko"),
            ("Тарас Мельник", "taras.melnyk"),
        ),
        "dnipro-soft.com.ua",
    ),
    "no": ((("Ingrid Hansen", ""), ("Ola Nordmann", ""), ("Kari Johansen", ""), ("Lars Berg", "")), "fjordbygg.no"),
}
# Who wrote our original when its signature cannot be read (name, address, company).
SALESPERSON = ("Anna Berger", "anna.berger@nordlicht-software.eu", "Nordlicht Software GmbH")
FOOTER_REASON = "CTO"
_LEGAL_FORM = (
    r"(?:GmbH|Ltd|SAS|S\.L|S\.r\.l|s\.r\.o|B\.V|Sp\. z o\.o|Lda|SRL|AB|AS|ApS|Oy|Kft|d\.o\.o|A\.Ş|"
    r"Α\.Ε|ООД|ООО|ТОВ|UAB|SIA|OÜ)\.?"
)
_LEGAL_FORMS = re.compile(rf"^{_LEGAL_FORM}\s+|[\s,]+{_LEGAL_FORM}$")
_TRANSLITERATION = str.maketrans(
    {
        **dict(zip("абвгдезийклмнопрстуфхцыэ", "abvgdezijklmnoprstufhcye", strict=True)),
        **{"ж": "zh", "ч": "ch", "ш": "sh", "щ": "sht", "ъ": "a", "ь": "", "ю": "yu", "я": "ya", "ё": "e"},
        **{"є": "ye", "і": "i", "ї": "yi", "ґ": "g"},
        **dict(zip("αβγδεζηικλμνξοπρστυφχωάέήίόύώϊϋς", "avgdeziiklmnxoprstyfhoaeiioyoiys", strict=True)),
        **{"θ": "th", "ψ": "ps"},
    }
)
ORIGINAL_SENT = datetime(2026, 11, 12, 10, 42, tzinfo=timezone(timedelta(hours=1)))
_ASCII_FOLD = str.maketrans(
    {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "đ": "d", "ı": "i", "ħ": "h"}
)


@dataclass(frozen=True)
class Reply:
    """One text as written in texts/<lang>.yaml."""

    id: str
    language: str
    expect: str
    kind: str
    text: str
    subject: str | None = None


@dataclass(frozen=True)
class TextFile:
    language: str
    client_strings: dict[str, str]
    original_subject: str
    original_text: str
    replies: tuple[Reply, ...]
    path: Path


@dataclass(frozen=True)
class Case:
    """One rendered message with what the classifier should answer."""

    id: str
    language: str
    expect: str
    kind: str
    part: str
    shape: str
    raw: bytes
    text_id: str  # the text it was made from; decides the part
    text: str  # what the person (or the absence notice) wrote, as it should decode


# ---------------------------------------------------------------- text files


def text_file_problems(data: Any) -> list[str]:
    """What is wrong with one parsed text file (empty when it can be rendered)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return ["not a mapping"]
    if data.get("language") not in LANGUAGES:
        problems.append(f"language {data.get('language')!r} is not one of the corpus languages")
    strings = data.get("client_strings")
    if not isinstance(strings, dict):
        problems.append("client_strings missing")
    else:
        problems += [f"client_strings.{k} missing or empty" for k in CLIENT_STRINGS if not str(strings.get(k) or "")]
    original = data.get("original")
    if not isinstance(original, dict) or not original.get("subject") or not original.get("text"):
        problems.append("original needs subject and text")
    replies = data.get("replies")
    if not isinstance(replies, list) or not replies:
        return [*problems, "replies missing"]
    seen: set[str] = set()
    for n, reply in enumerate(replies):
        if not isinstance(reply, dict):
            problems.append(f"replies[{n}] is not a mapping")
            continue
        rid = reply.get("id")
        where = f"replies[{n}] ({rid})"
        if not isinstance(rid, str) or not rid.startswith(f"{data.get('language')}-"):
            problems.append(f"{where}: id must start with the language code and a dash")
        elif rid in seen:
            problems.append(f"{where}: id used twice")
        seen.add(str(rid))
        if reply.get("expect") not in EXPECTS:
            problems.append(f"{where}: expect {reply.get('expect')!r} is not one of {', '.join(EXPECTS)}")
        if reply.get("kind") not in KINDS:
            problems.append(f"{where}: kind {reply.get('kind')!r} is not a known kind")
        if not isinstance(reply.get("text"), str) or not reply["text"].strip():
            problems.append(f"{where}: text missing")
        if "subject" in reply and not isinstance(reply["subject"], str):
            problems.append(f"{where}: subject must be text")
        unknown = set(reply) - {"id", "expect", "kind", "text", "subject"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
    return problems


def load_text_file(path: Path) -> TextFile:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = text_file_problems(data)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    lang = data["language"]
    replies = tuple(
        Reply(
            r["id"], lang, r["expect"], r["kind"], _tidy_text(r["text"]), r.get("subject") and str(r["subject"]).strip()
        )
        for r in data["replies"]
    )
    strings = {k: str(v) for k, v in data["client_strings"].items()}
    original = data["original"]
    return TextFile(lang, strings, str(original["subject"]).strip(), _tidy_text(original["text"]), replies, path)


def load_text_files(texts_dir: Path = TEXTS_DIR) -> list[TextFile]:
    return [load_text_file(p) for p in sorted(texts_dir.glob("*.yaml"))]


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in str(text).replace("\r\n", "\n").strip("\n").split("\n")]
    return "\n".join(lines).strip("\n")


# ---------------------------------------------------------------- split


def part_of(text_id: str) -> str:
    """Which part a text belongs to, from its id alone: about one third goes to evaluation.

    Ids of the form <lang>-<number> are taken in blocks of three consecutive numbers, and a
    hash of the block picks the one that goes to evaluation: every language gets a third of
    its texts in evaluation, kinds (which the files list in runs) are spread over both
    parts, and adding texts never moves an existing one.  Other ids go by a hash alone."""
    m = re.fullmatch(r"([a-z]{2})-(\d+)", text_id)
    if m is None:
        return "evaluation" if _hash(text_id) % 3 == 0 else "train"
    number = int(m.group(2)) - 1
    block = number // 3
    chosen = _hash(f"{m.group(1)}/{block}") % 3
    return "evaluation" if number % 3 == chosen else "train"


def _hash(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:8], "big")


def _chance(seed: str, share: float) -> bool:
    return (_hash(seed) % 10_000) < share * 10_000


# ---------------------------------------------------------------- the thread we replied to


@dataclass(frozen=True)
class Thread:
    """What every reply in one language answers: our original mail with its footer."""

    language: str
    strings: dict[str, str]
    subject: str
    original_text: str  # what our salesperson wrote
    footer_text: str  # the disclosure footer as the relay appended it
    footer_paragraphs: tuple[str, ...]
    objection_sentence: str  # the footer's "reply No thanks or STOP" sentence
    message_id: str
    people: tuple[tuple[str, str], ...]  # (display name, address)
    sales: tuple[str, str]  # our salesperson who wrote the original: (display name, address)
    direction: str = "ltr"
    quoted_plain: str = field(default="")  # original + footer, wrapped as a client shows it
    quoted_flowing: str = field(default="")  # the same with the footer's paragraphs on one line each

    def attribution(self, which: str, name: str, email: str) -> str:
        values = {
            "weekday": self.strings["weekday"],
            "date": self.strings["date"],
            "time": self.strings["time"],
            "name": name,
            "email": email,
        }
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), self.strings[which])

    def reply_subject(self, own: str | None) -> str:
        return own or f"{self.strings['reply_prefix']}: {self.subject}"


def load_footers() -> dict[str, str]:
    """First-contact footer templates by language, from the shipped rule file."""
    for path in FOOTER_FILES:
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return {code: entry["first_contact"] for code, entry in data["languages"].items()}
    raise FileNotFoundError("footers.yaml not found in " + ", ".join(str(p) for p in FOOTER_FILES))


def make_thread(text_file: TextFile, footers: dict[str, str]) -> Thread:
    lang = text_file.language
    template = footers.get(lang) or footers["en"]
    names, domain = PEOPLE[lang]
    sales_name, sales_address, company = salesperson_of(text_file.original_text, domain.split(".", 1)[1])
    sales_domain = sales_address.split("@", 1)[1]
    values = {
        "sender_name": sales_name,
        "company": company,
        "source": f"www.{domain}",
        "reason": FOOTER_REASON,
        "opt_out_address": f"privacy@{sales_domain}",
        "privacy_policy_url": f"https://www.{sales_domain}/privacy",
    }
    footer = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    footer = footer.replace("{{", "{").replace("}}", "}").strip()
    paragraphs = tuple(p.strip() for p in re.split(r"\n\s*\n", footer) if p.strip())
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?؟])\s+", p)]
    objection = next((s for s in sentences if "STOP" in s), paragraphs[-1])
    people = tuple((name, f"{local or _local_part(name)}@{domain}") for name, local in names)
    quoted_plain = "\n\n".join([text_file.original_text, *(_fill(p, 76) for p in paragraphs)])
    return Thread(
        lang,
        text_file.client_strings,
        text_file.original_subject,
        text_file.original_text,
        "\n\n".join(paragraphs),
        paragraphs,
        objection,
        f"<{_hash('original/' + lang):016x}.{lang}@mail.{sales_domain}>",
        people,
        (sales_name, sales_address),
        "rtl" if lang in RTL_LANGUAGES else "ltr",
        quoted_plain,
        "\n\n".join([text_file.original_text, *paragraphs]),
    )


def salesperson_of(original: str, tld: str) -> tuple[str, str, str]:
    """Name, address and company of whoever signed our original (its last two lines), so the
    footer and the quote headers agree with the signature; a fixed sample when unreadable."""
    lines = [ln.strip() for ln in original.split("\n") if ln.strip()]
    if len(lines) < 3:
        return SALESPERSON
    name, company_line = lines[-2], lines[-1]
    if not 2 <= len(name.split()) <= 4 or any(c.isdigit() or c in ",.:!?" for c in name):
        return SALESPERSON
    company = company_line.split(" | ")[0].strip()
    for separator in (" – ", ", "):  # "Account Executive, Routewise Ltd", "Satış Müdürü – Stokbil A.Ş."
        _, sep, tail = company.rpartition(separator)
        if sep and len(tail) > 5:
            company = tail
            break
    local = _local_part(name)
    stem = re.sub(r"[^a-z0-9]+", "-", _ascii(_LEGAL_FORMS.sub("", company).strip(' .,«»"„“')).lower()).strip("-")
    if not local.strip(".") or not stem:
        return (name, SALESPERSON[1], company)
    return (name, f"{local}@{stem}.{tld}", company)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD).lower().translate(_TRANSLITERATION))
    return "".join(c for c in folded if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


def _fill(paragraph: str, width: int) -> str:
    return textwrap.fill(paragraph, width, break_on_hyphens=False, break_long_words=False)


def _local_part(name: str) -> str:
    words = _ascii(name).split()
    return ".".join(re.sub(r"[^a-z0-9-]", "", w) for w in words[:1] + words[-1:])


# ---------------------------------------------------------------- MIME building


@dataclass
class Leaf:
    subtype: str  # plain or html
    text: str
    charset: str = "utf-8"
    encoding: str = "quoted-printable"  # 7bit, 8bit, quoted-printable, base64
    flowed: bool = False


@dataclass
class Multi:
    subtype: str
    parts: list[Leaf | Multi]
    boundary: str


def _encode_leaf(leaf: Leaf) -> tuple[list[str], bytes]:
    data = leaf.text.replace("\r\n", "\n").encode(leaf.charset)
    encoding = leaf.encoding
    if encoding == "7bit" and not data.isascii():
        encoding = "8bit"
    if encoding in ("7bit", "8bit"):
        body = data
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = base64.encodebytes(data.replace(b"\n", b"\r\n"))
    ctype = f"text/{leaf.subtype}; charset={_charset_label(leaf.charset)}"
    if leaf.flowed:
        ctype += "; format=flowed"
    return [f"Content-Type: {ctype}", f"Content-Transfer-Encoding: {encoding}"], body


def _charset_label(charset: str) -> str:
    return charset.upper() if charset == "utf-8" else charset


def _serialize(node: Leaf | Multi) -> tuple[list[str], bytes]:
    if isinstance(node, Leaf):
        return _encode_leaf(node)
    chunks: list[bytes] = []
    for part in node.parts:
        headers, body = _serialize(part)
        chunks.append(f"--{node.boundary}\n".encode() + "\n".join(headers).encode() + b"\n\n" + body.rstrip(b"\n"))
    body = b"\n\n".join(chunks) + f"\n\n--{node.boundary}--\n".encode()
    return [f'Content-Type: multipart/{node.subtype}; boundary="{node.boundary}"'], body


def _header_value(value: str, rng: random.Random) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name="Subject").encode(maxlinelen=76)


def _address(name: str, email: str, rng: random.Random) -> str:
    if name.isascii():
        return f'"{name}" <{email}>' if any(c in name for c in ',.;:"') else f"{name} <{email}>"
    return f"{Header(name, 'utf-8').encode()} <{email}>"


def _message(headers: list[tuple[str, str]], node: Leaf | Multi) -> bytes:
    mime_headers, body = _serialize(node)
    lines = [f"{name}: {value}" for name, value in headers] + mime_headers
    raw = ("\n".join(lines) + "\n\n").encode("ascii") + body
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ---------------------------------------------------------------- HTML of texts


def _esc(line: str) -> str:
    return html.escape(line, quote=False)


def _html_gmail(text: str) -> str:
    lines = text.split("\n")
    inner = _esc(lines[0]) + "".join("<div><br></div>" if not ln else f"<div>{_esc(ln)}</div>" for ln in lines[1:])
    return inner


def _html_word(text: str, lang_attr: str = "") -> str:
    out = []
    for ln in text.split("\n"):
        if ln:
            out.append(f"<p class=MsoNormal><span{lang_attr}>{_esc(ln)}</span><o:p></o:p></p>")
        else:
            out.append("<p class=MsoNormal><o:p>&nbsp;</o:p></p>")
    return "\n".join(out)


def _html_owa(text: str) -> str:
    style = (
        'class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, Aptos_MSFontService, Calibri, '
        'Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);"'
    )
    return "\n".join(f"<div {style}>{_esc(ln) if ln else '<br>'}</div>" for ln in text.split("\n"))


def _html_paragraphs(text: str) -> str:
    return "\n".join(
        "<p>" + "<br>\n".join(_esc(ln) for ln in para.split("\n")) + "</p>" for para in re.split(r"\n{2,}", text)
    )


def _html_apple(text: str) -> str:
    lines = text.split("\n")
    return _esc(lines[0]) + "".join("<div><br></div>" if not ln else f"<div>{_esc(ln)}</div>" for ln in lines[1:])


def _original_html(thread: Thread, footer_class: bool, word: bool = False) -> str:
    """Our message as the relay sent it: the salesperson's text and the footer below."""
    if word:
        body = _html_word(thread.original_text)
        footer = "\n".join(
            f'<p class=MsoNormal><span style="font-size:9.0pt;color:#666666">{_esc(p)}</span><o:p></o:p></p>'
            for p in thread.footer_paragraphs
        )
        return f"{body}\n{footer}"
    body = "<div>" + "<br>\n".join(_esc(ln) for ln in thread.original_text.split("\n")) + "</div>"
    cls = ' class="gdpr-mail-proxy-footer"' if footer_class else ""
    paragraphs = "\n".join(f'<p style="margin:0 0 8px 0;">{_esc(p)}</p>' for p in thread.footer_paragraphs)
    footer = (
        f'<div{cls} dir="{thread.direction}" style="margin-top:24px;padding-top:8px;border-top:1px solid #dddddd;'
        f'color:#666666;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:1.4;">\n{paragraphs}\n</div>'
    )
    return f"{body}\n{footer}"


def _quote_plain(text: str, prefix: str = "> ") -> str:
    return "\n".join((prefix + ln) if ln else prefix.rstrip() for ln in text.split("\n"))


def _flow(text: str, width: int = 72) -> str:
    """format=flowed (RFC 3676): long lines broken after a space, stuffed where needed."""
    out: list[str] = []
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        quote, rest = line[:depth], line[depth:]
        if quote and rest.startswith(" "):
            rest = rest[1:]
        lead = quote + " " if quote else ""
        if not quote and (rest.startswith((" ", "From ")) or rest.startswith(">")):
            rest = " " + rest
        if len(lead + rest) <= width or " " not in rest.strip():
            out.append((lead + rest) if rest else quote)
            continue
        words = rest.split(" ")
        current = ""
        for word in words:
            candidate = f"{current}{word} "
            if current and len(lead + candidate) > width:
                out.append(lead + current)
                current = f"{word} "
            else:
                current = candidate
        out.append(lead + current.rstrip(" "))
    return "\n".join(out)


# ---------------------------------------------------------------- client shapes


@dataclass(frozen=True)
class Rendering:
    shape: str
    headers: list[tuple[str, str]]
    node: Leaf | Multi


def _pick_charset(rng: random.Random, lang: str, shape: str, texts: Sequence[str]) -> str:
    if shape not in LEGACY_CLIENTS or lang not in LEGACY_CHARSETS or rng.random() >= LEGACY_SHARE:
        return "utf-8"
    candidates = LEGACY_CHARSETS[lang]
    charset = candidates[0] if shape.startswith("outlook") else rng.choice(candidates)
    try:
        for text in texts:
            text.encode(charset)
    except UnicodeEncodeError:
        return "utf-8"
    return charset


def _pick_encoding(rng: random.Random, charset: str, text: str, choices: Sequence[str]) -> str:
    if text.isascii() and rng.random() < 0.5:
        return "7bit"
    return rng.choice(list(choices))


def _boundary(rng: random.Random, style: str) -> str:
    if style == "gmail":
        return f"000000000000{rng.getrandbits(48):012x}"
    if style == "outlook":
        return f"_000_{rng.getrandbits(64):016X}AM0PR07MB{rng.randrange(1000, 9999)}eurprd_"
    if style == "apple":
        return f"Apple-Mail={_uuid(rng)}"
    return f"------------{rng.getrandbits(96):024x}"[:36]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _date(rng: random.Random, after: datetime) -> str:
    moment = after + timedelta(minutes=rng.randrange(20, 60 * 24 * 6))
    return format_datetime(moment)


def _outlook_block(thread: Thread, frm: tuple[str, str], to: tuple[str, str], subject: str) -> list[tuple[str, str]]:
    s = thread.strings
    return [
        (s["outlook_from"], f"{frm[0]} <{frm[1]}>"),
        (s["outlook_sent"], f"{s['weekday']} {s['date']} {s['time']}"),
        (s["outlook_to"], f"{to[0]} <{to[1]}>"),
        (s["outlook_subject"], subject),
    ]


def render_reply(shape: str, thread: Thread, text: str, person: tuple[str, str], rng: random.Random) -> Leaf | Multi:
    """The body of a person's reply in one client's shape, quoting our original."""
    sales = thread.sales
    direction = thread.direction
    dir_attr = ' dir="rtl"' if direction == "rtl" else ""
    gmail_attr = thread.attribution("gmail_attribution", *sales)
    apple_attr = thread.attribution("apple_attribution", *sales)
    tb_attr = thread.attribution("thunderbird_attribution", *sales)
    original_plain = thread.quoted_plain
    lang = thread.language

    if shape == "gmail":
        plain = f"{text}\n\n{gmail_attr}\n\n{_quote_plain(original_plain, '> ')}\n"
        quote = (
            f'<div class="gmail_quote gmail_quote_container"><div dir="{direction}" class="gmail_attr">'
            f"{_esc(gmail_attr)}<br></div>"
            '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
            f'rgb(204,204,204);padding-left:1ex">{_original_html(thread, False)}</blockquote></div>'
        )
        markup = f'<div dir="{direction}">{_html_gmail(text)}</div><br>{quote}\n'
        enc_plain = "base64" if not text.isascii() and rng.random() < 0.4 else "quoted-printable"
        enc_html = "base64" if enc_plain == "base64" else "quoted-printable"
        return Multi(
            "alternative",
            [Leaf("plain", plain, "utf-8", enc_plain), Leaf("html", markup, "utf-8", enc_html)],
            _boundary(rng, "gmail"),
        )

    if shape in ("outlook-word", "outlook-word-html-only"):
        block = _outlook_block(thread, sales, person, thread.subject)
        head_html = "<br>\n".join(f"<b>{_esc(k)}:</b> {_esc(v)}" for k, v in block)
        lang_attr = f' lang="{lang.upper()}"'
        charset = _pick_charset(rng, lang, shape, [text, thread.quoted_plain, thread.subject, head_html])
        markup = (
            '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:w="urn:schemas-microsoft-com:office:word" '
            'xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
            'xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n'
            f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">\n'
            '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n'
            "<style><!--\n/* Font Definitions */\n@font-face\n\t{font-family:Calibri;}\n"
            "p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t"
            '{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;}\n'
            "span.EmailStyle19\n\t{mso-style-type:personal-reply;}\n--></style>\n</head>\n"
            f'<body lang="{lang.upper()}" link="#0563C1" vlink="#954F72" style="word-wrap:break-word"{dir_attr}>\n'
            '<div class="WordSection1">\n'
            f"{_html_word(text, lang_attr)}\n<p class=MsoNormal><o:p>&nbsp;</o:p></p>\n"
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
            f"<p class=MsoNormal>{head_html}<o:p></o:p></p>\n</div>\n"
            "<p class=MsoNormal><o:p>&nbsp;</o:p></p>\n"
            f"{_original_html(thread, False, word=True)}\n</div>\n</body>\n</html>\n"
        )
        html_leaf = Leaf("html", markup, charset, "quoted-printable" if rng.random() < 0.8 else "base64")
        if shape == "outlook-word-html-only":
            return html_leaf
        head_plain = "\n".join(f"{k}: {v}" for k, v in block)
        plain = f"{text}\n\n{head_plain}\n\n{original_plain}\n"
        return Multi(
            "alternative", [Leaf("plain", plain, charset, "quoted-printable"), html_leaf], _boundary(rng, "outlook")
        )

    if shape == "outlook-plain":
        block = _outlook_block(thread, sales, person, thread.subject)
        head_plain = "\n".join(f"{k}: {v}" for k, v in block)
        plain = f"{text}\n\n{thread.strings['original_message']}\n{head_plain}\n\n{original_plain}\n"
        charset = _pick_charset(rng, lang, shape, [plain])
        return Leaf("plain", plain, charset, _pick_encoding(rng, charset, plain, ("quoted-printable", "8bit")))

    if shape == "owa":
        block = _outlook_block(thread, sales, person, thread.subject)
        head_html = "<br>\n".join(f"<b>{_esc(k)}:</b> {_esc(v)}" for k, v in block)
        markup = (
            '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
            '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>\n'
            f'</head>\n<body dir="{direction}">\n{_html_owa(text)}\n<div id="appendonsend"></div>\n'
            '<hr style="display:inline-block;width:98%" tabindex="-1">\n'
            f'<div id="divRplyFwdMsg" dir="{direction}"><font face="Calibri, sans-serif" style="font-size:11pt" '
            f'color="#000000">{head_html}</font>\n<div>&nbsp;</div>\n</div>\n'
            f"{_original_html(thread, False)}\n</body>\n</html>\n"
        )
        head_plain = "\n".join(f"{k}: {v}" for k, v in block)
        plain = f"{text}\n\n________________________________\n{head_plain}\n\n{original_plain}\n"
        return Multi(
            "alternative",
            [Leaf("plain", plain, "utf-8", "quoted-printable"), Leaf("html", markup, "utf-8", "quoted-printable")],
            _boundary(rng, "outlook"),
        )

    if shape == "apple":
        plain = f"{text}\n\n{_quote_plain(apple_attr)}\n>\n{_quote_plain(original_plain)}\n"
        markup = (
            '<html aria-label="message body"><head><meta http-equiv="content-type" content="text/html; '
            f'charset=utf-8"></head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; '
            f'line-break: after-white-space;"{dir_attr}>{_html_apple(text)}<br id="lineBreakAtBeginningOfMessage">'
            f'<div><br><blockquote type="cite"><div>{_esc(apple_attr)}</div><br class="Apple-interchange-newline">'
            f"<div>{_original_html(thread, True)}</div></blockquote></div><br></body></html>\n"
        )
        charset = _pick_charset(rng, lang, shape, [plain, markup])
        return Multi(
            "alternative",
            [Leaf("plain", plain, charset, "quoted-printable"), Leaf("html", markup, charset, "quoted-printable")],
            _boundary(rng, "apple"),
        )

    if shape == "thunderbird":
        plain = _flow(f"{text}\n\n{tb_attr}\n{_quote_plain(thread.quoted_flowing)}\n")
        charset = _pick_charset(rng, lang, shape, [plain])
        return Leaf("plain", plain, charset, "7bit" if plain.isascii() else "8bit", flowed=True)

    if shape == "thunderbird-html":
        markup = (
            '<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv="Content-Type" content="text/html; '
            f'charset=UTF-8">\n  </head>\n  <body{dir_attr}>\n{_html_paragraphs(text)}\n'
            f'    <div class="moz-cite-prefix">{_esc(tb_attr)}<br>\n    </div>\n'
            f'    <blockquote type="cite" cite="mid:{thread.message_id[1:-1]}">\n'
            f"{_original_html(thread, True)}\n    </blockquote>\n  </body>\n</html>\n"
        )
        plain = _flow(f"{text}\n\n{tb_attr}\n{_quote_plain(thread.quoted_flowing)}\n")
        return Multi(
            "alternative",
            [Leaf("plain", plain, "utf-8", "8bit", flowed=True), Leaf("html", markup, "utf-8", "8bit")],
            _boundary(rng, "thunderbird"),
        )

    if shape == "mobile":
        plain = (
            f"{text}\n\n{thread.strings['mobile_signature']}\n\n{_quote_plain(apple_attr)}\n>\n"
            f"{_quote_plain(original_plain)}\n"
        )
        if rng.random() < 0.5:
            return Leaf("plain", plain, "utf-8", "base64" if not text.isascii() else "quoted-printable")
        markup = (
            f'<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body{dir_attr} '
            f'dir="auto"><div dir="ltr">{_html_apple(text)}</div>'
            '<div dir="ltr"><br id="lineBreakAtBeginningOfSignature">'
            f'<div dir="ltr">{_esc(thread.strings["mobile_signature"])}</div><div dir="ltr"><br>'
            f'<blockquote type="cite">{_esc(apple_attr)}<br><br></blockquote></div><blockquote type="cite">'
            f'<div dir="ltr">{_original_html(thread, True)}</div></blockquote></div></body></html>\n'
        )
        return Multi(
            "alternative",
            [Leaf("plain", plain, "utf-8", "quoted-printable"), Leaf("html", markup, "utf-8", "quoted-printable")],
            _boundary(rng, "apple"),
        )

    if shape == "plain":
        body = f"{text}\n"
        charset = _pick_charset(rng, lang, shape, [body])
        return Leaf("plain", body, charset, _pick_encoding(rng, charset, body, ("8bit", "quoted-printable", "base64")))

    raise ValueError(f"unknown shape {shape}")


def render_notice(shape: str, thread: Thread, text: str, person: tuple[str, str], rng: random.Random) -> Leaf | Multi:
    """An automatic notice (absence, ticket receipt): the text alone, as servers send it."""
    dir_attr = ' dir="rtl"' if thread.direction == "rtl" else ""
    if shape == "exchange-notice":
        markup = (
            '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n</head>\n'
            f'<body{dir_attr}>\n<div style="font-family:Calibri,Arial,Helvetica,sans-serif; font-size:11pt">\n'
            f"{_html_paragraphs(text)}\n</div>\n</body>\n</html>\n"
        )
        return Multi(
            "alternative",
            [
                Leaf("plain", text + "\n", "utf-8", "quoted-printable"),
                Leaf("html", markup, "utf-8", "quoted-printable"),
            ],
            _boundary(rng, "outlook"),
        )
    if shape == "gmail-vacation":
        markup = f'<div dir="{thread.direction}">{_html_gmail(text)}</div>\n'
        return Multi(
            "alternative",
            [
                Leaf("plain", text + "\n", "utf-8", "quoted-printable"),
                Leaf("html", markup, "utf-8", "quoted-printable"),
            ],
            _boundary(rng, "gmail"),
        )
    if shape == "notice-plain":
        charset = _pick_charset(rng, thread.language, "plain", [text])
        return Leaf("plain", text + "\n", charset, _pick_encoding(rng, charset, text, ("8bit", "quoted-printable")))
    if shape == "ticket-html":
        markup = (
            f'<!DOCTYPE html>\n<html><body{dir_attr}><table width="100%" cellpadding="0" cellspacing="0"><tr><td '
            f'style="font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#333333">\n{_html_paragraphs(text)}\n'
            "</td></tr></table></body></html>\n"
        )
        return Leaf("html", markup, "utf-8", rng.choice(["quoted-printable", "base64"]))
    raise ValueError(f"unknown shape {shape}")


def _headers(
    thread: Thread,
    frm: tuple[str, str],
    subject: str,
    shape: str,
    rng: random.Random,
    seed: str,
    in_reply_to: Sequence[str],
) -> list[tuple[str, str]]:
    domain = frm[1].split("@", 1)[1]
    tag = f"{_hash(seed):016x}"
    if shape == "gmail" or shape == "gmail-vacation":
        message_id = f"<CA{base64.b32encode(bytes.fromhex(tag)).decode().rstrip('=')}@mail.gmail.com>"
    elif shape.startswith(("outlook", "owa", "exchange")):
        message_id = (
            f"<AM0PR07MB{tag[:4].upper()}{tag[4:].upper()}@AM0PR07MB{tag[:4].upper()}.eurprd07.prod.outlook.com>"
        )
    else:
        message_id = f"<{_uuid(rng)}@{domain}>"
    headers = [
        ("From", _address(*frm, rng)),
        ("To", _address(*thread.sales, rng)),
        ("Subject", _header_value(subject, rng)),
        ("Date", _date(rng, ORIGINAL_SENT)),
        ("Message-ID", message_id),
        ("In-Reply-To", in_reply_to[-1]),
        ("References", " ".join(in_reply_to)),
    ]
    if shape.startswith(("outlook", "exchange")):
        headers += [("Thread-Topic", _header_value(thread.subject, rng)), ("X-Mailer", "Microsoft Outlook 16.0")]
    elif shape.startswith("thunderbird"):
        headers += [("User-Agent", "Mozilla Thunderbird"), ("Content-Language", thread.language)]
    elif shape == "apple":
        headers += [("X-Mailer", "Apple Mail (2.3774.600.62)")]
    elif shape == "mobile":
        headers += [("X-Mailer", "iPhone Mail (22B91)")]
    mime_version = "1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))" if shape == "apple" else "1.0"
    headers.append(("MIME-Version", mime_version))
    return headers


# ---------------------------------------------------------------- the corpus


def _weighted(rng: random.Random, weights: dict[str, int], exclude: Sequence[str] = ()) -> str:
    shapes = [s for s in weights if s not in exclude]
    return rng.choices(shapes, [weights[s] for s in shapes])[0]


def _cases_of_text(thread: Thread, reply: Reply, part: str, notices: Sequence[Reply]) -> Iterator[Case]:
    rng = random.Random(f"corpus/{reply.id}")
    person = rng.choice(thread.people)
    subject = thread.reply_subject(reply.subject)
    is_notice = reply.expect == "auto-reply"
    weights = AUTO_REPLY_SHAPES if is_notice else REPLY_SHAPES
    if reply.kind == "ticket":
        weights = {"ticket-html": 2, "notice-plain": 1}
    render = render_notice if is_notice else render_reply
    shapes = [_weighted(rng, weights)]
    if _chance(f"second/{reply.id}", SECOND_RENDERING):
        shapes.append(_weighted(rng, weights, exclude=shapes))
    for shape in shapes:
        node = render(shape, thread, reply.text, person, rng)
        headers = _headers(thread, person, subject, shape, rng, f"{reply.id}/{shape}", [thread.message_id])
        raw = _message(headers, node)
        yield Case(
            f"{reply.id}.{shape}", reply.language, reply.expect, reply.kind, part, shape, raw, reply.id, reply.text
        )

    if is_notice and _chance(f"headers/{reply.id}", HEADER_AUTO_REPLY_SHARE):
        shape = "exchange-notice" if reply.kind != "ticket" else "ticket-html"
        node = render_notice(shape, thread, reply.text, person, rng)
        headers = _headers(thread, person, subject, shape, rng, f"{reply.id}/headers", [thread.message_id])
        headers.insert(3, ("Auto-Submitted", "auto-replied"))
        headers.insert(4, ("X-Auto-Response-Suppress", "All"))
        raw = _message(headers, node)
        yield Case(
            f"{reply.id}.headers",
            reply.language,
            "auto-reply",
            "out-of-office-headers",
            part,
            shape,
            raw,
            reply.id,
            reply.text,
        )

    if reply.expect == "opt-out" and notices and _chance(f"ooo-trap/{reply.id}", OOO_TRAP_SHARE):
        yield _absence_quoting(thread, reply, part, rng.choice(list(notices)), person, rng)

    if (
        reply.expect == "none"
        and reply.kind in POSITIVE_KINDS
        and _chance(f"footer-trap/{reply.id}", FOOTER_TRAP_SHARE)
    ):
        yield _footer_quoted(thread, reply, part, person, subject, rng)


def _absence_quoting(
    thread: Thread, reply: Reply, part: str, notice: Reply, person: tuple[str, str], rng: random.Random
) -> Case:
    """A colleague's absence notice, sent to everyone on the person's opt-out, quoting it."""
    colleague = rng.choice([p for p in thread.people if p != person])
    person_id = f"<{_uuid(rng)}@{person[1].split('@', 1)[1]}>"
    subject = thread.reply_subject(notice.subject)
    person_subject = thread.reply_subject(reply.subject)
    if rng.random() < 0.5:
        block = _outlook_block(thread, person, thread.sales, person_subject)
        quoted_block = "\n".join(f"{k}: {v}" for k, v in block)
        body = (
            f"{notice.text}\n\n{thread.strings['original_message']}\n{quoted_block}\n\n{reply.text}\n\n"
            f"{_quote_plain(thread.quoted_plain)}\n"
        )
        node: Leaf | Multi = Leaf("plain", body, "utf-8", "quoted-printable")
        shape = "absence-quoting-plain"
    else:
        attr = thread.attribution("gmail_attribution", *person)
        plain = (
            f"{notice.text}\n\n{attr}\n\n{_quote_plain(reply.text)}\n>\n{_quote_plain(thread.quoted_plain, '> > ')}\n"
        )
        markup = (
            f'<div dir="{thread.direction}">{_html_gmail(notice.text)}</div><br><div class="gmail_quote">'
            f'<div dir="{thread.direction}" class="gmail_attr">{_esc(attr)}<br></div><blockquote class="gmail_quote" '
            f'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">'
            f'<div dir="{thread.direction}">{_html_gmail(reply.text)}</div><br><blockquote>'
            f"{_original_html(thread, False)}</blockquote></blockquote></div>\n"
        )
        node = Multi(
            "alternative",
            [Leaf("plain", plain, "utf-8", "quoted-printable"), Leaf("html", markup, "utf-8", "quoted-printable")],
            _boundary(rng, "gmail"),
        )
        shape = "absence-quoting-gmail"
    headers = _headers(thread, colleague, subject, shape, rng, f"{reply.id}/ooo-trap", [thread.message_id, person_id])
    return Case(
        f"{reply.id}.ooo-trap",
        reply.language,
        "auto-reply",
        "trap-out-of-office-quoting",
        part,
        shape,
        _message(headers, node),
        reply.id,
        notice.text,
    )


def _footer_quoted(
    thread: Thread, reply: Reply, part: str, person: tuple[str, str], subject: str, rng: random.Random
) -> Case:
    """A positive reply that quotes only our footer's "reply No thanks or STOP" sentence."""
    quoted = _quote_plain(_fill(thread.objection_sentence, 74))
    if rng.random() < 0.5:
        body, shape = f"{reply.text}\n\n{quoted}\n", "footer-quoted-below"
    else:
        body, shape = f"{quoted}\n\n{reply.text}\n", "footer-quoted-inline"
    node = Leaf("plain", body, "utf-8", rng.choice(["quoted-printable", "8bit"]))
    headers = _headers(thread, person, subject, "plain", rng, f"{reply.id}/footer-trap", [thread.message_id])
    return Case(
        f"{reply.id}.footer-trap",
        reply.language,
        "none",
        "trap-footer-quoted",
        part,
        shape,
        _message(headers, node),
        reply.id,
        reply.text,
    )


def iter_corpus(part: str = "evaluation", texts_dir: Path = TEXTS_DIR) -> Iterator[Case]:
    """Every rendered case of the part ("train", "evaluation" or "all"), language by language."""
    if part not in (*PARTS, "all"):
        raise ValueError(f"part must be one of {', '.join(PARTS)} or all, not {part!r}")
    footers = load_footers()
    for text_file in load_text_files(texts_dir):
        thread = make_thread(text_file, footers)
        for reply in text_file.replies:
            reply_part = part_of(reply.id)
            if part != "all" and reply_part != part:
                continue
            # An absence notice used in a trap comes from the same part as the opt-out it quotes.
            notices = [
                r
                for r in text_file.replies
                if r.kind == "out-of-office" and r.expect == "auto-reply" and part_of(r.id) == reply_part
            ]
            yield from _cases_of_text(thread, reply, reply_part, notices)


def write_corpus(out: Path, parts: Sequence[str] = PARTS, texts_dir: Path = TEXTS_DIR) -> int:
    count = 0
    for part in parts:
        folder = out / part
        folder.mkdir(parents=True, exist_ok=True)
        for case in iter_corpus(part, texts_dir):
            (folder / f"{case.id}.eml").write_bytes(case.raw)
            count += 1
    return count


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="DIR", type=Path, help="write DIR/<part>/<id>.eml")
    parser.add_argument("--texts", metavar="DIR", type=Path, default=TEXTS_DIR, help="the text files")
    args = parser.parse_args(argv)
    if args.write:
        count = write_corpus(args.write, texts_dir=args.texts)
        out(f"{count} messages written to {args.write}")
        return 0
    for part in PARTS:
        cases = list(iter_corpus(part, args.texts))
        out(f"{part}: {len(cases)} messages from {len({c.text_id for c in cases})} texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
