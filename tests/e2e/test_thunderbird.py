"""Real Thunderbird under Xvfb against the running relay: what a salesperson sees when sending."""

from __future__ import annotations

import email
import subprocess
import sys
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from proxy.cli.commands import main as gdpr_proxy
from tests.e2e.thunderbird import MISSING, Thunderbird, VirtualDisplay
from tests.harness import upstream_settings, wait_until
from tests.journey import imap_settings
from tests.ports import free_port
from tests.upstream import RecordingHandler

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed (apt-get install thunderbird xvfb xdotool; ./run tests does it in CI)",
)

SENDER = "anna@nordlicht.example"


@pytest.fixture
def display() -> Iterator[VirtualDisplay]:
    screen = VirtualDisplay()
    yield screen
    screen.stop()


def prospects(handler: RecordingHandler) -> list[str]:
    return sorted(r for m in handler.received if b"X-GDPR-Proxy-Notice" not in m.data for r in m.rcpt_tos)


def test_one_opted_out_recipient_among_three(tmp_path: Path, display, upstream, start_relay, mailbox):
    relay = start_relay({**upstream_settings(upstream.port), "imap": imap_settings(mailbox)})
    assert gdpr_proxy(["-c", str(tmp_path / "config.yaml"), "suppress", "add", "eva@firma.example"]) == 0
    thunderbird = Thunderbird(tmp_path / "tb", display, relay.port, "Anna Nowak", SENDER)
    outcome = thunderbird.send(
        ["jan@kunde.example", "eva@firma.example", "piotr@klient.example"],
        "Routenplanung",
        "Guten Tag, kurz zu unserer Routenplanung.\n",
        delivered=lambda: len(upstream.handler.received) >= 1,
    )
    assert outcome.error_window is None, f"Thunderbird showed an error: {outcome.error_window}"
    assert outcome.sent
    assert prospects(upstream.handler) == ["jan@kunde.example", "piotr@klient.example"]
    assert wait_until(lambda: len(mailbox.uids()) == 1), "no notice in the INBOX"
    with mailbox.client() as imap:
        imap.select("INBOX")
        _typ, data = imap.fetch("1", "(RFC822)")
    raw = next(part[1] for part in data if isinstance(part, tuple))
    notice = email.message_from_bytes(raw, policy=policy.default)
    assert "Routenplanung" in notice["Subject"]
    text = notice.get_content()  # type: ignore[attr-defined]
    assert "eva@firma.example: opted out on" in text
    assert "\\Flagged" in next(iter(mailbox.flags().values()))


def test_upstream_down_thunderbird_says_sent_and_it_arrives_later(tmp_path: Path, display, start_relay):
    port = free_port()  # nothing listens there yet: the user's server is down
    relay = start_relay(upstream_settings(port, timeout_seconds=2))
    thunderbird = Thunderbird(tmp_path / "tb", display, relay.port, "Anna Nowak", SENDER)
    outcome = thunderbird.send(
        ["jan@kunde.example"],
        "Angebot",
        "Guten Tag, anbei unser Angebot.\n",
        delivered=lambda: len(relay.spool_entries) == 1,
    )
    assert outcome.error_window is None, f"Thunderbird showed an error: {outcome.error_window}"
    assert outcome.sent
    listing = subprocess.run(
        [sys.executable, "-m", "proxy", "-c", str(tmp_path / "config.yaml"), "queue"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert listing.returncode == 0 and "jan@kunde.example" in listing.stdout, listing.stdout + listing.stderr
    handler = RecordingHandler()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()  # the server is back
    try:
        assert wait_until(lambda: prospects(handler) == ["jan@kunde.example"] and not relay.spool_entries, 30)
    finally:
        server.stop()
    assert b"Subject: Angebot" in handler.received[0].data
