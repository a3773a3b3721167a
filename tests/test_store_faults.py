"""Store faults while the relay runs: fail closed (451 at RCPT), never send to someone whose
opt-out status is unknown, and recover once the condition clears."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.cli.commands import main as gdpr_proxy
from tests.harness import RelayThread
from tests.test_hostile_smtp import FROM, PLAIN, RawClient

SUPPRESSED = "jan@kunde.example"
OTHER = "eva@kunde.example"


def cli(tmp_path: Path, *args: str) -> int:
    return gdpr_proxy(["-c", str(tmp_path / "config.yaml"), *args])


def rcpt_replies(relay: RelayThread, *rcpts: str) -> list[tuple[int, bytes]]:
    client = RawClient(relay.port, timeout=20)
    try:
        assert client.cmd(b"EHLO store.example")[0] == 250
        assert client.cmd(f"MAIL FROM:<{FROM}>".encode())[0] == 250
        return [client.cmd(f"RCPT TO:<{r}>".encode()) for r in rcpts]
    finally:
        client.close()


def send_one(relay: RelayThread, rcpt: str) -> tuple[int, bytes]:
    client = RawClient(relay.port, timeout=30)
    try:
        client.envelope(rcpts=(rcpt,))
        return client.data(PLAIN + b".\r\n")
    finally:
        client.close()


def contacts(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return {row[0] for row in conn.execute("SELECT address FROM contacts")}


def store_files(db: Path) -> list[Path]:
    return [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm") if Path(f"{db}{suffix}").exists()]


@pytest.fixture
def relay(tmp_path, upstream, relay_to) -> RelayThread:
    # The per-RCPT answer shows the decision each check made on the store as it was then.
    relay = relay_to(smtp={"refused_recipients": "refuse_at_rcpt"})
    assert cli(tmp_path, "suppress", "add", SUPPRESSED) == 0
    return relay


def test_writer_holding_the_lock_past_busy_timeout(relay, upstream):
    """WAL: another process's write lock does not block reads, so RCPT still knows the status.

    The message goes out; recording the first contact waits for the lock and may give up
    (documented: the next message then repeats the full footer).  Afterwards all is normal.
    """
    db = relay.config.store_path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "c.execute(\"INSERT INTO meta (key, value) VALUES ('lock-test', 'x')\")\n"
            "print('locked', flush=True)\n"
            "time.sleep(7)\n",  # longer than the store's busy_timeout (5 s)
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        replies = rcpt_replies(relay, SUPPRESSED, OTHER)
        assert time.monotonic() - started < 3
        assert replies[0][0] == 550 and replies[1][0] == 250, replies
        code, text = send_one(relay, OTHER)
        assert code == 250, text
    finally:
        holder.kill()
        holder.wait()
    assert [m.rcpt_tos for m in upstream.received] == [[OTHER]]
    code, text = send_one(relay, "new@kunde.example")
    assert code == 250, text
    assert "new@kunde.example" in contacts(db)
    assert rcpt_replies(relay, SUPPRESSED)[0][0] == 550


def test_corrupt_store_fails_closed_then_recovers(relay, upstream):
    db = relay.config.store_path
    saved = {path: path.read_bytes() for path in store_files(db)}
    assert len(saved) == 3  # WAL mode: database, log and index
    for path, data in saved.items():
        with path.open("r+b") as f:
            f.write(os.urandom(len(data)))
    try:
        replies = rcpt_replies(relay, SUPPRESSED, OTHER)
        assert [r[1][:9] for r in replies] == [b"451 4.3.0"] * 2, replies
    finally:
        for path, data in saved.items():
            with path.open("r+b") as f:
                f.write(data)
    assert upstream.received == []
    replies = rcpt_replies(relay, SUPPRESSED, OTHER)
    assert [r[0] for r in replies] == [550, 250], replies
    assert send_one(relay, OTHER)[0] == 250
    assert [m.rcpt_tos for m in upstream.received] == [[OTHER]]


def test_replaced_store_file_is_not_ignored(tmp_path, relay, upstream):
    """A store file deleted and created anew (restore, cleanup) while the relay runs: the
    relay must not keep answering from the old, unlinked file.  An opt-out recorded in the
    new file must be honoured, or RCPT must fail closed."""
    db = relay.config.store_path
    for path in store_files(db):
        path.unlink()
    assert cli(tmp_path, "suppress", "add", OTHER) == 0  # creates the new store file
    code, text = rcpt_replies(relay, OTHER)[0]
    assert code in (550, 451), f"opted-out address accepted from a stale store: {text!r}"


def test_closed_store_connection_answers_451(relay, upstream):
    """If the store connection is gone (e.g. during shutdown), RCPT fails closed with 451,
    not with a session error."""
    assert relay.service is not None
    relay.call(relay.service.store.close())
    client = RawClient(relay.port, timeout=20)
    try:
        assert client.cmd(b"EHLO store.example")[0] == 250
        assert client.cmd(f"MAIL FROM:<{FROM}>".encode())[0] == 250
        _code, text = client.cmd(f"RCPT TO:<{OTHER}>".encode())
    finally:
        client.close()
    assert text.startswith(b"451 4.3.0"), text
    assert upstream.received == []
