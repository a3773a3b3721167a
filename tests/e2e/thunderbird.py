"""Drives the real Thunderbird under Xvfb: a fresh start per message, sent with Ctrl+Return."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THUNDERBIRD = shutil.which("thunderbird")
XVFB = shutil.which("Xvfb")
XDOTOOL = shutil.which("xdotool")
MISSING = [name for name, path in (("thunderbird", THUNDERBIRD), ("xvfb", XVFB), ("xdotool", XDOTOOL)) if not path]

# Window titles Thunderbird 115+ uses (English UI, as Debian's package starts by default).
COMPOSE_TITLE = "^Write: "
ERROR_TITLES = ("Send Message Error", "Sending of the message failed", "Mail Server Error")


def profile_prefs(smtp_port: int, name: str, address: str) -> str:
    """user.js: one identity sending through 127.0.0.1:PORT, no auth, no TLS, nothing else online."""
    prefs: dict[str, object] = {
        "mail.smtpservers": "smtp1",
        "mail.smtpserver.smtp1.hostname": "127.0.0.1",
        "mail.smtpserver.smtp1.port": smtp_port,
        "mail.smtpserver.smtp1.authMethod": 1,  # no authentication
        "mail.smtpserver.smtp1.try_ssl": 0,  # no TLS
        "mail.smtpserver.smtp1.username": "",
        "mail.smtp.defaultserver": "smtp1",
        "mail.identity.id1.fullName": name,
        "mail.identity.id1.useremail": address,
        "mail.identity.id1.smtpServer": "smtp1",
        "mail.identity.id1.valid": True,
        "mail.identity.id1.fcc": False,  # no Sent copy: there is no mail server to keep it
        "mail.identity.id1.compose_html": False,
        "mail.account.account1.identities": "id1",
        "mail.account.account1.server": "server1",
        "mail.account.account2.server": "server2",
        "mail.accountmanager.accounts": "account1,account2",
        "mail.accountmanager.defaultaccount": "account1",
        "mail.accountmanager.localfoldersserver": "server2",
        # An incoming server that is never contacted, only so that the identity has an account.
        "mail.server.server1.type": "pop3",
        "mail.server.server1.hostname": "127.0.0.1",
        "mail.server.server1.port": 9,
        "mail.server.server1.userName": "sales",
        "mail.server.server1.name": "sales",
        "mail.server.server1.login_at_startup": False,
        "mail.server.server1.check_new_mail": False,
        "mail.server.server2.type": "none",
        "mail.server.server2.hostname": "Local Folders",
        "mail.server.server2.name": "Local Folders",
        "mail.server.server2.userName": "nobody",
        # No first-run wizards, update checks, telemetry or start page.
        "mail.shell.checkDefaultClient": False,
        "mail.provider.enabled": False,
        "mail.startup.enabledMailCheckOnce": True,
        "mail.rights.version": 1,
        "mailnews.start_page.enabled": False,
        "mail.spellcheck.inline": False,
        "mail.warn_on_send_accel_key": False,
        "app.update.auto": False,
        "app.update.enabled": False,
        "app.update.checkInstallTime": False,
        "extensions.update.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.healthreport.uploadEnabled": False,
        "toolkit.telemetry.enabled": False,
        "network.proxy.type": 0,
        "browser.shell.checkDefaultBrowser": False,
    }

    def js(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f'user_pref("{key}", {js(value)});\n' for key, value in prefs.items())


def wait_for(condition: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    return condition()


@dataclass
class SendOutcome:
    sent: bool  # the compose window closed without an error dialog
    error_window: str | None  # the title of Thunderbird's error dialog, if one opened
    log: str


class VirtualDisplay:
    """Xvfb on a free display number (chosen by Xvfb itself with -displayfd)."""

    def __init__(self) -> None:
        assert XVFB is not None
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            [XVFB, "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Thunderbird:
    def __init__(self, workdir: Path, display: VirtualDisplay, smtp_port: int, name: str, address: str):
        self.workdir = workdir
        self.display = display
        self.smtp_port = smtp_port
        self.name = name
        self.address = address
        self.env = {**os.environ, "DISPLAY": display.display, "MOZ_CRASHREPORTER_DISABLE": "1"}
        self.runs = 0

    def _windows(self) -> list[str]:
        assert XDOTOOL is not None
        found = subprocess.run(
            [XDOTOOL, "search", "--onlyvisible", "--name", ".", "getwindowname", "%@"],
            env=self.env, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return [line for line in found.stdout.splitlines() if line.strip()]

    def _compose_window(self) -> str | None:
        assert XDOTOOL is not None
        found = subprocess.run(
            [XDOTOOL, "search", "--onlyvisible", "--name", COMPOSE_TITLE],
            env=self.env, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        ids = found.stdout.split()
        return ids[0] if ids else None

    def _error_window(self) -> str | None:
        return next((w for w in self._windows() if any(t in w for t in ERROR_TITLES)), None)

    def send(
        self, to: list[str], subject: str, body: str, delivered: Callable[[], bool], timeout: float = 60
    ) -> SendOutcome:
        """Start Thunderbird with a compose window, send it, wait until ``delivered()`` or an error dialog."""
        assert THUNDERBIRD is not None and XDOTOOL is not None
        self.runs += 1
        profile = self.workdir / f"profile{self.runs}"  # each compose needs a fresh Thunderbird start
        profile.mkdir(parents=True)
        (profile / "user.js").write_text(profile_prefs(self.smtp_port, self.name, self.address))
        message = self.workdir / f"body{self.runs}.txt"
        message.write_text(body)
        log_path = self.workdir / f"thunderbird{self.runs}.log"
        compose = f"to='{','.join(to)}',subject='{subject}',message={message}"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [THUNDERBIRD, "--no-remote", "-profile", str(profile), "-compose", compose],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            window = wait_for(self._compose_window, timeout)
            if not window:
                raise RuntimeError(f"Thunderbird opened no compose window; windows: {self._windows()}")

            def finished() -> bool:
                return bool(self._error_window()) or (self._compose_window() is None and delivered())

            # The window is mapped before its editor takes keys: press again until Thunderbird reacts.
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not finished():
                if self._compose_window() is not None and not self._error_window():
                    subprocess.run(
                        [XDOTOOL, "key", "--window", str(window), "ctrl+Return"],
                        env=self.env, capture_output=True, timeout=10,
                    )  # fmt: skip
                wait_for(finished, 3)
            error = self._error_window()
            return SendOutcome(
                sent=not error and delivered(), error_window=error, log=log_path.read_text(errors="replace")
            )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
