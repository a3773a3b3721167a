"""Hostile SMTP clients: smuggling, open relay, STARTTLS injection, header injection, limits.

Every attack goes over a real socket to the running relay, with the recording server as
upstream; each test checks both the reply the client gets and what reached upstream.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import RelayThread, upstream_settings
from tests.upstream import RecordingServer

FROM = "anna@nordlicht.example"
TO = "jan@kunde.example"

HEADER = (
    b"From: Anna Nowak <anna@nordlicht.example>\r\n"
    b"To: Jan <jan@kunde.example>\r\n"
    b"Subject: Angebot\r\n"
    b"Message-ID: <hostile-1@nordlicht.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
)
PLAIN = HEADER + b"Guten Tag,\r\nwir haben ein Angebot.\r\n"


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def relay_to(upstream: RecordingServer, start_relay: Callable[..., RelayThread]) -> Callable[..., RelayThread]:
    """Like conftest's, but sections merge and the upstream timeout is short."""

    def start(**extra: Any) -> RelayThread:
        return start_relay(merged(upstream_settings(upstream.port, timeout_seconds=2), extra))

    return start


class RawClient:
    """SMTP by hand, for what smtplib refuses to send."""

    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError(f"relay closed the connection; replies so far: {lines!r}")
            lines.append(line)
            if line[3:4] != b"-":
                break
        return int(lines[-1][:3]), b"".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: bytes) -> tuple[int, bytes]:
        self.send(line + b"\r\n")
        return self.reply()

    def envelope(self, mail_from: str = FROM, rcpts: tuple[str, ...] = (TO,)) -> None:
        assert self.cmd(b"EHLO hostile.example")[0] == 250
        assert self.cmd(f"MAIL FROM:<{mail_from}>".encode())[0] == 250
        for rcpt in rcpts:
            code, text = self.cmd(f"RCPT TO:<{rcpt}>".encode())
            assert code == 250, text

    def data(self, body: bytes) -> tuple[int, bytes]:
        """Send DATA and ``body`` as it is: the caller includes the end-of-data line."""
        code, text = self.cmd(b"DATA")
        assert code == 354, text
        self.send(body)
        return self.reply()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def send(relay: RelayThread, rcpts: list[str], message: bytes = PLAIN, **login: str) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        if login:
            client.login(login["user"], login["password"])
        return client.sendmail(FROM, rcpts, message)


def still_serves(relay: RelayThread, upstream: RecordingServer) -> None:
    """After an attack or an exceeded limit, the relay relays a normal message."""
    before = len(upstream.received)
    assert send(relay, [TO]) == {}
    assert len(upstream.received) == before + 1


def has_bare_eol(data: bytes) -> bool:
    return data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n")


# --- SMTP smuggling (CVE-2023-51764 class, aiosmtpd CVE-2024-27305) ---

SMUGGLING_VECTORS = [
    b"\n.\n",
    b"\r.\r",
    b"\r.\n",
    b"\n.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n\x00.\r\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
]
SMUGGLED = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nSmuggled\r\n"


@pytest.mark.parametrize("vector", SMUGGLING_VECTORS, ids=[repr(v)[2:-1] for v in SMUGGLING_VECTORS])
def test_smuggled_end_of_data_carries_no_second_message(upstream, relay_to, vector):
    relay = relay_to()
    client = RawClient(relay.port)
    try:
        client.envelope()
        code, text = client.data(HEADER + b"Hello" + vector + SMUGGLED + b"\r\n.\r\n")
        # The next reply must be QUIT's: a smuggled transaction would have answered first.
        after = client.cmd(b"QUIT")
    finally:
        client.close()
    assert code == 250 or text.startswith(b"550 5.6.0"), text
    assert after[0] == 221, after
    assert all("victim" not in r for m in upstream.received for r in m.rcpt_tos)
    assert all(m.mail_from == FROM for m in upstream.received)
    if code == 250:
        assert len(upstream.received) == 1
        got = upstream.received[0]
        assert got.rcpt_tos == [TO]
        # The smuggled commands stay inside the one body, and with CRLF only: an upstream
        # server that honours a bare end-of-data could not find one on the wire.
        assert b"Smuggled" in got.data and b"MAIL FROM:<evil@x>" in got.data
        assert not has_bare_eol(got.data), got.data
    else:
        assert upstream.received == []


# --- open relay and AUTH ---


def auth_settings(monkeypatch: pytest.MonkeyPatch, failures: int = 5) -> dict[str, Any]:
    monkeypatch.setenv("RELAY_USER_PW", "s3cret-local-pw")
    return {
        "smtp": {
            "require_auth": True,
            "users": [{"username": "anna", "password_env": "RELAY_USER_PW"}],
            "auth_failures_per_minute": failures,
        }
    }


def test_loopback_without_auth_relays(upstream, relay_to):
    relay = relay_to()
    assert send(relay, [TO]) == {}
    assert [m.rcpt_tos for m in upstream.received] == [[TO]]


@pytest.mark.parametrize(
    ("mail_from", "rcpt"),
    [(FROM, TO), ("evil@spammer.example", "victim@elsewhere.example"), ("", TO), ("anna@localhost", "x@localhost")],
)
def test_require_auth_refuses_mail_without_login(upstream, relay_to, monkeypatch, mail_from, rcpt):
    relay = relay_to(**auth_settings(monkeypatch))
    client = RawClient(relay.port)
    try:
        assert client.cmd(b"EHLO hostile.example")[0] == 250
        code, text = client.cmd(f"MAIL FROM:<{mail_from}>".encode())
        assert code == 530, text
        assert client.cmd(f"RCPT TO:<{rcpt}>".encode())[0] in (503, 530)
        assert client.cmd(b"DATA")[0] in (503, 530)
        # Pipelined body lines are taken as (refused) commands, never as a message.
        client.send(PLAIN + b".\r\n")
    finally:
        client.close()
    time.sleep(0.2)
    assert upstream.received == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_plain_and_login_work(upstream, relay_to, monkeypatch, mechanism):
    relay = relay_to(**auth_settings(monkeypatch))
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo()
        assert mechanism in client.esmtp_features["auth"].upper().split()
        client.user, client.password = "anna", "s3cret-local-pw"
        method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        code, _ = client.auth(mechanism, method)
        assert code == 235
        assert client.sendmail(FROM, [TO], PLAIN) == {}
    assert [m.rcpt_tos for m in upstream.received] == [[TO]]


def test_wrong_passwords_are_rate_limited(upstream, relay_to, monkeypatch):
    relay = relay_to(**auth_settings(monkeypatch, failures=3))
    for _ in range(3):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
            client.ehlo()
            client.user, client.password = "anna", "wrong"
            with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
                client.auth("PLAIN", client.auth_plain)
            assert failure.value.smtp_code == 535
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo()
        client.user, client.password = "anna", "s3cret-local-pw"
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.auth("PLAIN", client.auth_plain)
        assert failure.value.smtp_code == 454, failure.value
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(FROM, [TO], PLAIN)
        assert refused.value.smtp_code == 530
    assert upstream.received == []


# --- STARTTLS command injection (CVE-2011-0411 class, aiosmtpd CVE-2024-34083) ---


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "relay.crt", tmp_path / "relay.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return str(cert), str(key)


def tls_client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False  # the test's own self-signed certificate
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_client(client: RawClient) -> ssl.SSLSocket:
    return tls_client_context().wrap_socket(client.sock, server_hostname="127.0.0.1")


@pytest.mark.parametrize("injected", [b"RSET\r\n", b"MAIL FROM:<evil@x.example>\r\n"])
def test_starttls_discards_pipelined_plaintext_commands(upstream, relay_to, certificate, injected):
    cert, key = certificate
    relay = relay_to(smtp={"tls_certificate": cert, "tls_key": key})
    client = RawClient(relay.port)
    client.cmd(b"EHLO hostile.example")
    client.send(b"STARTTLS\r\n" + injected)
    code, text = client.reply()
    assert code == 220, text
    tls = tls_client(client)
    try:
        tls.settimeout(1.0)
        with pytest.raises(TimeoutError):
            unsolicited = tls.recv(4096)
            pytest.fail(f"answered a command sent before TLS: {unsolicited!r}")
        tls.settimeout(10)
        reader = tls.makefile("rb")
        tls.sendall(b"EHLO hostile.example\r\n")
        while (line := reader.readline())[3:4] == b"-":
            assert line.startswith(b"250-")
        assert line.startswith(b"250 "), line
        # MAIL sent before TLS must not count: RCPT without MAIL is a sequence error.
        tls.sendall(b"RCPT TO:<victim@y.example>\r\n")
        assert reader.readline().startswith(b"503"), "pre-TLS MAIL FROM was kept"
    finally:
        tls.close()
    assert upstream.received == []
    still_serves(relay, upstream)


def test_starttls_sessions_do_not_use_up_connection_slots(upstream, relay_to, certificate):
    cert, key = certificate
    relay = relay_to(smtp={"tls_certificate": cert, "tls_key": key, "max_connections": 2})
    for n in range(3):
        try:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as smtp:
                smtp.starttls(context=tls_client_context())
                smtp.ehlo()
                assert smtp.sendmail(FROM, [TO], PLAIN) == {}
        except smtplib.SMTPServerDisconnected:
            pytest.fail(f"STARTTLS session {n + 1} of 3 (one at a time, cap 2) was dropped")
        time.sleep(0.2)  # the relay sees the connection go
    probe = RawClient(relay.port)
    probe.close()
    assert probe.greeting[0] == 220, f"slots leaked by STARTTLS sessions: {probe.greeting!r}"


# --- header injection ---


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: hi\rBcc: victim@elsewhere.example\r\n",
        b"Subject: hi\x00Bcc: victim@elsewhere.example\r\n",
        b"Subject: hi\r\x00\nBcc: victim@elsewhere.example\r\n",
    ],
    ids=["bare-CR", "NUL", "CR-NUL-LF"],
)
def test_header_injection_is_refused(upstream, relay_to, header):
    relay = relay_to()
    client = RawClient(relay.port)
    try:
        client.envelope()
        _code, text = client.data(b"From: a@nordlicht.example\r\n" + header + b"\r\nbody\r\n.\r\n")
    finally:
        client.close()
    assert text.startswith(b"550 5.6.0"), text
    assert upstream.received == []
    still_serves(relay, upstream)


# --- limits ---


def test_size_is_announced_and_enforced(upstream, relay_to):
    relay = relay_to(smtp={"max_message_bytes": 20_000})
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == "20000"
    client = RawClient(relay.port)
    try:
        client.envelope()
        code, text = client.data(HEADER + (b"x" * 70 + b"\r\n") * 400 + b".\r\n")
        assert code == 552, text
        # The session goes on: the next transaction on the same connection works.
        assert client.cmd(b"RSET")[0] == 250
    finally:
        client.close()
    assert upstream.received == []
    still_serves(relay, upstream)


def test_recipients_beyond_limit_get_452(upstream, relay_to):
    relay = relay_to(smtp={"max_recipients": 3})
    client = RawClient(relay.port)
    rcpts = [f"r{i}@kunde{i}.example" for i in range(5)]
    try:
        assert client.cmd(b"EHLO hostile.example")[0] == 250
        assert client.cmd(f"MAIL FROM:<{FROM}>".encode())[0] == 250
        answers = [client.cmd(f"RCPT TO:<{r}>".encode()) for r in rcpts]
        code, text = client.data(PLAIN + b".\r\n")
    finally:
        client.close()
    assert [c for c, _ in answers] == [250, 250, 250, 452, 452]
    assert answers[3][1].startswith(b"452 4.5.3")
    assert code == 250, text
    assert sorted(r for m in upstream.received for r in m.rcpt_tos) == rcpts[:3]


def test_overlong_command_line_gets_500(upstream, relay_to):
    relay = relay_to()
    client = RawClient(relay.port)
    try:
        assert client.cmd(b"EHLO hostile.example")[0] == 250
        code, text = client.cmd(b"MAIL FROM:<" + b"a" * 2000 + b"@nordlicht.example>")
        assert code == 500, text
        assert client.cmd(b"NOOP")[0] == 250
    finally:
        client.close()
    still_serves(relay, upstream)


def test_100k_body_line_is_relayed_intact_or_refused_clearly(upstream, relay_to):
    relay = relay_to()
    line = b"A" * 100_000
    client = RawClient(relay.port, timeout=15)
    started = time.monotonic()
    try:
        client.envelope()
        code, text = client.data(HEADER + b"short\r\n" + line + b"\r\nend\r\n.\r\n")
    finally:
        client.close()
    assert time.monotonic() - started < 10
    if code == 250:
        assert len(upstream.received) == 1 and line in upstream.received[0].data
    else:
        assert code in (500, 552, 554), text
        assert upstream.received == []
    still_serves(relay, upstream)


def test_ten_thousand_headers_relayed_or_refused_within_seconds(upstream, relay_to):
    relay = relay_to()
    many = b"".join(b"X-Filler-%d: value %d\r\n" % (i, i) for i in range(10_000))
    message = HEADER[:-2] + many + b"\r\nbody\r\n"
    started = time.monotonic()
    client = RawClient(relay.port, timeout=20)
    try:
        client.envelope()
        code, text = client.data(message + b".\r\n")
    finally:
        client.close()
    assert time.monotonic() - started < 10
    if code == 250:
        assert len(upstream.received) == 1
        assert upstream.received[0].data.count(b"\r\nX-Filler-") == 10_000
    else:
        assert 500 <= code < 600 and upstream.received == [], text
    still_serves(relay, upstream)


def test_idle_client_is_disconnected(upstream, relay_to):
    relay = relay_to(smtp={"timeout_seconds": 1})
    client = RawClient(relay.port)
    try:
        assert client.cmd(b"EHLO idle.example")[0] == 250
        client.sock.settimeout(5)
        started = time.monotonic()
        rest = client.reader.read()  # returns at EOF
        waited = time.monotonic() - started
    finally:
        client.close()
    assert waited < 4
    assert rest.startswith(b"421"), f"idle client disconnected without a 421 reply: {rest!r}"
    still_serves(relay, upstream)


def test_connection_cap(upstream, relay_to):
    relay = relay_to(smtp={"max_connections": 3})
    first = [RawClient(relay.port) for _ in range(3)]
    try:
        assert all(c.greeting[0] == 220 for c in first)
        fourth = RawClient(relay.port)
        assert fourth.greeting[0] == 421 and fourth.greeting[1].startswith(b"421 4.7.0"), fourth.greeting
        assert fourth.reader.read() == b""  # and closed
        fourth.close()
        for n, client in enumerate(first):
            client.envelope(rcpts=(f"c{n}@kunde.example",))
            assert client.data(PLAIN + b".\r\n")[0] == 250
            assert client.cmd(b"QUIT")[0] == 221
    finally:
        for client in first:
            client.close()
    assert sorted(r for m in upstream.received for r in m.rcpt_tos) == [f"c{n}@kunde.example" for n in range(3)]
    time.sleep(0.2)  # the server sees the three connections go
    still_serves(relay, upstream)


def test_refused_connections_free_their_slot(upstream, relay_to):
    """Many refused connections must not use up the cap for good."""
    relay = relay_to(smtp={"max_connections": 2})
    held = [RawClient(relay.port) for _ in range(2)]
    for _ in range(5):
        extra = RawClient(relay.port)
        assert extra.greeting[0] == 421
        extra.close()
    for client in held:
        client.cmd(b"QUIT")
        client.close()
    time.sleep(0.2)
    for _ in range(3):
        still_serves(relay, upstream)
