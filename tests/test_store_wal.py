"""The store's write-ahead log removed or replaced under a running relay: fail closed, send to nobody opted out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import RelayThread
from tests.test_hostile_smtp import FROM, PLAIN, RawClient

OTHER = "eva@kunde.example"
FIRST = "jan@kunde.example"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the user runs it: its own process, its own connection to the store."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", "-c", str(config), *args], capture_output=True, text=True, timeout=60
    )


def send_one(relay: RelayThread, rcpt: str) -> tuple[int, bytes]:
    """The first answer that is not a success, or the answer to the message."""
    client = RawClient(relay.port, timeout=30)
    try:
        for line in (b"EHLO store.example", f"MAIL FROM:<{FROM}>".encode(), f"RCPT TO:<{rcpt}>".encode()):
            code, text = client.cmd(line)
            if code != 250:
                return code, text
        return client.data(PLAIN + b".\r\n")
    finally:
        client.close()


def rcpt_reply(relay: RelayThread, rcpt: str) -> tuple[int, bytes]:
    client = RawClient(relay.port, timeout=20)
    try:
        assert client.cmd(b"EHLO store.example")[0] == 250
        assert client.cmd(f"MAIL FROM:<{FROM}>".encode())[0] == 250
        return client.cmd(f"RCPT TO:<{rcpt}>".encode())
    finally:
        client.close()


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_removed_wal_or_index_fails_closed(tmp_path, relay_to, upstream, suffix):
    relay = relay_to(smtp={"refused_recipients": "refuse_at_rcpt"})
    assert send_one(relay, FIRST)[0] == 250  # the relay has used its store: the WAL is in use
    db = relay.config.store_path
    companion = Path(f"{db}{suffix}")
    assert companion.exists()
    companion.unlink()  # a clean-up script, a sync tool, a user tidying the data folder

    cli(tmp_path / "config.yaml", "suppress", "add", OTHER)  # it may or may not manage: the relay must not send
    code, text = rcpt_reply(relay, OTHER)
    assert code in (550, 451), f"opted-out address accepted from a store whose {suffix} file is gone: {text!r}"
    assert send_one(relay, OTHER)[0] != 250
    assert [m.rcpt_tos for m in upstream.received] == [[FIRST]]


def test_a_replaced_wal_is_noticed_before_the_next_message(tmp_path, relay_to, upstream):
    relay = relay_to()
    assert send_one(relay, FIRST)[0] == 250
    db = relay.config.store_path
    wal = Path(f"{db}-wal")
    replacement = wal.with_name(wal.name + ".new")
    replacement.write_bytes(b"")
    replacement.replace(wal)  # same name, another file
    code, _ = send_one(relay, FIRST)
    assert code == 451
    assert len(upstream.received) == 1
