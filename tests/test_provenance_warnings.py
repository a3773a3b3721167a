"""A sender writing to many contacts without a recorded source is warned once per domain, and each is counted."""

from __future__ import annotations

import logging
import smtplib
import uuid

import pytest

from proxy.cli.service import format_status
from proxy.service.status import service_status
from proxy.store import today
from tests.harness import RelayThread, wait_until


def _send(relay: RelayThread, address: str, number: int) -> None:
    raw = (
        f"From: anna@nordlicht.example\r\nTo: {address}\r\nSubject: Angebot\r\n"
        f"Message-ID: <prov-{number}-{uuid.uuid4().hex}@nordlicht.example>\r\n\r\nGuten Tag\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
        client.sendmail("anna@nordlicht.example", [address], raw)


def test_unrecorded_source_is_warned_once_per_domain_and_every_message_counted(
    upstream, relay_to, caplog: pytest.LogCaptureFixture
) -> None:
    relay = relay_to()
    # Domains of their own: the once-per-period memory lives as long as the process.
    first, second = f"firma-{uuid.uuid4().hex[:8]}.de", f"societe-{uuid.uuid4().hex[:8]}.fr"
    addresses = [f"a@{first}", f"b@{first}", f"c@{first}", f"d@{second}"]
    with caplog.at_level(logging.WARNING, logger="gdpr_proxy.steps"):
        for number, address in enumerate(addresses):
            _send(relay, address, number)
    wait_until(lambda: len(upstream.received) == len(addresses))
    warnings = [r.getMessage() for r in caplog.records if "without a recorded source" in r.getMessage()]
    assert [first in w for w in warnings].count(True) == 1, warnings
    assert [second in w for w in warnings].count(True) == 1, warnings
    assert service_counts(relay).get("unrecorded.source") == len(addresses)
    # and `gdpr-proxy status` shows them
    service = relay.service
    assert service is not None
    status = relay.call(service_status(service))
    assert status["today"]["unrecorded"]["source"] == len(addresses)
    assert f"source today: {len(addresses)}" in format_status(status)


def service_counts(relay: RelayThread) -> dict[str, int]:
    service = relay.service
    assert service is not None

    async def flushed() -> dict[str, int]:
        await service.handler.flush_counts()
        return await service.store.counts_for(today())

    counts: dict[str, int] = relay.call(flushed())
    return counts
