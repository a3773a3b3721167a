"""A message's way through the relay: an ordered list of small named steps.

Each step does one thing to a MessageContext (plan recipients, add a footer, strip
trackers...).  A step that refuses the message raises Reject with the SMTP reply; a step
that changes the message calls ``ctx.mark_applied()``, which records the step's one name (the name
in ``message_steps``, also the one the log line shows).  Steps never talk SMTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from proxy.config.settings import Config
from proxy.mime.structure import forget as forget_scans
from proxy.rules.ruleset import RuleSet

if TYPE_CHECKING:
    from proxy.store import Store

log = logging.getLogger("gdpr_proxy.pipeline")

YIELD_ABOVE = 256 * 1024  # bytes


class Reject(Exception):
    """A step refuses the whole message; ``reply`` is the SMTP reply for the client."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


@dataclass
class RecipientPlan:
    """What the relay will do for one envelope recipient."""

    address: str  # as the client gave it
    normalised: str
    domain: str
    contact: dict[str, Any] | None = None
    region: str = ""
    language: str = "en"
    first_contact: bool = True
    footer_kind: Literal["first_contact", "follow_up", "consent"] | None = None  # None: no footer
    footer_values: dict[str, str] = field(default_factory=dict)
    strip_trackers: bool = False
    # prospect, consent (marketing consent given), customer, inbound (wrote first), colleague (own domain)
    audience: str = "prospect"
    notice_delivered: bool = False  # this person's copy carries the full first-contact notice

    def treatment(self) -> tuple[Any, ...]:
        """Recipients with equal treatment share one version of the message."""
        footer = (self.footer_kind, self.language, tuple(sorted(self.footer_values.items())))
        return (footer if self.footer_kind else None, self.strip_trackers)


@dataclass
class Version:
    """One variant of the message and the recipients it goes to."""

    recipients: list[RecipientPlan]
    raw: bytes
    actions: list[str] = field(default_factory=list)


@dataclass
class MessageContext:
    mail_from: str
    raw: bytes
    recipients: list[RecipientPlan]
    rules: RuleSet
    config: Config
    store: Store
    message_id: str | None = None
    smtputf8: bool = False
    versions: list[Version] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    unmodifiable: str | None = None  # why the message must leave exactly as it came
    unmodified: bytes = b""  # the message as received (line endings checked), before any change
    split_each: bool = False  # every recipient gets a copy addressed to them alone
    clean_lines: bool = False  # the SMTP edge saw no bare CR or LF and no NUL while reading the message
    started: float = field(default_factory=time.monotonic)
    current_step: str = ""  # the running step's name, set by run_pipeline
    counts: Counter[str] = field(default_factory=Counter)  # added to the daily counters for `status`

    @property
    def label(self) -> str:
        """How log lines name this message: by Message-ID, never by content."""
        return f"<{self.message_id}>" if self.message_id else "<no Message-ID>"

    def mark_applied(self) -> None:
        """The running step changed the message: the log and ``preview`` name it by the step's name."""
        if self.current_step and self.current_step not in self.applied:
            self.applied.append(self.current_step)


StepFunc = Callable[[MessageContext], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunc


_running = 0  # messages in the pipeline right now


async def run_pipeline(steps: Sequence[Step], ctx: MessageContext) -> None:
    global _running
    _running += 1
    try:
        large = len(ctx.raw) > YIELD_ABOVE
        for step in steps:
            ctx.current_step = step.name
            await step.run(ctx)
            if large:
                # Each step over a large message may hold the event loop for milliseconds;
                # other clients' commands are answered between the steps.
                await asyncio.sleep(0)
    finally:
        ctx.current_step = ""
        _running -= 1
        # The steps shared each version's MIME structure scan; done, so let the bytes go.
        # Only this message's: the other messages in the pipeline still use theirs (with
        # many clients at once, forgetting them all made every step scan again).  When no
        # message is left in the pipeline, nothing at all stays remembered.
        if _running:
            forget_scans(ctx.raw, ctx.unmodified, *(v.raw for v in ctx.versions))
        else:
            forget_scans()
