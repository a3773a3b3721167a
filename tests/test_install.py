"""A regular install behaves like the checkout: a wheel built outside the tree, in a fresh venv, served elsewhere."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import venv
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.ports import free_port

CHECKOUT = Path(__file__).resolve().parent.parent
TRACKER = "https://mailtrack.io/trace/mail/8a5b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b.png?u=1234567"


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_artifacts(directory: Path) -> set[str]:
    """What a build could leave in the source tree, whether git ignores it or not."""
    return {p.name for p in directory.iterdir() if p.name == "build" or p.name.endswith((".egg-info", "dist"))}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """gdpr-proxy from a wheel in a fresh virtual environment outside the checkout."""
    work = tmp_path_factory.mktemp("install")
    before = build_artifacts(CHECKOUT)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", CHECKOUT)
    assert build_artifacts(CHECKOUT) == before, "building left artifacts in the source tree"
    wheel = next((work / "dist").glob("gdpr_mail_proxy-*.whl"))
    venv.EnvBuilder(with_pip=True).create(work / "venv")
    run(work / "venv/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    return work / "venv/bin/gdpr-proxy"


def test_the_wheel_carries_the_shipped_rules_and_units(installed):
    wheel = next(installed.parent.parent.parent.glob("dist/*.whl"))
    listing = run(installed.parent / "python", "-m", "zipfile", "-l", wheel)
    for name in ("answers", "footers", "freemail", "policies", "regions", "trackers", "replies/en", "replies/quoting"):
        assert f"proxy/rules/shipped/{name}.yaml" in listing
    assert "proxy/service/systemd/gdpr-mail-proxy.service" in listing


def clean_environment(home: Path) -> dict[str, str]:
    """A user's environment: no Python paths of the test run, so only the installed package is found."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", PATH="/usr/bin:/bin")
    return env


def serve_and_send(program: list[str], python_path: str = "") -> bytes:
    """Start `serve` in capture mode from a new home (not the checkout), relay one message, return what left."""
    home = Path(tempfile.mkdtemp(prefix="gdpr-"))  # short: the control socket path must fit a Unix socket
    port = free_port()
    config = home / "config.yaml"
    config.write_text(f"listen:\n  port: {port}\n")
    env = clean_environment(home)
    if python_path:
        env["PYTHONPATH"] = python_path
    command = [*program, "-c", str(config), "serve"]
    proc = subprocess.Popen(command, cwd=home, env=env, stderr=subprocess.PIPE, text=True)
    try:
        log = []
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            log.append(line)
            if "CAPTURE MODE" in line:
                break
        else:
            raise AssertionError("serve did not start:\n" + "".join(log))
        assert any("CAPTURE MODE" in line for line in log), "".join(log)
        message = EmailMessage()
        message["From"] = "Anna Nord <anna@nordlicht.example>"
        message["To"] = "jan@kunde.de"
        message["Subject"] = "Kurze Frage"
        message["Message-ID"] = "<install-test@nordlicht.example>"
        message["Date"] = "Wed, 02 Dec 2026 09:00:00 +0000"
        message.set_content("Guten Tag,\nhaben Sie kurz Zeit?\n")
        message.add_alternative(f'<p>Guten Tag,</p><p>haben Sie kurz Zeit?</p><img src="{TRACKER}">', subtype="html")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.send_message(message)
        box = home / ".local/share/gdpr-mail-proxy/capture"
        files = list((box / "new").iterdir())
        assert len(files) == 1, files
        return files[0].read_bytes()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def comparable(raw: bytes) -> bytes:
    """The message without what differs between two runs (trace lines, boundaries, dates)."""
    text = re.sub(rb"(?m)^Received:.*(\r?\n[ \t].*)*\r?\n", b"", raw)
    return re.sub(rb"=+_?\d{6,}=*|[0-9a-f]{32}", b"X", text)


def test_an_installed_wheel_relays_exactly_as_the_checkout_does(installed):
    from_wheel = serve_and_send([str(installed)])
    from_checkout = serve_and_send([sys.executable, "-m", "proxy"], python_path=str(CHECKOUT))
    assert TRACKER.encode() not in from_wheel
    parsed = email.message_from_bytes(from_wheel, policy=email.policy.default)
    texts = [part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text"]  # type: ignore[attr-defined]
    assert len(texts) == 2 and all("Datenschutz" in t or "widersprechen" in t for t in texts), texts
    assert comparable(from_wheel) == comparable(from_checkout)


def test_an_install_without_its_rule_files_refuses_to_start(installed, tmp_path):
    site = next(installed.parent.parent.glob("lib/python3*/site-packages"))
    shipped = site / "proxy/rules/shipped"
    hidden = tmp_path / "hidden"
    shipped.rename(hidden)
    try:
        env = clean_environment(tmp_path)
        command = [str(installed), "serve"]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    finally:
        hidden.rename(shipped)
    assert done.returncode != 0
    assert "shipped rule file missing" in done.stderr
    assert "Traceback" not in done.stderr
