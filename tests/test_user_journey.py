"""Issue 2's user journey with the real command and a real client program (swaks)."""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port

SWAKS = shutil.which("swaks")
needs_swaks = pytest.mark.skipif(SWAKS is None, reason="swaks is not installed (apt-get install swaks)")


class ServeProcess:
    def __init__(self, home: Path, config: Path | None):
        self.env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.args = [sys.executable, "-m", "proxy"] + (["-c", str(config)] if config else [])
        self.proc = subprocess.Popen([*self.args, "serve"], env=self.env, stderr=subprocess.PIPE, text=True, cwd=home)
        self.log: list[str] = []
        deadline = time.monotonic() + 15
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if "CAPTURE MODE" in line or "upstream:" in line:
                return
        raise AssertionError("relay did not start:\n" + "".join(self.log))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.args, *args], env=self.env, capture_output=True, text=True, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"listen:\n  port: {port}\n")  # everything else: embedded defaults
    process = ServeProcess(tmp_path, config)
    process.port = port  # type: ignore[attr-defined]
    yield process
    process.stop()


def swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    assert SWAKS is not None
    return subprocess.run(
        [SWAKS, "--server", f"127.0.0.1:{port}", "--from", "anna@nordlicht.example", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_on_embedded_defaults_prints_capture_path(serve, tmp_path):
    text = "".join(serve.log)
    capture = tmp_path / ".local/share/gdpr-mail-proxy/capture"
    assert f"messages are written to {capture}/new" in text
    assert (tmp_path / ".local/share/gdpr-mail-proxy/store.sqlite3").stat().st_mode & 0o777 == 0o600


@needs_swaks
def test_swaks_lands_in_capture_then_suppression_refuses_one_recipient(serve, tmp_path):
    capture = tmp_path / ".local/share/gdpr-mail-proxy/capture"
    result = swaks(serve.port, "--to", "someone@example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(mailbox.Maildir(capture, create=False))) == 1

    added = serve.cli("suppress", "add", "someone@example.org")
    assert added.returncode == 0 and "suppressed" in added.stdout
    result = swaks(serve.port, "--to", "someone@example.org,colleague@example.net")
    transcript = result.stdout + result.stderr
    assert re.search(r"<\*\* 550 5\.7\.1 <someone@example\.org>: recipient opted out on \d{4}-\d\d-\d\d", transcript)
    assert "not sent" in transcript
    assert "<-  250 2.0.0 Captured for 1 recipient(s)" in transcript
    delivered = [m.get_all("Delivered-To") for m in mailbox.Maildir(capture, create=False)]
    assert sorted(map(tuple, delivered)) == [("colleague@example.net",), ("someone@example.org",)]

    checked = serve.cli("check", "someone@example.org")
    assert "refused (suppression)" in checked.stdout


@needs_swaks
def test_stopped_upstream_gives_client_a_4xx(tmp_path, monkeypatch):
    port, dead = free_port(), free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"listen:\n  port: {port}\nupstream:\n  host: 127.0.0.1\n  port: {dead}\n  security: none\n"
        "sender:\n  name: Anna\n  company: Nordlicht\n  privacy_policy_url: https://n.example/p\n"
        "  opt_out_address: optout@n.example\n"
    )
    process = ServeProcess(tmp_path, config)
    try:
        result = swaks(port, "--to", "someone@example.org")
        assert re.search(r"<\*\* 451 4\.4\.1 Your mail server cannot be reached", result.stdout + result.stderr)
    finally:
        process.stop()


MSMTP = shutil.which("msmtp")


@pytest.mark.skipif(MSMTP is None, reason="msmtp is not installed (apt-get install msmtp)")
def test_msmtp_as_in_the_readme_guide(serve, tmp_path):
    """The README's msmtp set-up, run as written (host, port, no TLS, no auth)."""
    rc = tmp_path / "msmtprc"
    rc.write_text(
        "account relay\nhost 127.0.0.1\n"
        f"port {serve.port}\nauth off\ntls off\nfrom anna@nordlicht.example\naccount default : relay\n"
    )
    rc.chmod(0o600)
    message = "From: anna@nordlicht.example\nTo: kontakt@firma.de\nSubject: Hallo\n\nGuten Tag\n"
    assert MSMTP is not None
    result = subprocess.run(
        [MSMTP, "-C", str(rc), "kontakt@firma.de"], input=message, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    captured = list(mailbox.Maildir(tmp_path / ".local/share/gdpr-mail-proxy/capture", create=False))
    assert len(captured) == 1
    body = " ".join(captured[0].get_payload(decode=True).decode().split())
    assert "Guten Tag" in body and "Nein danke" in body
