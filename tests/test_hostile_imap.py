"""The reply watcher against a hostile IMAP server: bounded memory, no message that stops it, no reconnect storm."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import smtplib
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from proxy.config.imap import ImapSettings
from proxy.watcher.imap.connection import ImapConnection
from proxy.watcher.imap.follow import FetchedMessage, ImapWatcher
from proxy.watcher.imap.parse import ParseError, nest, tokenize
from tests.harness import until, upstream_settings, wait_until, write_config
from tests.hostile_imap import Behaviour, HostileImap, Message, deep_bodystructure, hostile_server, reply
from tests.pg_server import pg_url, postgres_server  # noqa: F401 (fixtures)
from tests.ports import free_port
from tests.upstream import RecordingServer

PASSWORD_ENV = "TEST_HOSTILE_IMAP_PASSWORD"
GB = 1024**3
MB = 1024**2
FROM = "anna@nordlicht.example"


class MemoryStore:
    def __init__(self) -> None:
        self.checkpoints: dict[tuple[str, str], tuple[int, int]] = {}
        self.unreadable: list[tuple[str, int, str]] = []  # (folder, UID, reason)

    async def get_checkpoint(self, account: str, folder: str) -> tuple[int, int] | None:
        return self.checkpoints.get((account, folder))

    async def set_checkpoint(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        self.checkpoints[(account, folder)] = (uidvalidity, last_uid)

    async def record_unreadable(self, account: str, folder: str, uidvalidity: int, uid: int, reason: str) -> None:
        self.unreadable.append((folder, uid, reason))


class Recorder:
    def __init__(self) -> None:
        self.messages: list[FetchedMessage] = []

    async def __call__(self, message: FetchedMessage) -> None:
        self.messages.append(message)

    @property
    def uids(self) -> list[int]:
        return [m.uid for m in self.messages]


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, HostileImap.password)


def settings_for(server: HostileImap, **overrides: object) -> ImapSettings:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": server.user,
        "password_env": PASSWORD_ENV,
        "poll_seconds": 1,
        "timeout_seconds": 3.0,
        "max_part_bytes": 4096,
    }
    values.update(overrides)
    return ImapSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def watching(
    server: HostileImap, store: MemoryStore, handler: Recorder, **overrides: object
) -> AsyncIterator[ImapWatcher]:
    watcher = ImapWatcher(settings_for(server, **overrides), store, handler, backoff_initial=0.05, backoff_max=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        yield watcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="proxy.watcher"):
        yield caplog


# --- memory ----------------------------------------------------------------------------------


async def test_a_1_gb_literal_is_refused_unread_and_the_next_reply_is_handled(
    warnings: pytest.LogCaptureFixture,
) -> None:
    store, handler = MemoryStore(), Recorder()
    before = rss_kb()
    with hostile_server(Message(reply(1), literal_size=GB), Message(reply(2))) as server:
        async with watching(server, store, handler) as watcher:
            await until(lambda: handler.uids == [2])
            sent = server.bytes_sent
        assert sent < 64 * MB, "the literal must not be read"
    assert rss_kb() - before < 50 * 1024
    [(folder, uid, reason)] = store.unreadable
    assert (folder, uid) == ("INBOX", 1)
    assert str(GB) in reason and "limit" in reason
    assert watcher.status().unreadable == 1
    assert watcher.status().last_unreadable is not None and "UID 1" in watcher.status().last_unreadable
    logged = [r.getMessage() for r in warnings.records if "UID 1" in r.getMessage()]
    assert any(str(GB) in line and "limit" in line for line in logged), logged


async def test_a_server_ignoring_the_partial_fetch_is_read_up_to_the_cap(warnings: pytest.LogCaptureFixture) -> None:
    text = "Please remove me from your list.\r\n" + "more words of a very long reply\r\n" * 200_000  # 6.6 MB
    store, handler = MemoryStore(), Recorder()
    with hostile_server(Message(reply(1, text), ignore_partial=True), Message(reply(2))) as server:
        async with watching(server, store, handler):
            await until(lambda: handler.uids == [1, 2])
    first = handler.messages[0].raw
    assert len(first) <= 2 * 4096
    assert b"Please remove me from your list." in first
    assert first.endswith(b"\r\n"), "cut at the end of a line"
    assert not store.unreadable
    assert any("UID 1" in r.getMessage() and "4096" in r.getMessage() for r in warnings.records)


async def test_a_50_mb_message_from_a_server_ignoring_the_partial_fetch_stays_small() -> None:
    """The real scale, with the default part cap."""
    text = "Bitte streichen Sie mich aus Ihrem Verteiler.\r\n" + ("x" * 998 + "\r\n") * 50_000
    store, handler = MemoryStore(), Recorder()
    message = Message(reply(1, text), ignore_partial=True)
    del text
    gc.collect()
    before = rss_kb()
    peak = before
    with hostile_server(message) as server:
        async with watching(server, store, handler, max_part_bytes=65536):
            deadline = time.monotonic() + 20
            while handler.uids != [1] and time.monotonic() < deadline:
                peak = max(peak, rss_kb())
                await asyncio.sleep(0.01)
    assert handler.uids == [1]
    assert len(handler.messages[0].raw) <= 2 * 65536
    assert peak - before < 30 * 1024, f"RSS grew by {(peak - before) // 1024} MB"


async def test_a_line_that_never_ends_is_refused() -> None:
    store, handler = MemoryStore(), Recorder()
    behaviour = Behaviour(endless_line_after_select=6 * MB)
    with hostile_server(Message(reply(1)), behaviour=behaviour) as server:
        async with watching(server, store, handler) as watcher:
            await until(lambda: watcher.last_error is not None and "a line of" in watcher.last_error)
    assert handler.uids == []


async def test_a_response_of_many_small_literals_is_refused_and_skipped() -> None:
    store, handler = MemoryStore(), Recorder()
    flood = Message(reply(1), extra_literals=(10_000, 1000))  # 10 MB in 1000-byte pieces
    with hostile_server(flood, Message(reply(2))) as server:
        async with watching(server, store, handler):
            await until(lambda: handler.uids == [2])
    [(_, uid, reason)] = store.unreadable
    assert uid == 1 and "a response of" in reason


async def test_a_dead_connection_lets_go_of_its_buffers_at_once() -> None:
    """Without the garbage collector: aioimaplib's timeout ties a command to its exception in a
    cycle, so a dropped connection's half-read response must be released when it is dropped."""
    stalled = Message(reply(1), literal_size=16 * MB, stall_after=8 * MB)
    with hostile_server(stalled) as server:
        settings = settings_for(server, max_part_bytes=32 * MB, timeout_seconds=0.3)
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            for _ in range(5):
                conn = ImapConnection(settings)
                await conn.open()
                await conn.select("INBOX")
                with pytest.raises(TimeoutError):
                    await conn.uid_fetch(1, "UID BODY.PEEK[TEXT]")
                await conn.close()
            await asyncio.sleep(0.5)  # past aioimaplib's own command timeout
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            gc.enable()
    assert held < 4 * MB, f"{held // MB} MB still held after 5 dropped connections"


# --- messages that cannot be read ------------------------------------------------------------


async def test_a_malformed_bodystructure_falls_back_to_header_and_text() -> None:
    store, handler = MemoryStore(), Recorder()
    broken = Message(reply(1, "STOP"), bodystructure=b'("TEXT" "PLAIN" ((( "7BIT"')
    with hostile_server(broken, Message(reply(2))) as server:
        async with watching(server, store, handler):
            await until(lambda: handler.uids == [1, 2])
    assert b"STOP" in handler.messages[0].raw
    assert not store.unreadable


async def test_a_5000_deep_bodystructure_falls_back_to_header_and_text() -> None:
    store, handler = MemoryStore(), Recorder()
    deep = Message(reply(1, "STOP"), bodystructure=deep_bodystructure(5000))
    with hostile_server(deep, Message(reply(2))) as server:
        async with watching(server, store, handler):
            await until(lambda: handler.uids == [1, 2])
    assert b"STOP" in handler.messages[0].raw


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ParseError, match="nested deeper"):
        nest(tokenize([deep_bodystructure(5000)]))
    assert nest(tokenize([b"((a) (b (c)) d)"]))[0] == [["a"], ["b", ["c"]], "d"]


async def test_a_message_that_cannot_be_read_at_all_is_recorded_and_skipped(
    warnings: pytest.LogCaptureFixture,
) -> None:
    store, handler = MemoryStore(), Recorder()
    with hostile_server(Message(reply(1), broken_fetch=True), Message(reply(2))) as server:
        async with watching(server, store, handler) as watcher:
            await until(lambda: handler.uids == [2])
            assert store.checkpoints[(watcher.account, "INBOX")] == (server.uidvalidity, 2)
    [(folder, uid, reason)] = store.unreadable
    assert (folder, uid) == ("INBOX", 1)
    assert "cannot be read" in reason
    assert any("INBOX UID 1 cannot be read" in r.getMessage() for r in warnings.records)


async def test_a_catch_up_asks_for_the_structures_of_many_messages_in_one_command() -> None:
    store, handler = MemoryStore(), Recorder()
    with hostile_server(*(Message(reply(n)) for n in range(1, 6))) as server:
        async with watching(server, store, handler):
            await until(lambda: handler.uids == [1, 2, 3, 4, 5])
        structure_commands = [c for c in server.fetch_commands if "BODYSTRUCTURE" in c]
    assert structure_commands == ["1:5 (UID BODYSTRUCTURE)"]


async def test_one_unreadable_structure_in_a_batch_costs_only_that_message() -> None:
    store, handler = MemoryStore(), Recorder()
    messages = [Message(reply(1)), Message(reply(2), broken_fetch=True), Message(reply(3)), Message(reply(4))]
    with hostile_server(*messages) as server:
        async with watching(server, store, handler) as watcher:
            await until(lambda: handler.uids == [1, 3, 4])
            assert store.checkpoints[(watcher.account, "INBOX")] == (server.uidvalidity, 4)
    assert [uid for _, uid, _ in store.unreadable] == [2]


async def test_a_message_whose_fetch_always_times_out_is_skipped_after_three_attempts() -> None:
    store, handler = MemoryStore(), Recorder()
    with hostile_server(Message(reply(1), stall=True), Message(reply(2))) as server:
        async with watching(server, store, handler, timeout_seconds=0.3):
            await until(lambda: handler.uids == [2], timeout=15)
        body_fetches = [uid for uid, items in server.fetches if uid == 1 and "BODY.PEEK" in items]
    assert len(body_fetches) == 3
    [(_, uid, reason)] = store.unreadable
    assert uid == 1 and "3 attempts" in reason


# --- reconnecting ----------------------------------------------------------------------------


async def test_bye_during_idle_backs_off_instead_of_a_reconnect_storm() -> None:
    store, handler = MemoryStore(), Recorder()
    with hostile_server(Message(reply(1)), behaviour=Behaviour(bye_in_idle=0.05)) as server:
        watcher = ImapWatcher(settings_for(server), store, handler, backoff_initial=0.1, backoff_max=2.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.wait_for(task, 5)
        connects = server.connections
    assert handler.uids == [1]
    # back-off 0.1 s doubling: at most 6 connections in 3 s (a storm reconnects every ~0.1 s)
    assert 3 <= connects <= 6, connects


async def test_a_long_healthy_session_starts_the_back_off_over() -> None:
    store, handler = MemoryStore(), Recorder()
    with hostile_server(Message(reply(1)), behaviour=Behaviour(bye_in_idle=0.3)) as server:
        watcher = ImapWatcher(
            settings_for(server), store, handler, backoff_initial=0.2, backoff_max=10.0, healthy_seconds=0.2
        )
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(watcher.run(stop))
        while server.connections < 7 and time.monotonic() - started < 10.0:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.wait_for(task, 5)
    # Every session lived past healthy_seconds, so each reconnect waits only the first step
    # (at most 0.2 s): 7 connections in about 3.5 s. Doubling delays (0.2, 0.4, ... 6.4 s)
    # would need more than 12 s for the same 7, so 10 s leaves room for a busy machine.
    assert server.connections >= 7, (server.connections, elapsed)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    return str(request.getfixturevalue("pg_url"))


async def test_the_store_keeps_what_was_skipped_and_why(store_target: str) -> None:
    from proxy.store import Store

    store = await Store.open(store_target)
    try:
        handler = Recorder()
        with hostile_server(Message(reply(1), broken_fetch=True), Message(reply(2))) as server:
            watcher = ImapWatcher(settings_for(server), store, handler, backoff_initial=0.05, backoff_max=0.2)
            stop = asyncio.Event()
            task = asyncio.create_task(watcher.run(stop))
            await until(lambda: handler.uids == [2])
            stop.set()
            await asyncio.wait_for(task, 5)
        await store.record_unreadable(watcher.account, "INBOX", server.uidvalidity, 1, "seen again")  # no duplicate
        [row] = await store.unreadable_messages()
        assert (row["account"], row["folder"], row["uidvalidity"], row["uid"]) == (
            watcher.account,
            "INBOX",
            server.uidvalidity,
            1,
        )
        assert row["reason"] == "seen again"
        assert await store.get_checkpoint(watcher.account, "INBOX") == (server.uidvalidity, 2)
    finally:
        await store.close()


# --- the relay as a process ------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_the_relay_stays_under_100_mb_and_keeps_relaying_while_the_server_sends_1_gb_literals(
    tmp_path: Path, upstream: RecordingServer
) -> None:
    server = HostileImap()
    for n in range(1, 4):
        server.add(Message(reply(n), literal_size=GB))
    server.add(Message(reply(4)))
    port = free_port()
    imap = {
        "host": "127.0.0.1",
        "port": 0,
        "security": "none",
        "username": server.user,
        "password_env": PASSWORD_ENV,
        "poll_seconds": 1,
    }
    with server:
        imap["port"] = server.port
        settings = {**upstream_settings(upstream.port), "listen": {"host": "127.0.0.1", "port": port}, "imap": imap}
        config = write_config(tmp_path, settings)
        log = (tmp_path / "relay.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "-c", str(config), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        peak = 0.0
        try:
            assert wait_until(lambda: b"listening on" in (tmp_path / "relay.log").read_bytes(), 30)
            sent = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if sent % 4 == 3:
                    server.add(Message(reply(100 + sent), literal_size=GB))  # more of the same, while it runs
                message = f"From: {FROM}\r\nTo: lead{sent}@firma.example\r\nSubject: Angebot {sent}\r\n\r\nHallo.\r\n"
                with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                    assert client.sendmail(FROM, [f"lead{sent}@firma.example"], message) == {}
                sent += 1
                peak = max(peak, peak_rss_mb(proc.pid))
                time.sleep(0.2)
            assert wait_until(lambda: len(upstream.received) == sent)
            peak = max(peak, peak_rss_mb(proc.pid))
            refused = len({uid for uid, items in server.fetches if "BODY.PEEK" in items and uid != 4})
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            log.close()
    assert proc.returncode == 0
    assert refused >= 3, "the watcher went on to the next messages"
    assert server.bytes_sent < 200 * MB, "the literals were refused, not read"
    assert peak < 100, f"relay peak RSS {peak:.0f} MB"
    relay_log = (tmp_path / "relay.log").read_text()
    assert "over the limit" in relay_log
