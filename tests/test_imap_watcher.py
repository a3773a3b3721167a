"""The IMAP reply watcher against a real IMAP server (pymap) over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from proxy.config.imap import ImapSettings
from proxy.schema import SchemaError, load_text
from proxy.watcher.imap.connection import mailbox_arg
from proxy.watcher.imap.fetch import fallback_plan, plan_for
from proxy.watcher.imap.follow import FetchedMessage, FolderUnavailable, HandlerFailed, ImapError, ImapWatcher
from proxy.watcher.imap.parse import ParseError, fetch_items, parse_bodystructure, tokenize
from tests.harness import until
from tests.imap_server import ImapServer, TlsFront, make_cert

PASSWORD_ENV = "TEST_IMAP_WATCHER_PASSWORD"


class MemoryStore:
    def __init__(self) -> None:
        self.checkpoints: dict[tuple[str, str], tuple[int, int]] = {}

    async def get_checkpoint(self, account: str, folder: str) -> tuple[int, int] | None:
        return self.checkpoints.get((account, folder))

    async def set_checkpoint(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        self.checkpoints[(account, folder)] = (uidvalidity, last_uid)


class Recorder:
    """A handler that records what it was given and can be told to fail."""

    def __init__(self) -> None:
        self.messages: list[FetchedMessage] = []
        self.calls = 0
        self.fail_uids: set[int] = set()
        self.arrived = asyncio.Event()
        self.then: Callable[[FetchedMessage], Awaitable[None]] | None = None

    async def __call__(self, message: FetchedMessage) -> None:
        self.calls += 1
        if message.uid in self.fail_uids:
            raise RuntimeError("classifier unavailable")
        if self.then is not None:
            await self.then(message)
        self.messages.append(message)
        self.arrived.set()

    @property
    def keys(self) -> list[tuple[str, int]]:
        return [(m.folder, m.uid) for m in self.messages]

    async def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.messages)} of {count} messages after {timeout} s")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)


def make_message(n: int, *, attachment: int = 0, text: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Prospect <prospect@example.org>"
    msg["To"] = "sales@example.com"
    msg["Subject"] = f"Re: our offer {n}"
    msg["Message-ID"] = f"<reply-{n}@example.org>"
    msg.set_content(text or f"Please remove me from your list ({n}).\n")
    msg.add_alternative(f"<p>{text or f'Please remove me ({n})'}</p>", subtype="html")
    if attachment:
        msg.add_attachment(
            os.urandom(attachment), maintype="application", subtype="pdf", filename="brochure (final).pdf"
        )
    return msg.as_bytes()


def make_bounce(n: int) -> bytes:
    """A delivery-status report returning the (large) original message, as MTAs send them."""
    original_body = "ORIGINAL BODY\n" * 20000  # large: only its header may be fetched
    return f"""From: MAILER-DAEMON@example.org
To: sales@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-{n}@example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; gone@example.org
Action: failed
Status: 5.1.1

--BOUNDARY
Content-Type: message/rfc822

From: sales@example.com
To: gone@example.org
Subject: Our offer
Message-ID: <sent-{n}@example.com>

{original_body}
--BOUNDARY--
""".replace("\n", "\r\n").encode()


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImapServer]:
    srv = ImapServer(tmp_path / "mail")
    monkeypatch.setenv(PASSWORD_ENV, srv.password)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def settings_for(server: ImapServer, **overrides: object) -> ImapSettings:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": server.user,
        "password_env": PASSWORD_ENV,
        "poll_seconds": 1,
        "timeout_seconds": 3.0,
    }
    values.update(overrides)
    return ImapSettings(**values)  # type: ignore[arg-type]


def watcher_for(settings: ImapSettings, store: MemoryStore, handler: Recorder) -> ImapWatcher:
    return ImapWatcher(settings, store, handler, backoff_initial=0.05, backoff_max=0.4)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[ImapWatcher], asyncio.Event]]:
    """Start ``watcher.run()`` in the background; stopped (and awaited) at the end of the test."""
    started: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    def start(watcher: ImapWatcher) -> asyncio.Event:
        stop = asyncio.Event()
        started.append((asyncio.create_task(watcher.run(stop)), stop))
        return stop

    yield start
    for task, stop in started:
        stop.set()
        await asyncio.wait_for(task, 5)


# --- fetching --------------------------------------------------------------------------------


async def test_messages_are_handed_over_small_and_stay_unseen(server: ImapServer) -> None:
    plain = server.append(make_message(1))
    big = server.append(make_message(2, attachment=2_000_000))
    store, handler = MemoryStore(), Recorder()
    async with watcher_for(settings_for(server), store, handler) as watcher:
        assert await watcher.run_once() == 2

    assert handler.keys == [("INBOX", plain), ("INBOX", big)]
    by_uid = {m.uid: m for m in handler.messages}
    raw = by_uid[big].raw
    assert len(raw) < 4096, "the attachment must not be downloaded"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == "<reply-2@example.org>"
    assert parsed["Subject"] == "Re: our offer 2"
    types = [p.get_content_type() for p in parsed.walk()]
    assert types == ["multipart/mixed", "text/plain", "text/html"]
    body = parsed.get_body(("plain",))
    assert body is not None and "Please remove me from your list (2)." in body.get_content()
    assert not parsed.defects

    assert server.flags() == {plain: set(), big: set()}, "BODY.PEEK must leave messages unseen"
    account = watcher.account
    assert store.checkpoints[(account, "INBOX")][1] == big


async def test_bounce_keeps_report_structure_and_only_the_returned_header(server: ImapServer) -> None:
    uid = server.append(make_bounce(7))
    handler = Recorder()
    async with watcher_for(settings_for(server), MemoryStore(), handler) as watcher:
        await watcher.run_once()

    [message] = handler.messages
    assert message.uid == uid
    assert b"ORIGINAL BODY" not in message.raw
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    types = [p.get_content_type() for p in parsed.walk()]
    assert "message/delivery-status" in types
    assert "message/rfc822" in types
    returned = next(p for p in parsed.walk() if p.get_content_type() == "message/rfc822")
    [inner] = list(returned.iter_parts())
    assert inner["Message-ID"] == "<sent-7@example.com>"


async def test_parts_are_capped(server: ImapServer) -> None:
    server.append(make_message(3, text="line of a very long reply\n" * 20000))
    handler = Recorder()
    async with watcher_for(settings_for(server, max_part_bytes=4096), MemoryStore(), handler) as watcher:
        await watcher.run_once()
    [message] = handler.messages
    assert len(message.raw) < 3 * 4096
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content().startswith("line of a very long reply")


async def test_first_start_scans_only_the_recent_window(server: ImapServer) -> None:
    server.append(make_message(1), when=time.time() - 90 * 86400)
    recent = server.append(make_message(2))
    handler, store = Recorder(), MemoryStore()
    async with watcher_for(settings_for(server, first_scan_days=30), store, handler) as watcher:
        assert await watcher.run_once() == 1
        assert handler.keys == [("INBOX", recent)]
        newer = server.append(make_message(3))
        assert await watcher.run_once() == 1
    assert handler.keys == [("INBOX", recent), ("INBOX", newer)]


# --- checkpoints -----------------------------------------------------------------------------


async def test_a_new_watcher_resumes_from_the_checkpoint(server: ImapServer) -> None:
    first = [server.append(make_message(n)) for n in range(3)]
    store, handler = MemoryStore(), Recorder()
    async with watcher_for(settings_for(server), store, handler) as watcher:
        assert await watcher.run_once() == 3
    later = [server.append(make_message(n)) for n in range(3, 5)]

    async with watcher_for(settings_for(server), store, handler) as watcher:
        assert await watcher.run_once() == 2
        assert await watcher.run_once() == 0
    assert [uid for _, uid in handler.keys] == first + later


async def test_a_failing_handler_holds_the_checkpoint(server: ImapServer) -> None:
    uids = [server.append(make_message(n)) for n in range(3)]
    store, handler = MemoryStore(), Recorder()
    handler.fail_uids = {uids[1]}
    async with watcher_for(settings_for(server), store, handler) as watcher:
        with pytest.raises(HandlerFailed):
            await watcher.run_once()
        assert store.checkpoints[(watcher.account, "INBOX")][1] == uids[0]
        handler.fail_uids = set()
        assert await watcher.run_once() == 2
    assert [uid for _, uid in handler.keys] == uids


async def test_run_backs_off_while_the_handler_fails(
    server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event]
) -> None:
    uid = server.append(make_message(1))
    handler = Recorder()
    handler.fail_uids = {uid}
    watcher = watcher_for(settings_for(server), MemoryStore(), handler)
    running(watcher)
    await asyncio.sleep(1.5)
    # back-off 0.05 s doubling to 0.4 s: a handful of attempts, not a spin
    assert 2 <= handler.calls <= 12
    assert watcher.last_error is not None and "RuntimeError" in watcher.last_error
    assert "classifier unavailable" not in watcher.last_error
    handler.fail_uids = set()
    await handler.wait_for(1, timeout=3)
    assert handler.keys == [("INBOX", uid)]


async def test_uidvalidity_change_rescans_the_window(server: ImapServer) -> None:
    server.create("Replies")
    old = server.append(make_message(1), folder="Replies")
    store, handler = MemoryStore(), Recorder()
    settings = settings_for(server, folders=("INBOX", "Replies"))
    async with watcher_for(settings, store, handler) as watcher:
        await watcher.run_once()
        before = store.checkpoints[(watcher.account, "Replies")]
        assert before[1] == old

        # Deleting and re-creating a folder gives it a new UIDVALIDITY, UIDs starting over.
        server.delete("Replies")
        server.create("Replies")
        again = server.append(make_message(1), folder="Replies")
        fresh = server.append(make_message(2), folder="Replies")
        assert await watcher.run_once() == 2
        after = store.checkpoints[(watcher.account, "Replies")]
    assert after[0] != before[0]
    assert after[1] == fresh
    assert handler.keys == [("Replies", old), ("Replies", again), ("Replies", fresh)]


async def test_a_missing_folder_does_not_block_the_others(server: ImapServer) -> None:
    uid = server.append(make_message(1))
    handler = Recorder()
    settings = settings_for(server, folders=("Nonexistent", "INBOX"))
    async with watcher_for(settings, MemoryStore(), handler) as watcher:
        with pytest.raises(FolderUnavailable):
            await watcher.run_once()
        assert watcher.last_error is not None and "Nonexistent" in watcher.last_error
    assert handler.keys == [("INBOX", uid)]


# --- waiting for news ------------------------------------------------------------------------


async def test_idle_delivers_a_new_message_within_two_seconds(
    server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event]
) -> None:
    handler = Recorder()
    # poll_seconds long: only IDLE can bring the message in time
    watcher = watcher_for(settings_for(server, poll_seconds=600), MemoryStore(), handler)
    running(watcher)
    await until(lambda: watcher.last_check is not None)
    assert watcher.idle_supported and watcher.connected and watcher.status().idle_in_use
    await asyncio.sleep(0.2)  # IDLE under way
    started = time.monotonic()
    uid = await asyncio.to_thread(server.append, make_message(1))
    await handler.wait_for(1, timeout=2)
    assert time.monotonic() - started < 2
    assert handler.keys == [("INBOX", uid)]


async def test_idle_is_renewed(server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event]) -> None:
    handler = Recorder()
    watcher = watcher_for(settings_for(server, idle_renew_seconds=1, poll_seconds=600), MemoryStore(), handler)
    running(watcher)
    await until(lambda: watcher.last_check is not None)
    await asyncio.sleep(2.3)  # two renewals (DONE, catch-up, IDLE again)
    uid = await asyncio.to_thread(server.append, make_message(1))
    await handler.wait_for(1, timeout=2)
    assert handler.keys == [("INBOX", uid)]
    assert watcher.connected and watcher.last_error is None


async def test_polling_when_idle_is_off(server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event]) -> None:
    handler = Recorder()
    watcher = watcher_for(settings_for(server, use_idle=False, poll_seconds=1), MemoryStore(), handler)
    running(watcher)
    await until(lambda: watcher.last_check is not None)
    uid = await asyncio.to_thread(server.append, make_message(1))
    await handler.wait_for(1, timeout=3)
    assert handler.keys == [("INBOX", uid)]
    # the server offers IDLE, but the status says what the watcher does: it polls
    assert watcher.idle_supported and not watcher.status().idle_in_use


async def test_other_folders_are_polled_while_idling_on_the_first(
    server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event]
) -> None:
    server.create("Replies")
    handler = Recorder()
    settings = settings_for(server, folders=("INBOX", "Replies"), poll_seconds=1)
    watcher = watcher_for(settings, MemoryStore(), handler)
    running(watcher)
    await until(lambda: watcher.last_check is not None)
    uid = await asyncio.to_thread(server.append, make_message(1), "Replies")
    await handler.wait_for(1, timeout=3)
    assert handler.keys == [("Replies", uid)]


@pytest.mark.parametrize("kill", [True, False], ids=["crash", "shutdown"])
async def test_server_restart_mid_idle_is_recovered(
    server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event], kill: bool
) -> None:
    before = server.append(make_message(1))
    handler = Recorder()
    watcher = watcher_for(settings_for(server, poll_seconds=600), MemoryStore(), handler)
    running(watcher)
    await handler.wait_for(1, timeout=3)
    await asyncio.sleep(0.2)  # idling

    # SIGKILL: the socket just closes; SIGTERM: the server shuts down in its own way
    await asyncio.to_thread(server.stop, kill)
    await until(lambda: not watcher.connected, timeout=3)
    await asyncio.sleep(0.5)  # a few failed reconnection attempts
    assert watcher.last_error is not None
    await asyncio.to_thread(server.start)
    after = await asyncio.to_thread(server.append, make_message(2))

    await handler.wait_for(2, timeout=5)
    assert handler.keys == [("INBOX", before), ("INBOX", after)]
    await until(lambda: watcher.connected and watcher.last_error is None, timeout=3)


async def test_run_stops_promptly(server: ImapServer) -> None:
    watcher = watcher_for(settings_for(server), MemoryStore(), Recorder())
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await until(lambda: watcher.last_check is not None)
    await asyncio.sleep(0.2)  # idling
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 3)
    assert time.monotonic() - started < 1.0
    assert not watcher.connected


async def test_run_stops_promptly_while_the_server_is_down(tmp_path: Path) -> None:
    srv = ImapServer(tmp_path / "mail")  # never started: every connection is refused
    watcher = ImapWatcher(settings_for(srv), MemoryStore(), Recorder(), backoff_initial=5, backoff_max=5)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await until(lambda: watcher.last_error is not None)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 3)
    assert time.monotonic() - started < 1.0


# --- acting on verdicts ----------------------------------------------------------------------


async def test_add_keyword_and_move(server: ImapServer) -> None:
    server.create("Opted out")
    uids = [server.append(make_message(n)) for n in range(2)]
    handler = Recorder()
    async with watcher_for(settings_for(server), MemoryStore(), handler) as watcher:
        await watcher.run_once()
        await watcher.add_keyword("INBOX", uids[0], "$OptOut")
        assert await watcher.move("INBOX", uids[1], "Opted out")
    assert server.flags() == {uids[0]: {"$OptOut"}}
    assert len(server.uids("Opted out")) == 1


async def test_add_keyword_from_the_handler_and_while_idling(
    server: ImapServer, running: Callable[[ImapWatcher], asyncio.Event]
) -> None:
    handler = Recorder()
    watcher = watcher_for(settings_for(server, poll_seconds=600), MemoryStore(), handler)

    async def flag(message: FetchedMessage) -> None:  # the verdict comes in while handling
        await watcher.add_keyword(message.folder, message.uid, "$Classified")

    handler.then = flag
    first = server.append(make_message(1))
    running(watcher)
    await handler.wait_for(1, timeout=3)
    await asyncio.sleep(0.2)  # idling: add_keyword must interrupt IDLE, not wait for it
    await asyncio.wait_for(watcher.add_keyword("INBOX", first, "$OptOut"), 2)
    assert server.flags()[first] == {"$Classified", "$OptOut"}
    second = await asyncio.to_thread(server.append, make_message(2))
    await handler.wait_for(2, timeout=3)  # still watching after the interruption
    assert server.flags()[second] == {"$Classified"}


async def test_bad_or_refused_keyword_is_an_error(server: ImapServer) -> None:
    uid = server.append(make_message(1))
    async with watcher_for(settings_for(server), MemoryStore(), Recorder()) as watcher:
        with pytest.raises(ValueError):
            await watcher.add_keyword("INBOX", uid, "$Opt Out) (\\Deleted")
        # not in the folder's PERMANENTFLAGS: the server would drop it silently
        with pytest.raises(ImapError, match="does not allow"):
            await watcher.add_keyword("INBOX", uid, "$Unknown")


# --- connection setup ------------------------------------------------------------------------


async def test_starttls_with_a_private_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = make_cert(tmp_path)
    srv = ImapServer(tmp_path / "mail", cert=cert, key=key)
    monkeypatch.setenv(PASSWORD_ENV, srv.password)
    srv.start()
    try:
        uid = srv.append(make_message(1))
        handler = Recorder()
        settings = settings_for(srv, security="starttls", ca_file=str(cert))
        async with watcher_for(settings, MemoryStore(), handler) as watcher:
            assert await watcher.run_once() == 1
        assert handler.keys == [("INBOX", uid)]

        # Without the private CA the certificate is not trusted: no login happens.
        async with watcher_for(settings_for(srv, security="starttls"), MemoryStore(), handler) as watcher:
            with pytest.raises(Exception, match=r"(?i)certificate"):
                await watcher.run_once()
    finally:
        srv.stop()


async def test_implicit_tls_with_a_private_ca(server: ImapServer, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    front = TlsFront(server.port, cert, key)
    try:
        uid = server.append(make_message(1))
        handler = Recorder()
        settings = settings_for(server, port=front.port, security="tls", ca_file=str(cert))
        async with watcher_for(settings, MemoryStore(), handler) as watcher:
            assert await watcher.run_once() == 1
        assert handler.keys == [("INBOX", uid)]
    finally:
        front.close()


async def test_wrong_password_is_reported_without_the_password(
    server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    async with watcher_for(settings_for(server), MemoryStore(), Recorder()) as watcher:
        with pytest.raises(Exception, match="refused"):
            await watcher.run_once()
        assert watcher.last_error is not None and "not-the-password" not in watcher.last_error


async def test_oauth2_token_comes_from_the_command(tmp_path: Path) -> None:
    # pymap has no XOAUTH2: check the command is run and a refusal is reported, token unlogged.
    srv = ImapServer(tmp_path / "mail")
    srv.start()
    try:
        settings = settings_for(srv, password_env=None, oauth2_command="echo secret-token-123", timeout_seconds=1.0)
        async with watcher_for(settings, MemoryStore(), Recorder()) as watcher:
            with pytest.raises(Exception):  # noqa: B017 - refused or timed out, both are failures
                await watcher.run_once()
            assert watcher.last_error is not None and "secret-token-123" not in watcher.last_error
    finally:
        srv.stop()


# --- parsing (odd server answers, no server needed) --------------------------------------------


def test_bodystructure_of_nested_multiparts_and_odd_fields() -> None:
    # pymap sends the disposition as a string; others send NIL where a list is expected.
    line = (
        b"1 FETCH (UID 9 BODYSTRUCTURE ("
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 87 4 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" NIL NIL NIL "quoted-printable" 120 3)"alternative" NIL)'
        b'("application" "pdf" NIL NIL NIL "base64" 1492 NIL "attachment; filename=\\"a (1).pdf\\"" NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 500 NIL ("text" "plain" NIL NIL NIL "7bit" 10 1) 20)'
        b' "mixed" ("boundary" "b1") NIL NIL NIL))'
    )
    [items] = fetch_items([line, b"Fetch completed."])
    top = parse_bodystructure(items["BODYSTRUCTURE"])
    assert [(p.section, p.content_type) for p in top.walk()] == [
        ("1.1", "text/plain"),
        ("1.2", "text/html"),
        ("2", "application/pdf"),
        ("3", "message/rfc822"),
    ]
    plan = plan_for(top, 1000)
    assert "BODY.PEEK[1.1]<0.1000>" in plan.items and "BODY.PEEK[1.2]<0.1000>" in plan.items
    assert "BODY.PEEK[3.HEADER]<0.1000>" in plan.items
    assert "[2]" not in plan.items and "BODY.PEEK[TEXT]" not in plan.items


def test_literals_and_fallback_assembly() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 4 BODY[HEADER]<0> {21}",
        bytearray(b"Subject: hi\r\nX: y\r\n\r\n"),
        b" BODY[TEXT]<0> {5}",
        bytearray(b"hello"),
        b")",
        b"done",
    ]
    [items] = fetch_items(lines)
    assert items["UID"] == "4"
    assert fallback_plan(100).assemble(items) == b"Subject: hi\r\nX: y\r\n\r\nhello"
    with pytest.raises(ParseError):
        parse_bodystructure(tokenize([b"garbage"]))
    with pytest.raises(ParseError):
        fetch_items([b"1 FETCH (UID 4 BODY[TEXT] {10}", b"done"])


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    """The watcher's settings as they sit in the config file, under ``imap:``."""

    imap: ImapSettings


def _load(yaml_text: str) -> ImapSettings:
    text = "imap:\n" + "".join(f"  {line}\n" for line in yaml_text.splitlines())
    return load_text(text, "config.yaml", _Config).imap


def test_settings_load_and_defaults() -> None:
    s = _load("host: imap.example.com\nusername: me\npassword_env: IMAP_PW")
    assert s.effective_port == 993 and s.folders == ("INBOX",) and s.idle_renew_seconds == 1500
    assert s.account == "me@imap.example.com"
    s = _load(
        "host: imap.example.com\nusername: me\nsecurity: starttls\noauth2_command: get-token\nfolders: [INBOX, Replies]"
    )
    assert s.effective_port == 143 and s.folders == ("INBOX", "Replies")


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("host: imap.example.com\nusername: me", "password_env"),
        ("host: imap.example.com\nusername: me\npassword_env: X\nsecurity: none", "security"),
        (
            "host: imap.example.com\nusername: me\npassword_env: X\nidle_renew_seconds: 1740",
            "idle_renew_seconds",
        ),
        ("host: imap.example.com\nusername: me\npassword_env: X\nfolders: []", "folders"),
    ],
)
def test_settings_reject_bad_combinations(yaml_text: str, key: str) -> None:
    with pytest.raises(SchemaError) as info:
        _load(yaml_text)
    assert [e.key for e in info.value.errors] == [f"imap.{key}"]


def test_clear_text_is_allowed_on_loopback_only() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        assert not list(ImapSettings(host=host, username="u", password_env="X", security="none").check())


def test_folder_names_are_quoted_and_utf7_encoded() -> None:
    assert mailbox_arg("INBOX") == '"INBOX"'
    assert mailbox_arg("Réponses & co") == '"R&AOk-ponses &- co"'
