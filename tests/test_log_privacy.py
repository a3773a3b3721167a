"""At debug level the relay's log never carries SQL parameters: addresses in a journal cannot be forgotten."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from tests.harness import upstream_settings, wait_until, write_config
from tests.ports import free_port
from tests.upstream import RecordingServer

RCPT = "ingrid.privat@kunde.example"


def test_debug_log_has_no_sql_parameters(tmp_path: Path, upstream: RecordingServer) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        {**upstream_settings(upstream.port), "listen": {"host": "127.0.0.1", "port": port}, "log": {"level": "debug"}},
    )
    err = (tmp_path / "relay.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", "-c", str(config), "serve", "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert wait_until(lambda: b"listening on" in (tmp_path / "relay.log").read_bytes(), 30)
        message = f"From: anna@nordlicht.example\r\nTo: {RCPT}\r\nSubject: Angebot\r\n\r\nGuten Tag.\r\n"
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            assert client.sendmail("anna@nordlicht.example", [RCPT], message) == {}
        assert wait_until(lambda: len(upstream.received) == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        err.close()
    entries = [json.loads(line) for line in (tmp_path / "relay.log").read_text().splitlines() if line.startswith("{")]
    assert any(e["level"] == "debug" for e in entries), "the relay did log at debug level"
    chatter = [e for e in entries if e["logger"].split(".")[0] in ("aiosqlite", "asyncpg", "aioimaplib", "mail")]
    assert not [e for e in chatter if e["level"] in ("debug", "info")], chatter[:3]
    with_sql = [e["message"] for e in entries if RCPT in e["message"] and ("INSERT" in e["message"])]
    assert not with_sql, with_sql[:3]
