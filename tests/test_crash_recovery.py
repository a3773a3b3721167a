"""Crash recovery and secrets, with the relay as a real process (`python -m proxy serve`).

kill -9 while copies wait in the durable spool: after a restart every copy is delivered
exactly once, the store is consistent, and first-contact records match what upstream got.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from proxy.config.settings import load_config
from tests.harness import upstream_settings, wait_until, write_config
from tests.ports import free_port
from tests.test_hostile_smtp import FROM, PLAIN, merged
from tests.test_upstream_faults import CustomServer, RejectingAuthenticator
from tests.upstream import Received, RecordingHandler, RecordingServer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class RelayProcess:
    """The relay as users run it; stderr goes to a file the test reads."""

    def __init__(self, config: Path, log: Path):
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 20) -> RelayProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [str(PYTHON if PYTHON.exists() else sys.executable), "-m", "proxy", "-c", str(self.config), "serve"],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log.read_bytes()[offset:].decode("utf-8", "replace"))
            if found:
                self.port = int(found.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited with {self.proc.returncode}: {self.stderr()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"relay did not start: {self.stderr()[-2000:]}")

    def stderr(self) -> str:
        return self.log.read_bytes().decode("utf-8", "replace") if self.log.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


@pytest.fixture
def processes() -> Iterator[Callable[[Path, Path], RelayProcess]]:
    started: list[RelayProcess] = []

    def make(config: Path, log: Path) -> RelayProcess:
        relay = RelayProcess(config, log)
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()


def per_recipient(received: list[Received]) -> Counter[str]:
    """Copies per recipient of the prospecting mail (bounces to the sender left out)."""
    return Counter(r for m in received if m.mail_from not in ("", "<>") for r in m.rcpt_tos)


def config_for(tmp_path: Path, upstream_port: int, **extra: Any) -> Path:
    settings = merged(upstream_settings(upstream_port, timeout_seconds=2), {"listen": {"port": free_port()}})
    return write_config(tmp_path, merged(settings, extra))


def spool_count(config: Path) -> int:
    return len(list(load_config(config, explicit=True).queue_path.glob("*.json")))


def store_check(config: Path) -> tuple[str, set[str]]:
    db = load_config(config, explicit=True).store_path
    with sqlite3.connect(db, timeout=10) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        contacted = {r[0] for r in conn.execute("SELECT address FROM contacts WHERE first_contact_at IS NOT NULL")}
    return integrity, contacted


def send(port: int, rcpts: list[str]) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(FROM, rcpts, PLAIN)


def test_kill_9_with_spooled_copies_then_restart(tmp_path, upstream, processes):
    config = config_for(tmp_path, upstream.port)
    relay = processes(config, tmp_path / "relay.log").start()
    messages = [[f"kontakt{i}@firma{i}.de", f"someone{i}@example.com"] for i in range(4)]
    for _, english in messages:
        upstream.behaviour.rcpt_replies[english] = "451 4.3.0 Mailbox temporarily unavailable"
    upstream.behaviour.rcpt_replies["never@firma0.de"] = "550 5.1.1 No such user"
    messages[0].append("never@firma0.de")
    for rcpts in messages:
        assert send(relay.port, rcpts) == {}
    assert spool_count(config) >= 4  # one English copy per message (plus the bounce, maybe)
    relay.kill9()
    held = spool_count(config)
    assert held >= 4

    upstream.behaviour.rcpt_replies = {"never@firma0.de": "550 5.1.1 No such user"}
    relay = processes(config, tmp_path / "relay.log").start()
    wanted = Counter(r for rcpts in messages for r in rcpts if r != "never@firma0.de")
    assert wait_until(lambda: per_recipient(upstream.received) == wanted), per_recipient(upstream.received)
    assert wait_until(lambda: spool_count(config) == 0)
    time.sleep(1.0)  # more retry rounds: nothing may go out twice
    assert per_recipient(upstream.received) == wanted
    bounces = [m for m in upstream.received if m.mail_from in ("", "<>")]
    assert [b.rcpt_tos for b in bounces] == [[FROM]]
    assert relay.stop() == 0

    integrity, contacted = store_check(config)
    assert integrity == "ok"
    assert "never@firma0.de" not in contacted  # never invented for an undelivered copy
    assert contacted == set(wanted), f"first contacts missing for delivered copies: {set(wanted) - contacted}"


class AcceptThenStall(RecordingHandler):
    """Records the message, then takes a while before answering 250 (the 250 can be lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.stall_seconds = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = str(await super().handle_DATA(server, session, envelope))
        if self.stall_seconds and reply.startswith("250"):
            await asyncio.sleep(self.stall_seconds)
        return reply


def test_at_least_once_window_kill_before_the_250_is_seen(tmp_path, processes):
    """The spool promises at-least-once: a kill after upstream accepted but before the relay
    removed the entry sends that copy again after the restart.  Never zero copies."""
    handler = AcceptThenStall()
    server = CustomServer(handler).start()
    try:
        config = config_for(tmp_path, server.port, upstream={"timeout_seconds": 10})
        relay = processes(config, tmp_path / "relay.log").start()
        german, english = "kontakt@firma.de", "someone@example.com"
        handler.behaviour.rcpt_replies[english] = "451 4.3.0 later"
        assert send(relay.port, [german, english]) == {}
        assert spool_count(config) == 1
        handler.stall_seconds = 5
        handler.behaviour.rcpt_replies.clear()
        assert wait_until(lambda: per_recipient(handler.received)[english] == 1)
        relay.kill9()  # upstream has the copy; the relay never saw its 250
        handler.stall_seconds = 0
        relay = processes(config, tmp_path / "relay.log").start()
        assert wait_until(lambda: spool_count(config) == 0)
        copies = per_recipient(handler.received)
    finally:
        server.stop()
    assert copies[german] == 1
    assert 1 <= copies[english] <= 2
    print(f"at-least-once window: {copies[english]} copies of the spooled version after kill -9")


# --- secrets never in logs; the store is private ---

LOCAL_PW = "local-Pa55-word-7734"
UPSTREAM_PW = "upstream-Pa55-word-9921"


def secret_forms(*secrets: str) -> list[str]:
    forms = []
    for secret in secrets:
        forms += [secret, base64.b64encode(secret.encode()).decode()]
        forms.append(base64.b64encode(f"\0anna\0{secret}".encode()).decode())
        forms.append(base64.b64encode(f"anna\0anna\0{secret}".encode()).decode())
    return forms


def exercise_auth(port: int) -> None:
    """A wrong local login, a right one, then a message the upstream refuses (its AUTH fails)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("anna", LOCAL_PW + "x")
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.login("anna", LOCAL_PW)
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail(FROM, ["jan@kunde.example"], PLAIN)


def secrets_settings() -> dict[str, Any]:
    return {
        "smtp": {"require_auth": True, "users": [{"username": "anna", "password_env": "RELAY_LOCAL_PW"}]},
        "upstream": {"username": "anna", "password_env": "RELAY_UPSTREAM_PW"},
        "log": {"level": "debug"},
    }


@pytest.fixture
def auth_upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingServer]:
    monkeypatch.setenv("RELAY_LOCAL_PW", LOCAL_PW)
    monkeypatch.setenv("RELAY_UPSTREAM_PW", UPSTREAM_PW)
    server = CustomServer(authenticator=RejectingAuthenticator(), auth_required=True, auth_require_tls=False).start()
    yield server
    server.stop()


def test_passwords_never_in_process_logs(tmp_path, auth_upstream, processes):
    config = config_for(tmp_path, auth_upstream.port, **secrets_settings())
    relay = processes(config, tmp_path / "relay.log").start()
    exercise_auth(relay.port)
    relay.stop()
    log = relay.stderr()
    assert "failed login" in log  # the failures were logged, without the secrets
    leaked = [form for form in secret_forms(LOCAL_PW, UPSTREAM_PW) if form in log]
    assert leaked == []
    store = load_config(config, explicit=True).store_path
    assert store.stat().st_mode & 0o777 == 0o600
    assert os.stat(store.parent).st_mode & 0o077 == 0


def test_passwords_never_in_logs_at_debug(tmp_path, auth_upstream, start_relay, caplog):
    caplog.set_level(logging.DEBUG)
    settings = merged(upstream_settings(auth_upstream.port, timeout_seconds=2), secrets_settings())
    relay = start_relay(settings)
    exercise_auth(relay.port)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "failed login" in text
    assert [form for form in secret_forms(LOCAL_PW, UPSTREAM_PW) if form in text] == []
    assert relay.config.store_path.stat().st_mode & 0o777 == 0o600


def test_kill_9_while_queued_because_the_upstream_is_down(tmp_path, processes):
    """The laptop on a train: every message is answered 250 and queued; kill -9; back online, each arrives once."""
    port = free_port()  # the user's server: down for now
    config = config_for(tmp_path, port, queue={"retry_seconds": 0.3, "max_retry_seconds": 0.5})
    relay = processes(config, tmp_path / "relay.log").start()
    rcpts = [f"kontakt{i}@firma{i}.de" for i in range(5)]
    for rcpt in rcpts:
        assert send(relay.port, [rcpt]) == {}
    assert spool_count(config) == 5
    relay.kill9()
    assert spool_count(config) == 5
    handler = RecordingHandler()
    server = CustomServer(handler, port=port).start()  # back online
    try:
        relay = processes(config, tmp_path / "relay.log").start()
        assert wait_until(lambda: per_recipient(handler.received) == Counter(rcpts), 30)
        assert wait_until(lambda: spool_count(config) == 0)
        time.sleep(1.0)  # more retry rounds: nothing goes out twice
        assert per_recipient(handler.received) == Counter(rcpts)
    finally:
        server.stop()
    assert relay.stop() == 0
    integrity, contacted = store_check(config)
    assert integrity == "ok" and contacted == set(rcpts)
