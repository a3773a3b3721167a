"""Ready-to-send answers to access requests (Art. 15), from rules/answers.yaml.

Like the other rule files, a copy in the user's rule directory replaces the shipped one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from proxy.rules.templates import FALLBACK_LANGUAGE, language_problems, template_problems
from proxy.schema import load_file

SHIPPED_ANSWERS = Path(str(files("proxy.rules") / "shipped" / "answers.yaml"))
PLACEHOLDERS = (
    "address",
    "data",
    "source",
    "reason",
    "sender_name",
    "company",
    "opt_out_address",
    "privacy_policy_url",
    "contact_days",
    "message_days",
)


@dataclass(frozen=True)
class Labels:
    """One label per line of the data list, in the order the lines appear."""

    address: str
    name: str
    company: str
    role: str
    language: str
    country: str
    source: str
    reason: str
    tracking_consent: str
    marketing_consent: str
    consent_history: str
    first_contact: str
    last_contact: str
    last_reply: str
    bounce_state: str
    messages_sent: str
    replies: str
    opt_out: str


@dataclass(frozen=True)
class Values:
    granted: str
    denied: str
    unknown: str
    erased: str


PAGE_PLACEHOLDERS = ("company", "address")


@dataclass(frozen=True)
class UnsubscribePage:
    """The one-click unsubscribe page (a GET only asks; the button's POST unsubscribes)."""

    title: str
    question: str
    button: str
    done: str
    invalid: str

    def check(self) -> Iterable[tuple[str, str]]:
        for key in ("title", "question", "button", "done", "invalid"):
            text = getattr(self, key)
            if not text.strip():
                yield key, "must not be empty"
            for problem in template_problems(text, PAGE_PLACEHOLDERS):
                yield key, problem


@dataclass(frozen=True)
class LanguageAnswers:
    name: str
    subject: str
    held: str
    nothing_held: str
    labels: Labels
    values: Values
    direction: Literal["ltr", "rtl"] = "ltr"
    # The optional note to someone who opted out (watcher.confirm_opt_out); empty: English is used.
    removed_subject: str = ""
    removed: str = ""
    unsubscribe: UnsubscribePage | None = None  # empty: the English page is shown

    def check(self) -> Iterable[tuple[str, str]]:
        for key in ("subject", "held", "nothing_held"):
            if not getattr(self, key).strip():
                yield key, "must not be empty"
        for key in ("subject", "held", "nothing_held", "removed_subject", "removed"):
            for problem in template_problems(getattr(self, key), PLACEHOLDERS):
                yield key, problem
        if bool(self.removed_subject.strip()) != bool(self.removed.strip()):
            yield "removed", "removed and removed_subject go together"


@dataclass(frozen=True)
class AnswerRules:
    languages: dict[str, LanguageAnswers]

    def check(self) -> Iterable[tuple[str, str]]:
        yield from language_problems(self.languages)

    def page(self, language: str) -> tuple[str, UnsubscribePage | None]:
        """The unsubscribe page in ``language``, else in English (None when no language has one)."""
        for code in (language.lower(), FALLBACK_LANGUAGE):
            texts = self.languages.get(code)
            if texts is not None and texts.unsubscribe is not None:
                return code, texts.unsubscribe
        return FALLBACK_LANGUAGE, None

    def pick(self, *candidates: str | None) -> tuple[str, LanguageAnswers]:
        """The first candidate language that has texts, else English."""
        for code in candidates:
            if code and code.lower() in self.languages:
                return code.lower(), self.languages[code.lower()]
        return FALLBACK_LANGUAGE, self.languages[FALLBACK_LANGUAGE]


def answers_path(user_rules_dir: Path | None) -> Path:
    if user_rules_dir is not None and (user_rules_dir / "answers.yaml").is_file():
        return user_rules_dir / "answers.yaml"
    return SHIPPED_ANSWERS


def load_answers(user_rules_dir: Path | None = None) -> AnswerRules:
    """Raises proxy.schema.SchemaError with file, line and key for every problem."""
    return load_file(answers_path(user_rules_dir), AnswerRules)


@dataclass(frozen=True)
class Answer:
    language: str
    direction: str
    subject: str
    text: str


def data_lines(texts: LanguageAnswers, held: Mapping[str, Any]) -> list[str]:
    """'- label: value' for each thing held, in the order of the labels."""
    contact = held.get("contact") or {}
    words = {"granted": texts.values.granted, "denied": texts.values.denied, "unknown": texts.values.unknown}
    values: dict[str, str] = {"address": held["address"]}
    for key in ("name", "company", "role", "language", "country", "source", "reason", "bounce_state"):
        if contact.get(key):
            values[key] = str(contact[key])
    for key in ("tracking_consent", "marketing_consent"):
        if contact.get(key):
            values[key] = words.get(contact[key], contact[key])
    # the kind of consent in the person's language, as the consent lines above name it
    kinds = {"tracking": texts.labels.tracking_consent, "marketing": texts.labels.marketing_consent}
    history = held.get("consent_history") or []
    if history:
        values["consent_history"] = "; ".join(
            f"{e['at'][:10]} {kinds.get(e['kind'], e['kind'])}: {words.get(e['value'], e['value'])}"
            + (f" ({e['how']})" if e.get("how") else "")
            for e in history
        )
    for key, column in (
        ("first_contact", "first_contact_at"),
        ("last_contact", "last_contact_at"),
        ("last_reply", "last_reply_at"),
    ):
        if contact.get(column):
            values[key] = str(contact[column])[:10]
    if held.get("relayed_messages"):
        values["messages_sent"] = str(len(held["relayed_messages"]))
    if held.get("classified_replies"):
        values["replies"] = str(len(held["classified_replies"]))
    entries = [s for s in held.get("suppressions") or [] if s["kind"] != "hash"]
    if entries:
        values["opt_out"] = ", ".join(
            s["created_at"][:10] + (f" ({s['value']})" if s["kind"] == "domain" else "") for s in entries
        )
    lines = [f"- {getattr(texts.labels, f.name)}: {values[f.name]}" for f in fields(Labels) if f.name in values]
    if any(s["kind"] == "hash" for s in held.get("suppressions") or []):
        lines.append(f"- {texts.values.erased}")
    return lines


def render_answer(
    rules: AnswerRules, language: str | None, held: Mapping[str, Any], placeholders: Mapping[str, str]
) -> Answer:
    """The answer in ``language`` (or English); ``held`` is the export, ``placeholders`` the rest."""
    code, texts = rules.pick(language)
    lines = data_lines(texts, held)
    something = len(lines) > 1  # the address line alone means nothing is held
    values = {**placeholders, "address": held["address"], "data": "\n".join(lines)}
    template = texts.held if something else texts.nothing_held
    return Answer(code, texts.direction, texts.subject.format(**values), template.format(**values))
