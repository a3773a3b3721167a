"""Upstream faults: whatever the user's server does, nothing is lost and the client is told the truth.

Rule under test (README, "What the client is told"): 250 when every copy was accepted or is
safely held by the relay (spool: unreachable, timeout, TLS failure, 4xx; bounce), otherwise
the upstream's 5xx.
"""

from __future__ import annotations

import asyncio
import email
import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.harness import RelayThread, upstream_settings, wait_until
from tests.ports import free_port
from tests.test_hostile_smtp import FROM, PLAIN, TO, merged
from tests.upstream import RecordingHandler, RecordingServer

OTHER = "eva@kunde.example"


def send(relay: RelayThread, rcpts: list[str], message: bytes = PLAIN) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        return client.sendmail(FROM, rcpts, message)


def delivered_to(server: RecordingServer) -> list[str]:
    return sorted(r for m in server.received for r in m.rcpt_tos)


@pytest.fixture
def relay_to(upstream: RecordingServer, start_relay: Callable[..., RelayThread]) -> Callable[..., RelayThread]:
    def start(port: int | None = None, **extra: Any) -> RelayThread:
        base = upstream_settings(port or upstream.port, timeout_seconds=2)
        return start_relay(merged(base, extra))

    return start


class ScriptedHandler(RecordingHandler):
    """Recording handler with per-transaction DATA answers and an optional stall."""

    def __init__(self) -> None:
        super().__init__()
        self.data_script: list[str | None] = []  # consumed one per DATA; None = accept
        self.stall_stage = ""  # "mail", "rcpt" or "data": never answer in time there
        self.data_commands = 0

    async def _stall(self, stage: str) -> None:
        if self.stall_stage == stage:
            await asyncio.sleep(30)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._stall("mail")
        return str(await super().handle_MAIL(server, session, envelope, address, options))

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._stall("rcpt")
        return str(await super().handle_RCPT(server, session, envelope, address, options))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_commands += 1
        await self._stall("data")
        if self.data_script:
            reply = self.data_script.pop(0)
            if reply:
                return reply
        return str(await super().handle_DATA(server, session, envelope))


class CustomServer(RecordingServer):
    """A RecordingServer with another handler or extra aiosmtpd parameters."""

    def __init__(self, handler: RecordingHandler | None = None, port: int | None = None, **smtp: Any):
        self.handler = handler or RecordingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port or free_port(), **smtp)


@pytest.fixture
def scripted() -> Iterator[RecordingServer]:
    server = CustomServer(ScriptedHandler()).start()
    yield server
    server.stop()


# --- connection-level faults ---


def queued(relay: RelayThread, rcpts: list[str]) -> None:
    """The client is told 250 and the relay holds the message in its durable queue."""
    assert send(relay, rcpts) == {}
    assert sorted(r for e in relay.spool_entries for r in e.recipients) == sorted(rcpts)


def test_refused_connection_queues_then_delivers_when_back(upstream, relay_to):
    relay = relay_to()
    port = upstream.port
    upstream.stop()
    queued(relay, [TO])
    # When the server is back, the relay's retry goes through on a fresh connection.
    back = CustomServer(port=port).start()
    try:
        assert wait_until(lambda: delivered_to(back) == [TO] and relay.spool_entries == [])
    finally:
        back.stop()


def test_pooled_connection_closed_by_restarted_upstream_is_replaced(upstream, relay_to):
    relay = relay_to()
    assert send(relay, [TO]) == {}
    port = upstream.port
    upstream.stop()
    back = CustomServer(port=port).start()
    try:
        assert send(relay, [OTHER]) == {}
        assert delivered_to(back) == [OTHER]
    finally:
        back.stop()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_failure_is_queued_and_loses_nothing(upstream, relay_to, security):
    relay = relay_to(upstream={"security": security})
    started = time.monotonic()
    queued(relay, [TO])
    assert time.monotonic() - started < 6
    assert upstream.received == []


class RejectingAuthenticator:
    def __init__(self) -> None:
        self.attempts: list[tuple[str, bytes]] = []

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        self.attempts.append((mechanism, getattr(data, "password", b"")))
        return AuthResult(success=False, handled=False, message="535 5.7.8 Bad credentials for anna@upstream")


def test_upstream_auth_failure_text_reaches_client(relay_to, monkeypatch):
    monkeypatch.setenv("UPSTREAM_PW", "upstream-secret-pw")
    authenticator = RejectingAuthenticator()
    server = CustomServer(authenticator=authenticator, auth_required=True, auth_require_tls=False).start()
    try:
        relay = relay_to(port=server.port, upstream={"username": "anna", "password_env": "UPSTREAM_PW"})
        with pytest.raises(smtplib.SMTPDataError) as failure:
            send(relay, [TO])
    finally:
        server.stop()
    assert failure.value.smtp_code == 535
    assert b"Bad credentials for anna@upstream" in failure.value.smtp_error
    assert authenticator.attempts and authenticator.attempts[0][1] == b"upstream-secret-pw"
    assert server.received == [] and relay.spool_entries == []


# --- timeouts ---


def test_upstream_that_never_greets_times_out_and_queues(relay_to):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the connection; nobody ever speaks
        relay = relay_to(port=silent.getsockname()[1])
        started = time.monotonic()
        queued(relay, [TO])
        took = time.monotonic() - started
    assert took < 2 * 2 + 2, f"took {took:.1f}s with upstream timeout_seconds 2"


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_upstream_stalling_times_out_and_queues(scripted, relay_to, stage):
    scripted.handler.stall_stage = stage
    relay = relay_to(port=scripted.port, queue={"retry_seconds": 3600})
    started = time.monotonic()
    queued(relay, [TO])
    took = time.monotonic() - started
    assert took < 2 + 3, f"took {took:.1f}s with upstream timeout_seconds 2"
    assert scripted.received == []


# --- refusals at each stage ---


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
@pytest.mark.parametrize("reply", ["451 4.7.1 Greylisted, try again in 5 minutes", "550 5.7.1 Sender not allowed here"])
def test_refusal_at_each_stage_reaches_client(upstream, relay_to, stage, reply):
    relay = relay_to()
    if stage == "mail":
        upstream.behaviour.mail_reply = reply
    elif stage == "rcpt":
        upstream.behaviour.rcpt_replies[TO] = reply
    else:
        upstream.behaviour.data_reply = reply
    if reply.startswith("4"):  # the relay keeps it and retries; the client is done
        queued(relay, [TO])
        assert reply[10:] in relay.spool_entries[0].last_error
    else:
        with pytest.raises(smtplib.SMTPDataError) as failure:
            send(relay, [TO])
        assert failure.value.smtp_code == int(reply[:3])
        text = failure.value.smtp_error.decode()
        assert text.startswith(reply[4:9]) and reply[10:] in text, text
        assert relay.spool_entries == []
    assert upstream.received == []
    # Nothing stuck: once the server accepts, the message (queued or sent again) is delivered.
    upstream.behaviour.mail_reply = upstream.behaviour.data_reply = None
    upstream.behaviour.rcpt_replies.clear()
    if not relay.spool_entries:
        assert send(relay, [TO]) == {}
    assert wait_until(lambda: delivered_to(upstream) == [TO] and relay.spool_entries == [])


def test_connection_reset_during_data(upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.drop_at_data = True
    queued(relay, [TO])
    upstream.behaviour.drop_at_data = False
    assert wait_until(lambda: delivered_to(upstream) == [TO] and relay.spool_entries == [])


# --- partial acceptance: one copy out, the rest held by the relay ---


def test_permanent_refusal_of_one_recipient_bounces_to_sender(upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.rcpt_replies[OTHER] = "550 5.1.1 No such user here"
    assert send(relay, [TO, OTHER]) == {}
    # aiosmtpd records the null reverse-path as "<>"
    assert wait_until(lambda: any(m.mail_from in ("", "<>") for m in upstream.received))
    copies = [m for m in upstream.received if m.mail_from not in ("", "<>")]
    bounces = [m for m in upstream.received if m.mail_from in ("", "<>")]
    assert [m.rcpt_tos for m in copies] == [[TO]]
    assert len(bounces) == 1 and bounces[0].rcpt_tos == [FROM]
    dsn = email.message_from_bytes(bounces[0].data, policy=policy.default)
    assert dsn.get_content_type() == "multipart/report"
    assert OTHER in bounces[0].data.decode("utf-8", "replace")
    assert b"No such user here" in bounces[0].data
    assert wait_until(lambda: relay.spool_entries == [])


def test_temporary_refusal_of_one_recipient_is_spooled_then_delivered_once(upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.rcpt_replies[OTHER] = "451 4.2.0 Mailbox busy"
    assert send(relay, [TO, OTHER]) == {}
    assert delivered_to(upstream) == [TO]
    entries = relay.spool_entries
    assert [e.recipients for e in entries] == [[OTHER]]
    time.sleep(0.6)  # a few retry rounds while the server still refuses
    assert delivered_to(upstream) == [TO]
    upstream.behaviour.rcpt_replies.clear()
    assert wait_until(lambda: delivered_to(upstream) == [OTHER, TO])
    assert wait_until(lambda: relay.spool_entries == [])
    time.sleep(0.6)  # further retry rounds must not send it again
    assert delivered_to(upstream) == [OTHER, TO]


def test_second_version_refused_temporarily_is_spooled_then_delivered_once(scripted, relay_to):
    """Two footer languages = two versions; the server refuses the second one at DATA once."""
    relay = relay_to(port=scripted.port)
    german, english = "kontakt@firma.de", "someone@example.com"
    scripted.handler.data_script = [None, "451 4.3.0 Temporary local problem"]
    assert send(relay, [german, english]) == {}
    assert len(scripted.received) == 1
    first_rcpt = scripted.received[0].rcpt_tos
    assert len(first_rcpt) == 1
    second = english if first_rcpt == [german] else german
    assert [e.recipients for e in relay.spool_entries] == [[second]]
    assert wait_until(lambda: len(scripted.received) == 2)
    assert wait_until(lambda: relay.spool_entries == [])
    time.sleep(0.6)
    assert sorted(r for m in scripted.received for r in m.rcpt_tos) == sorted([german, english])
    bodies = {m.rcpt_tos[0]: m.data for m in scripted.received}
    assert bodies[german] != bodies[english]  # each got its own version
    for data in bodies.values():
        email.message_from_bytes(data, policy=policy.default)
