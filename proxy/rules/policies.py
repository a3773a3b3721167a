"""Sending policies from rules/policies.yaml and consumer domains from rules/freemail.yaml."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from proxy.addresses import parent_domains

log = logging.getLogger("gdpr_proxy.policies")


@dataclass(frozen=True)
class Policy:
    action: str = "allow"
    log_only: bool = False  # decide and log, but let the mail through: for trying a policy out

    def decide(self, finding: str) -> str:
        """The one place a policy's action is applied to ``finding`` (what a check found, for the log).

        Returns the action to carry out: "allow" for allow, warn and log_only (each logged), else the
        action itself ("reject", "split"...).
        """
        if self.action == "allow":
            return "allow"
        if self.log_only:
            log.warning("%s: would be %s (log_only), sent", finding, _PAST.get(self.action, self.action))
            return "allow"
        if self.action == "warn":
            log.warning("%s: sent (policy warn)", finding)
            return "allow"
        return self.action


_PAST = {"reject": "refused", "split": "split", "warn": "sent with a warning"}


@dataclass(frozen=True)
class ConsumerPolicy(Policy):
    action: Literal["reject", "warn", "allow"] = "reject"


@dataclass(frozen=True)
class GroupPolicy(Policy):
    action: Literal["allow", "warn", "reject", "split"] = "warn"


@dataclass(frozen=True)
class PolicyRules:
    signed_messages: Literal["send_unchanged", "refuse"] = "send_unchanged"
    unmodifiable_messages: Literal["send_unchanged", "refuse"] = "send_unchanged"
    consumer_addresses: ConsumerPolicy = field(default_factory=ConsumerPolicy)
    several_recipients: GroupPolicy = field(default_factory=GroupPolicy)
    list_unsubscribe: bool = True
    unwrap_click_tracking: bool = False
    footers: bool = True
    strip_trackers: bool = True


@dataclass(frozen=True)
class FreemailRules:
    consumer_domains: tuple[str, ...] = ()

    def check(self) -> list[tuple[str, str]]:
        problems = []
        seen: set[str] = set()
        for i, domain in enumerate(self.consumer_domains):
            if domain != domain.lower() or "." not in domain or " " in domain:
                problems.append((f"consumer_domains[{i}]", f"{domain!r} is not a lower-case domain name"))
            if domain in seen:
                problems.append((f"consumer_domains[{i}]", f"{domain!r} is listed twice"))
            seen.add(domain)
        return problems

    def is_consumer(self, domain: str) -> bool:
        domains: frozenset[str] | None = self.__dict__.get("_set")
        if domains is None:
            domains = frozenset(self.consumer_domains)
            object.__setattr__(self, "_set", domains)
        return any(d in domains for d in parent_domains(domain))
