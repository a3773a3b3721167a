"""Schema and compiled form of rules/bounces.yaml: the wordings that say why a delivery failed."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Literal

from proxy.schema import Positive, Regex, check_unique, load_file

Category = Literal["recipient-gone", "mailbox-full", "temporary", "recipient-policy", "sender-side", "unknown"]
CATEGORIES: tuple[Category, ...] = (
    "recipient-gone",
    "mailbox-full",
    "temporary",
    "recipient-policy",
    "sender-side",
    "unknown",
)


@dataclass(frozen=True)
class Wording:
    reason: str
    category: Literal["recipient-gone", "mailbox-full", "temporary", "recipient-policy", "sender-side"]
    patterns: tuple[Regex, ...]
    check: str = ""  # sender-side: what the user should look at

    def check_problems(self) -> list[tuple[str, str]]:
        problems = []
        if not self.patterns:
            problems.append(("patterns", "needs at least one pattern"))
        if self.category == "sender-side" and not self.check.strip():
            problems.append(("check", "a sender-side wording needs a 'check' telling the user what to look at"))
        return problems


@dataclass(frozen=True)
class Suspension:
    """Temporary failures that suspend an address: so many within so many days, for so long."""

    failures: Positive = 3
    within_days: Positive = 15
    suspend_days: Positive = 30


@dataclass(frozen=True)
class BounceFile:
    wordings: tuple[Wording, ...] = ()
    suspension: Suspension = field(default_factory=Suspension)

    def check(self) -> list[tuple[str, str]]:
        problems = check_unique(self.wordings, "reason", "wordings")
        for i, wording in enumerate(self.wordings):
            problems += [(f"wordings[{i}].{key}", message) for key, message in wording.check_problems()]
        return problems


@dataclass(frozen=True)
class CompiledWording:
    reason: str
    category: Category
    pattern: re.Pattern[str]
    check: str


@dataclass(frozen=True)
class BounceRules:
    """The wordings in priority order, each compiled into one expression."""

    wordings: tuple[CompiledWording, ...]
    suspension: Suspension = field(default_factory=Suspension)

    @classmethod
    def compile(cls, source: BounceFile) -> BounceRules:
        return cls(
            tuple(
                CompiledWording(w.reason, w.category, re.compile("|".join(f"(?:{p})" for p in w.patterns)), w.check)
                for w in source.wordings
            ),
            source.suspension,
        )

    def advice(self, reason: str) -> str:
        return next((w.check for w in self.wordings if w.reason == reason), "")


@functools.cache
def shipped_bounce_rules() -> BounceRules:
    """The shipped wordings, for tools and benchmarks that run without a rule set."""
    path = Path(str(files("proxy.rules") / "shipped" / "bounces.yaml"))
    return BounceRules.compile(load_file(path, BounceFile))
