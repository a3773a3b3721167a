"""Hostile input and faults at the relay, round two (issue 16): each attack over a real socket.

Queued copies for people who objected meanwhile, addresses that would answer 451 for ever,
"not sent" for mail partly sent, empty secrets, plaintext AUTH over the network, mbox
``From `` lines, NUL bytes, slow uploads and slowloris clients.  Each test checks what the
client is told and what reached the upstream server.
"""

from __future__ import annotations

import contextlib
import email
import errno
import os
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from proxy.config.settings import ConfigError
from tests.harness import RelayThread, upstream_settings, wait_until, write_config
from tests.test_clients import notices, prospects
from tests.test_hostile_smtp import (
    FROM,
    HEADER,
    PLAIN,
    TO,
    RawClient,
    certificate,
    merged,
    still_serves,
    tls_client_context,
)
from tests.test_upstream_faults import CustomServer
from tests.upstream import RecordingServer

__all__ = ["certificate"]  # the fixture, imported for the tests below

OTHER = "eva@firma.example"
CHECKOUT = Path(__file__).resolve().parent.parent


@pytest.fixture
def relay_to(upstream: RecordingServer, start_relay: Callable[..., RelayThread]) -> Callable[..., RelayThread]:
    """Sections merge; short upstream timeout; fast retries."""

    def start(port: int | None = None, **extra: Any) -> RelayThread:
        base = upstream_settings(port or upstream.port, timeout_seconds=2)
        base["queue"] = {"retry_seconds": 0.3, "max_retry_seconds": 0.3}
        return start_relay(merged(base, extra))

    return start


def gdpr_process(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`gdpr-proxy` as its own process, as the user runs it next to the relay."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", "-c", str(config), *args],
        cwd=CHECKOUT,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def delivered_to(server: RecordingServer) -> list[str]:
    return sorted(r for m in server.received for r in m.rcpt_tos)


# --- 1: the retry queue re-checks suppression and erasure before every attempt ---


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (("forget", TO), "forgotten"),
        (("suppress", "add", TO, "--reason", "opt-out"), "opted out"),
        (("suppress", "add", "@kunde.example", "--reason", "opt-out"), "opted out"),
    ],
    ids=["forget", "suppress-address", "suppress-domain"],
)
def test_queued_copy_is_never_delivered_to_a_person_who_objected_meanwhile(
    tmp_path, upstream, relay_to, command, words
):
    relay = relay_to()
    upstream.behaviour.mail_reply = "421 4.3.2 Service not available"
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        assert client.sendmail(FROM, [TO, OTHER], PLAIN) == {}
    assert wait_until(lambda: sorted(r for e in relay.spool_entries for r in e.recipients) == sorted([TO, OTHER]))
    # Another process (the CLI, as the user runs it) changes the shared store meanwhile.
    done = gdpr_process(tmp_path / "config.yaml", *command)
    assert done.returncode == 0, done.stderr
    upstream.behaviour.mail_reply = None
    assert wait_until(lambda: not relay.spool_entries and len(notices(upstream)) == 1, timeout=20)
    time.sleep(0.5)  # one more retry round: nothing else may go out
    assert prospects(upstream) == [[OTHER]]
    assert TO not in delivered_to(upstream)
    notice = notices(upstream)[0]
    assert notice["To"] and FROM in notice["To"]
    text = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert words in text, text


def test_queued_copy_for_a_person_forgotten_while_the_relay_was_stopped(tmp_path, upstream, relay_to, start_relay):
    """The copy waits in the queue of a stopped relay; a fresh relay process must not send it."""
    relay = relay_to()
    upstream.behaviour.mail_reply = "421 4.3.2 Service not available"
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        assert client.sendmail(FROM, [TO], PLAIN) == {}
    assert wait_until(lambda: [e.recipients for e in relay.spool_entries] == [[TO]])
    relay.stop()
    done = gdpr_process(tmp_path / "config.yaml", "forget", TO)
    assert done.returncode == 0, done.stderr
    upstream.behaviour.mail_reply = None
    again = relay_to()
    assert wait_until(lambda: not again.spool_entries and len(notices(upstream)) == 1, timeout=20)
    assert prospects(upstream) == []


# --- 4: null sender, UTF-8 addresses, invisible characters: never 451 ---


@pytest.fixture
def ascii_upstream() -> Iterator[RecordingServer]:
    """An upstream server without SMTPUTF8 (the recording server offers it)."""
    server = CustomServer(enable_SMTPUTF8=False).start()
    yield server
    server.stop()


def test_null_sender_relays(upstream, relay_to):
    relay = relay_to()
    client = RawClient(relay.port)
    try:
        assert client.cmd(b"EHLO receipts.example")[0] == 250
        assert client.cmd(b"MAIL FROM:<>")[0] == 250
        assert client.cmd(f"RCPT TO:<{TO}>".encode())[0] == 250
        code, text = client.data(PLAIN + b".\r\n")
    finally:
        client.close()
    assert code == 250, text
    assert len(upstream.received) == 1
    assert upstream.received[0].mail_from in ("", "<>")
    assert upstream.received[0].rcpt_tos == [TO]


UTF8_TO = "jürgen.weiß@kunde.example"


def utf8_transaction(port: int, rcpts: list[str], smtputf8: bool = True) -> tuple[list[tuple[int, bytes]], int, bytes]:
    client = RawClient(port)
    try:
        assert client.cmd(b"EHLO hostile.example")[0] == 250
        option = b" SMTPUTF8" if smtputf8 else b""
        assert client.cmd(f"MAIL FROM:<{FROM}>".encode() + option)[0] == 250
        answers = [client.cmd(f"RCPT TO:<{r}>".encode()) for r in rcpts]
        if not any(code == 250 for code, _ in answers):
            return answers, 0, b""
        message = HEADER.replace(b"To: Jan <jan@kunde.example>", f"To: <{UTF8_TO}>".encode()) + b"Hallo\r\n"
        code, text = client.data(message + b".\r\n")
    finally:
        client.close()
    return answers, code, text


def test_utf8_address_relays_when_the_upstream_offers_smtputf8(upstream, relay_to):
    relay = relay_to()
    answers, code, text = utf8_transaction(relay.port, [UTF8_TO])
    assert [c for c, _ in answers] == [250]
    assert code == 250, text
    assert [m.rcpt_tos for m in upstream.received] == [[UTF8_TO]]
    assert "SMTPUTF8" in [o.upper() for o in upstream.received[0].mail_options]


def test_utf8_address_gets_553_5_6_7_when_the_upstream_lacks_smtputf8(ascii_upstream, relay_to):
    upstream = ascii_upstream
    relay = relay_to(port=upstream.port)
    answers, code, text = utf8_transaction(relay.port, [UTF8_TO])
    if answers[0][0] == 250:
        assert code == 553 and text.startswith(b"553 5.6.7"), text
    else:
        assert answers[0][1].startswith(b"553 5.6.7"), answers
    assert upstream.received == []
    assert relay.spool_entries == []
    # With an ASCII recipient beside it, that one is sent; the other comes back as a bounce.
    answers, code, text = utf8_transaction(relay.port, [TO, UTF8_TO])
    assert code == 250, text
    assert wait_until(lambda: relay.spool_entries == [] and len(upstream.received) == 2)
    assert [m.rcpt_tos for m in upstream.received] == [[TO], [FROM]]
    assert b"5.6.7" in upstream.received[1].data  # the bounce says why
    still_serves(relay, upstream)


def test_utf8_address_without_smtputf8_from_the_client_is_553_5_6_7_at_rcpt(upstream, relay_to):
    relay = relay_to()
    answers, _code, _text = utf8_transaction(relay.port, [UTF8_TO], smtputf8=False)
    assert answers[0][0] == 553 and answers[0][1].startswith(b"553 5.6.7"), answers
    assert upstream.received == []


INVISIBLE = ["\x00", "\u200b", "\u200d", "\ufeff", "\u202e", "\x07"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_invisible_or_control_character_in_an_address_is_a_clear_5xx(upstream, relay_to, char):
    relay = relay_to()
    bad = f"ja{char}n@kunde.example"
    client = RawClient(relay.port)
    try:
        assert client.cmd(b"EHLO hostile.example")[0] == 250
        code, text = client.cmd(f"MAIL FROM:<an{char}na@nordlicht.example> SMTPUTF8".encode())
        assert 500 <= code < 600, text
        assert b"5.1." in text[:12] or b"5.6." in text[:12], text
        assert client.cmd(b"RSET")[0] == 250
        assert client.cmd(f"MAIL FROM:<{FROM}> SMTPUTF8".encode())[0] == 250
        code, text = client.cmd(f"RCPT TO:<{bad}>".encode())
        assert 500 <= code < 600, text
        assert client.cmd(f"RCPT TO:<{TO}>".encode())[0] == 250
        code, text = client.data(PLAIN + b".\r\n")
    finally:
        client.close()
    assert code == 250, text
    assert delivered_to(upstream) == [TO]


# --- 5: the spool cannot be written: never "not sent" for mail partly sent ---


def _mount(args: list[str]) -> bool:
    return subprocess.run(args, capture_output=True).returncode == 0


@pytest.fixture
def small_queue_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs as the relay's queue directory (root only; mount must work here)."""
    queue = tmp_path / "data" / "queue"
    queue.mkdir(parents=True)
    if os.geteuid() != 0 or not _mount(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(queue)]):
        pytest.skip("a full disk needs root and mount -t tmpfs (the read-only case runs anyway)")
    try:
        yield queue
    finally:
        subprocess.run(["umount", "-l", str(queue)], capture_output=True)


def fill(directory: Path) -> None:
    with contextlib.suppress(OSError), (directory / "filler").open("wb") as out:
        while True:
            out.write(b"\0" * 4096)
            out.flush()


def make_read_only(queue: Path) -> Callable[[], None]:
    """Read-only queue: a read-only tmpfs as root (root ignores modes), else mode 0500."""
    if os.geteuid() == 0:
        if not _mount(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(queue)]):
            pytest.skip("root without mount -t tmpfs cannot make a read-only directory")
        assert _mount(["mount", "-o", "remount,ro", str(queue)])

        def undo() -> None:
            subprocess.run(["umount", "-l", str(queue)], capture_output=True)

        return undo
    queue.chmod(0o500)
    return lambda: queue.chmod(0o700)


def partial_send(relay: RelayThread, upstream: RecordingServer) -> tuple[int, bytes]:
    """Two recipients: the upstream takes one and asks to try the other later."""
    upstream.behaviour.rcpt_replies = {OTHER: "451 4.2.1 Mailbox busy, try later"}
    client = RawClient(relay.port)
    try:
        client.envelope(rcpts=(TO, OTHER))
        return client.data(PLAIN + b".\r\n")
    finally:
        client.close()


def assert_truthful(code: int, text: bytes, upstream: RecordingServer, queue: Path) -> None:
    sent = delivered_to(upstream)
    if sent:
        # Something went out: the client must not be told to send it all again.
        assert code == 250 or b"not sent" not in text.lower(), text
        assert not (400 <= code < 500), text
    else:
        assert code in (250, 451, 452) or 500 <= code < 600, text
    leftovers = [p.name for p in queue.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".reserved")]
    assert leftovers == [], f"temporary files left in the queue: {leftovers}"


def test_full_queue_disk_after_partial_delivery_is_never_not_sent(tmp_path, upstream, relay_to, small_queue_disk):
    relay = relay_to()
    fill(small_queue_disk)
    code, text = partial_send(relay, upstream)
    assert_truthful(code, text, upstream, small_queue_disk)
    (small_queue_disk / "filler").unlink()
    upstream.behaviour.rcpt_replies = {}
    if not delivered_to(upstream):
        # Nothing went out and the client was told so: sending again delivers each copy once.
        assert code in (451, 452) and b"nothing was sent" in text, text
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
            assert client.sendmail(FROM, [TO, OTHER], PLAIN) == {}
    assert wait_until(lambda: relay.spool_entries == [] and len(delivered_to(upstream)) >= 2)
    time.sleep(0.5)  # one more retry round: no copy twice
    assert sorted(r for rcpts in prospects(upstream) for r in rcpts) == sorted([TO, OTHER])


def test_read_only_queue_after_partial_delivery_is_never_not_sent(tmp_path, upstream, relay_to):
    relay = relay_to()
    queue = tmp_path / "data" / "queue"
    undo = make_read_only(queue)
    try:
        code, text = partial_send(relay, upstream)
        assert_truthful(code, text, upstream, queue)
    finally:
        undo()


def test_queue_failing_after_the_reservation_answers_with_the_truth(upstream, relay_to, monkeypatch):
    """A disk error after the space was reserved (rare): the client learns who got it and who did not."""
    relay = relay_to()
    assert relay.service is not None

    def disk_error(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(relay.service.spool, "put", disk_error)  # the injected fault
    code, text = partial_send(relay, upstream)
    assert code == 250, text
    assert b"Sent to 1 recipient(s)" in text and f"NOT sent to <{OTHER}>".encode() in text, text
    assert delivered_to(upstream) == [TO]
    assert [p.name for p in (relay.config.queue_path).iterdir()] == []


# --- 6: an empty secret is no password ---


def local_user_config(tmp_path: Path, password: dict[str, str]) -> Path:
    settings = merged(
        upstream_settings(1),
        {"smtp": {"require_auth": True, "users": [{"username": "anna", **password}]}},
    )
    return write_config(tmp_path, settings)


@pytest.mark.parametrize("source", ["env", "file"])
def test_empty_password_fails_config_check_and_start_up_naming_the_key(tmp_path, monkeypatch, source):
    if source == "env":
        monkeypatch.setenv("RELAY_EMPTY_PW", "")
        config = local_user_config(tmp_path, {"password_env": "RELAY_EMPTY_PW"})
        key = "smtp.users[0] (anna).password_env"
    else:
        (tmp_path / "empty.pw").write_text("\n")
        config = local_user_config(tmp_path, {"password_file": str(tmp_path / "empty.pw")})
        key = "smtp.users[0] (anna).password_file"
    for command in (("config", "check"), ("serve",)):
        done = gdpr_process(config, *command, timeout=30)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"{key}: the password is empty" in done.stderr, done.stderr


def test_empty_upstream_password_fails_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAY_EMPTY_UPSTREAM_PW", "")
    config = write_config(
        tmp_path, upstream_settings(2587, username="anna", password_env="RELAY_EMPTY_UPSTREAM_PW")
    )
    done = gdpr_process(config, "serve", timeout=30)
    assert done.returncode == 1
    assert "upstream.password_env: the password is empty" in done.stderr, done.stderr


def test_auth_with_an_empty_password_is_refused(upstream, relay_to, monkeypatch):
    """Even when the relay is started without the start-up check (a service manager, a test)."""
    monkeypatch.setenv("RELAY_EMPTY_PW", "")
    monkeypatch.setenv("RELAY_GOOD_PW", "s3cret-local-pw")
    users = [
        {"username": "anna", "password_env": "RELAY_EMPTY_PW"},
        {"username": "bert", "password_env": "RELAY_GOOD_PW"},
    ]
    relay = relay_to(smtp={"require_auth": True, "users": users})
    for user, password in (("anna", ""), ("bert", "")):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
            client.ehlo()
            client.user, client.password = user, password
            with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
                client.auth("PLAIN", client.auth_plain)
            assert failure.value.smtp_code == 535, failure.value
            with pytest.raises(smtplib.SMTPSenderRefused):
                client.sendmail(FROM, [TO], PLAIN)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.login("bert", "s3cret-local-pw")
        assert client.sendmail(FROM, [TO], PLAIN) == {}
    assert delivered_to(upstream) == [TO]


# --- 7: beyond loopback, no AUTH in clear text ---


def remote_auth_settings(monkeypatch: pytest.MonkeyPatch, **smtp: Any) -> dict[str, Any]:
    monkeypatch.setenv("RELAY_USER_PW", "s3cret-local-pw")
    return {
        "listen": {"host": "0.0.0.0", "port": 0, "allow_remote": True},
        "smtp": {"require_auth": True, "users": [{"username": "anna", "password_env": "RELAY_USER_PW"}], **smtp},
    }


def test_remote_listen_with_auth_but_no_certificate_refuses_to_start(tmp_path, upstream, relay_to, monkeypatch):
    with pytest.raises(ConfigError) as refused:
        relay_to(**remote_auth_settings(monkeypatch))
    assert "smtp.tls_certificate" in str(refused.value)
    done = gdpr_process(tmp_path / "config.yaml", "config", "check", timeout=30)
    assert done.returncode == 1 and "smtp.tls_certificate" in done.stderr, done.stderr


def test_remote_listen_requires_starttls_before_auth(upstream, relay_to, monkeypatch, certificate):
    cert, key = certificate
    relay = relay_to(**remote_auth_settings(monkeypatch, tls_certificate=cert, tls_key=key))
    client = RawClient(relay.port)
    try:
        code, text = client.cmd(b"EHLO remote.example")
        assert code == 250 and b"STARTTLS" in text and b"AUTH" not in text, text
        code, text = client.cmd(b"AUTH PLAIN AGFubmEAczNjcmV0LWxvY2FsLXB3")  # anna / s3cret-local-pw
        assert code == 538 or 500 <= code < 600, text
        assert client.cmd(f"MAIL FROM:<{FROM}>".encode())[0] == 530
    finally:
        client.close()

    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as smtp:
        smtp.starttls(context=tls_client_context())
        smtp.login("anna", "s3cret-local-pw")
        assert smtp.sendmail(FROM, [TO], PLAIN) == {}
    assert delivered_to(upstream) == [TO]


# --- 8: a message that starts with an mbox "From " line ---

MBOX_LINE = b"From anna@nordlicht.example Wed Dec  2 07:25:28 2026\r\n"
MULTIPART = (
    b"From: Anna Nowak <anna@nordlicht.example>\r\n"
    b"To: Jan <jan@kunde.example>\r\n"
    b"Subject: Angebot mit Anhang\r\n"
    b"Date: Wed, 02 Dec 2026 08:00:00 +0100\r\n"
    b"Message-ID: <mbox-2@nordlicht.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Guten Tag, anbei das Angebot.\r\n"
    b"--b1\r\n"
    b"Content-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="angebot.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\r\n"
    b"--b1--\r\n"
)


@pytest.mark.parametrize("message", [PLAIN, MULTIPART], ids=["plain", "multipart"])
def test_mbox_from_line_is_removed_or_the_message_left_unmodified(upstream, relay_to, message):
    relay = relay_to()
    client = RawClient(relay.port)
    try:
        client.envelope()
        code, text = client.data(MBOX_LINE + message + b".\r\n")
    finally:
        client.close()
    if code != 250:
        assert 500 <= code < 600 and upstream.received == [], text
        return
    assert len(upstream.received) == 1
    data = upstream.received[0].data
    if data == MBOX_LINE + message:
        return  # left unmodified
    assert not data.startswith(b"From "), data[:200]
    sent = email.message_from_bytes(data, policy=policy.default)
    original = email.message_from_bytes(message, policy=policy.default)
    for header in ("From", "To", "Subject", "Message-ID", "Content-Type"):
        assert sent[header] == original[header], (header, data[:600])
    assert sent.get_content_type() == original.get_content_type()
    if original.is_multipart():
        attachments = list(sent.iter_attachments())  # type: ignore[attr-defined]
        assert [a.get_filename() for a in attachments] == ["angebot.pdf"]
        assert attachments[0].get_content() == next(original.iter_attachments()).get_content()  # type: ignore[attr-defined]


# --- 10: NUL in the body, slow uploads, slowloris ---


def test_nul_bytes_in_the_body_are_never_forwarded_as_they_are(upstream, relay_to):
    relay = relay_to()
    client = RawClient(relay.port)
    try:
        client.envelope()
        code, text = client.data(HEADER + b"Guten\x00Tag\r\nzweite Zeile\r\n.\r\n")
    finally:
        client.close()
    if code == 250:
        assert len(upstream.received) == 1 and b"\x00" not in upstream.received[0].data
    else:
        # Refused, with a reply that says why (README: "NUL bytes").
        assert text.startswith(b"550 5.6.0") and b"NUL" in text, text
        assert upstream.received == []
    still_serves(relay, upstream)


def test_slow_but_active_data_upload_is_not_cut(upstream, relay_to):
    relay = relay_to(smtp={"timeout_seconds": 1})
    client = RawClient(relay.port)
    try:
        client.envelope()
        assert client.cmd(b"DATA")[0] == 354
        client.send(HEADER)
        for n in range(8):  # 2.4 s in all, more than twice the idle timeout, never 0.5 s silent
            time.sleep(0.3)
            client.send(b"Zeile %d mit Inhalt\r\n" % n)
        client.send(b".\r\n")
        code, text = client.reply()
    finally:
        client.close()
    assert code == 250, text
    assert upstream.received[0].data.count(b"Zeile ") == 8


def test_silent_data_upload_is_still_cut(upstream, relay_to):
    relay = relay_to(smtp={"timeout_seconds": 1})
    client = RawClient(relay.port)
    try:
        client.envelope()
        assert client.cmd(b"DATA")[0] == 354
        client.send(HEADER + b"half a message")
        client.sock.settimeout(5)
        started = time.monotonic()
        rest = client.reader.read()
        waited = time.monotonic() - started
    finally:
        client.close()
    assert waited < 4 and rest.startswith(b"421"), rest
    assert upstream.received == []


def noop_forever(client: RawClient, until: float) -> str:
    """NOOP every 0.2 s until ``until``; returns how the connection ended."""
    try:
        while time.monotonic() < until:
            code, text = client.cmd(b"NOOP")
            if code != 250:
                return text.decode(errors="replace")
            time.sleep(0.2)
    except (ConnectionError, OSError) as exc:
        return f"closed: {exc}"
    return "still open"


def test_noop_slowloris_cannot_hold_a_connection_beyond_the_idle_timeout(upstream, relay_to):
    relay = relay_to(smtp={"timeout_seconds": 1, "max_connections": 1})
    attacker = RawClient(relay.port)
    try:
        assert attacker.cmd(b"EHLO slow.example")[0] == 250
        started = time.monotonic()
        end = noop_forever(attacker, started + 4)
        held = time.monotonic() - started
    finally:
        attacker.close()
    assert end.startswith("closed") or end.startswith("421"), end
    assert held < 2.5, f"NOOPs kept the only connection for {held:.1f} s with a 1 s idle timeout"
    time.sleep(0.2)
    still_serves(relay, upstream)


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (a remote client's view), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


class RemoteClient(RawClient):
    def __init__(self, host: str, port: int, timeout: float = 10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reply()


@pytest.mark.parametrize("per_client", [2, 4], ids=["per-client-limit", "all-remote-slots-taken"])
def test_remote_slowloris_cannot_lock_out_local_users(upstream, relay_to, monkeypatch, certificate, per_client):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to attack from")
    cert, key = certificate
    relay = relay_to(
        **remote_auth_settings(
            monkeypatch,
            tls_certificate=cert,
            tls_key=key,
            max_connections=4,
            max_connections_per_client=per_client,
            timeout_seconds=30,
        )
    )
    held: list[RemoteClient] = []
    refused = 0
    try:
        for _ in range(12):
            try:
                attacker = RemoteClient(address, relay.port)
            except OSError:
                refused += 1
                continue
            if attacker.greeting[0] == 220:
                attacker.cmd(b"EHLO slow.example")
                held.append(attacker)
            else:
                refused += 1
                attacker.close()
        assert (len(held), refused) == (per_client, 12 - per_client), f"one remote client holds {len(held)}"
        # Local users get in at once, while the remote client keeps its connections busy.

        for _ in range(3):
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as smtp:
                smtp.starttls(context=tls_client_context())
                smtp.login("anna", "s3cret-local-pw")
                assert smtp.sendmail(FROM, [TO], PLAIN) == {}
        for attacker in held:
            assert attacker.cmd(b"NOOP")[0] == 250  # the attack went on all along
    finally:
        for attacker in held:
            attacker.close()
    assert delivered_to(upstream) == [TO] * 3
