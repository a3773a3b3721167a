"""Issue 2's user journey with the real command and a real client program (swaks)."""

from __future__ import annotations

import mailbox
import os
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
    result = swaks(serve.port, "--to", "someone@example.org,colleague@example.net,third@example.com")
    transcript = result.stdout + result.stderr
    assert result.returncode == 0, transcript
    assert "<-  250 2.1.5 <someone@example.org> noted, but it will not be sent there (opted out)" in transcript
    assert "<-  250 2.0.0 Captured for 2 recipient(s)" in transcript
    # Capture mode: the notice to the sender is captured too, as it would have been sent.
    assert wait_for(lambda: len(list(mailbox.Maildir(capture, create=False))) == 3)
    messages = list(mailbox.Maildir(capture, create=False))
    notice = next(m for m in messages if m["X-GDPR-Proxy-Notice"])
    assert notice.get_all("Delivered-To") == ["anna@nordlicht.example"]
    assert "someone@example.org: opted out on" in notice.get_payload(decode=True).decode()
    delivered = sorted(tuple(m.get_all("Delivered-To")) for m in messages if not m["X-GDPR-Proxy-Notice"])
    assert delivered == [("colleague@example.net", "third@example.com"), ("someone@example.org",)]

    checked = serve.cli("check", "someone@example.org")
    assert "refused (suppression)" in checked.stdout


@needs_swaks
def test_stopped_upstream_queues_the_message(tmp_path, monkeypatch):
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
        transcript = result.stdout + result.stderr
        assert result.returncode == 0, transcript
        assert "<-  250 2.0.0 Queued: your mail server is unreachable; it will be sent when it is back" in transcript
        listing = process.cli("queue")
        assert listing.returncode == 0 and "someone@example.org" in listing.stdout
    finally:
        process.stop()


MSMTP = shutil.which("msmtp")


def wait_for(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return bool(callable(condition) and condition())


@pytest.mark.skipif(MSMTP is None, reason="msmtp is not installed (apt-get install msmtp)")
def test_msmtp_one_opted_out_among_three_exits_0(serve, tmp_path):
    """msmtp stops at the first refused RCPT (exit 65); noted at RCPT, the other two get it."""
    assert serve.cli("suppress", "add", "eva@firma.example").returncode == 0
    rc = tmp_path / "msmtprc"
    rc.write_text(
        "account relay\nhost 127.0.0.1\n"
        f"port {serve.port}\nauth off\ntls off\nfrom anna@nordlicht.example\naccount default : relay\n"
    )
    rc.chmod(0o600)
    rcpts = ["jan@kunde.example", "eva@firma.example", "piotr@klient.example"]
    message = f"From: anna@nordlicht.example\nTo: {', '.join(rcpts)}\nSubject: Hallo\n\nGuten Tag\n"
    assert MSMTP is not None
    result = subprocess.run([MSMTP, "-C", str(rc), *rcpts], input=message, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    capture = tmp_path / ".local/share/gdpr-mail-proxy/capture"
    assert wait_for(lambda: len(list(mailbox.Maildir(capture, create=False))) == 2)  # the message, the notice
    messages = list(mailbox.Maildir(capture, create=False))
    got = sorted(r for m in messages if not m["X-GDPR-Proxy-Notice"] for r in m.get_all("Delivered-To"))
    assert got == ["jan@kunde.example", "piotr@klient.example"]
    notice = next(m for m in messages if m["X-GDPR-Proxy-Notice"])
    assert "eva@firma.example: opted out on" in notice.get_payload(decode=True).decode()


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
