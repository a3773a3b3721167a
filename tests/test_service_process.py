"""The relay as systemd runs it: a real `python -m proxy serve` process, and its control socket.

The first part checks the control socket protocol with a stand-in status provider; the
second starts the service as a subprocess with NOTIFY_SOCKET pointing at a socket the test
listens on, as systemd would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from proxy.cli import service as cli_service
from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.service import control
from tests.harness import upstream_settings, write_config
from tests.ports import free_port
from tests.upstream import RecordingHandler

REPO = Path(__file__).resolve().parent.parent

STATUS: dict[str, Any] = {
    "pid": 4242,
    "up_since": "2026-11-17T08:00:00+01:00",
    "listen": "127.0.0.1:2525",
    "capture_mode": False,
    "upstream": {"description": "smtp.example.com:587 (starttls)", "reachable": True, "error": None},
    "watcher": {"state": "connected (IDLE)", "last_check": "2026-11-17T09:59:00+01:00", "error": None},
    "today": {
        "day": "2026-11-17",
        "relayed": 12,
        "refused": 2,
        "modified": 11,
        "suppressed": {"opt-out": 3, "bounce": 1},
    },
    "queue": 0,
    "rule_errors": [],
}


async def fake_status() -> dict[str, Any]:
    return STATUS


async def test_status_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "data" / "control.sock"
    server = await control.start_control_server(path, fake_status)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert await control.query(path, "status") == STATUS
    finally:
        await control.stop_control_server(server, path)
    assert not path.exists()


async def test_reload_round_trip_and_unknown_command(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    calls: list[str] = []

    async def reload() -> dict[str, Any]:
        calls.append("reload")
        return {"reloaded": False, "rule_errors": [{"file": "p.yaml", "line": 3, "key": "footers", "message": "x"}]}

    server = await control.start_control_server(path, fake_status, reload)
    try:
        result = await control.query(path, "reload")
        assert calls == ["reload"] and result["reloaded"] is False
        with pytest.raises(control.ControlError, match="unknown command 'shutdown'"):
            await control.query(path, "shutdown")
    finally:
        await control.stop_control_server(server, path)


async def test_malformed_request_and_failing_provider(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"

    async def broken() -> dict[str, Any]:
        raise RuntimeError("store closed")

    server = await control.start_control_server(path, broken)
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"not json\n")
        assert json.loads(await reader.readline()) == {"ok": False, "error": "malformed request"}
        writer.close()
        with pytest.raises(control.ControlError, match="status failed: RuntimeError: store closed"):
            await control.query(path, "status")
    finally:
        await control.stop_control_server(server, path)


async def test_not_running(tmp_path: Path) -> None:
    with pytest.raises(control.ServiceNotRunning, match="not running"):
        await control.query(tmp_path / "control.sock", "status")


async def test_stale_socket_is_replaced_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    first = await control.start_control_server(path, fake_status)
    with pytest.raises(control.ControlError, match="already running"):
        await control.start_control_server(path, fake_status)
    first.close()  # a crash leaves the file behind
    await first.wait_closed()
    assert path.exists()
    second = await control.start_control_server(path, fake_status)
    try:
        assert (await control.query(path, "status"))["pid"] == 4242
    finally:
        await control.stop_control_server(second, path)


def run_cli(argv: list[str], config: Config) -> int:
    parser = argparse.ArgumentParser(prog="gdpr-proxy")
    cli_service.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args, config))


def serve_in_background(path: Path, provider: control.Provider) -> tuple[asyncio.AbstractEventLoop, Any]:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = asyncio.run_coroutine_threadsafe(control.start_control_server(path, provider), loop).result(5)
    return loop, server


def test_status_command_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Config(data_dir=str(tmp_path / "data"))
    path = control.socket_path(config.data_path)
    status = {**STATUS, "rule_errors": [{"file": "/r/policies.yaml", "line": 3, "key": "footers", "message": "bad"}]}

    async def provider() -> dict[str, Any]:
        return status

    loop, server = serve_in_background(path, provider)
    try:
        assert run_cli(["status"], config) == 0
    finally:
        asyncio.run_coroutine_threadsafe(control.stop_control_server(server, path), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
    out = capsys.readouterr().out
    assert "up since:  2026-11-17T08:00:00+01:00" in out
    assert "smtp.example.com:587 (starttls), reachable: yes" in out
    assert "watcher:   connected (IDLE), last check 2026-11-17T09:59:00+01:00" in out
    assert "12 relayed, 2 refused, 11 modified" in out
    assert "suppressions added today: bounce 1, opt-out 3" in out
    assert "/r/policies.yaml:3: footers: bad" in out


def test_status_when_not_running(tmp_path: Path) -> None:
    config = Config(data_dir=str(tmp_path / "data"))
    with pytest.raises(UserError, match="gdpr-mail-proxy is not running"):
        run_cli(["status"], config)


def test_socket_is_owner_only_even_with_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "control.sock"
        loop, server = serve_in_background(path, fake_status)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        asyncio.run_coroutine_threadsafe(control.stop_control_server(server, path), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
    finally:
        os.umask(old)


# --- the service process under a fake systemd ---------------------------------------------


class FakeSystemd:
    """Receives sd_notify datagrams in a thread, as systemd does for a Type=notify service."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: queue.Queue[dict[str, str]] = queue.Queue()
        self.seen: list[dict[str, str]] = []
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            self.messages.put(dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line))

    def wait_for(self, key: str, timeout: float = 10.0) -> dict[str, str]:
        """The next message carrying ``key``; WATCHDOG=1 pings in between are kept in ``seen``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {key} from the service; received {self.seen}")
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(message)
            if key in message:
                return message

    def close(self) -> None:
        self.sock.close()


class SlowHandler(RecordingHandler):
    """An upstream that takes its time over DATA, so that a message is in flight."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.port = 0
        self.data_started = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_started.set()
        await asyncio.sleep(self.delay)
        return str(await super().handle_DATA(server, session, envelope))


@pytest.fixture
def slow_upstream() -> Iterator[SlowHandler]:
    handler = SlowHandler(delay=1.5)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = int(controller.port)
    yield handler
    controller.stop()


class ServiceProcess:
    def __init__(self, tmp_path: Path, settings: dict[str, Any]):
        self.config_path = write_config(tmp_path, {"listen": {"port": free_port()}, **settings})
        self.port = int(yaml.safe_load(self.config_path.read_text())["listen"]["port"])
        self.data_dir = tmp_path / "data"
        self.rules_dir = tmp_path / "user-rules"
        self.systemd = FakeSystemd(tmp_path / "notify.sock")
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.systemd.path),
            "WATCHDOG_USEC": "400000",  # a ping every 0.2 s
            "PYTHONUNBUFFERED": "1",
        }
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "-c", str(self.config_path), "serve"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def smtp_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(3) == b"220"
        except OSError:
            return False

    def output(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
        out, _ = self.process.communicate(timeout=10)
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.systemd.close()


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Any]:
    processes: list[ServiceProcess] = []

    def start(settings: dict[str, Any] | None = None) -> ServiceProcess:
        service = ServiceProcess(tmp_path, settings or {})
        processes.append(service)
        return service

    yield start
    for service in processes:
        service.stop()


def test_ready_only_once_smtp_answers_then_watchdog(start_process: Any) -> None:
    service: ServiceProcess = start_process()
    ready = service.systemd.wait_for("READY", timeout=20)
    ready_at = time.monotonic()
    # READY=1 promises that mail clients can connect: SMTP must answer at once.
    assert service.smtp_answers(), "READY=1 sent before the SMTP socket answers"
    assert ready["READY"] == "1"
    assert service.process.poll() is None
    service.systemd.wait_for("WATCHDOG", timeout=2)
    assert time.monotonic() - ready_at < 2
    # And it was not late: the control socket is up too, and status answers.
    status = asyncio.run(control.query(control.socket_path(service.data_dir), "status"))
    for key in ("up_since", "upstream", "today", "rule_errors"):
        assert key in status, f"status lacks {key!r}: {status}"


def test_ready_within_a_second_of_smtp(start_process: Any) -> None:
    service: ServiceProcess = start_process()
    deadline = time.monotonic() + 20
    while not service.smtp_answers():
        assert service.process.poll() is None, service.output()
        assert time.monotonic() < deadline, "SMTP never answered"
        time.sleep(0.02)
    answered = time.monotonic()
    service.systemd.wait_for("READY", timeout=5)
    assert time.monotonic() - answered < 1.0


def test_sighup_reloads_with_reloading_then_ready(start_process: Any) -> None:
    service: ServiceProcess = start_process()
    service.systemd.wait_for("READY", timeout=20)
    service.rules_dir.mkdir(exist_ok=True)
    (service.rules_dir / "policies.yaml").write_text("footers: false\n")
    service.process.send_signal(signal.SIGHUP)
    reloading = service.systemd.wait_for("RELOADING")
    assert reloading["RELOADING"] == "1"
    usec = int(reloading["MONOTONIC_USEC"])
    assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 30_000_000
    service.systemd.wait_for("READY")
    assert service.process.poll() is None


def test_broken_rule_file_shows_in_status_and_service_keeps_running(start_process: Any) -> None:
    service: ServiceProcess = start_process()
    service.systemd.wait_for("READY", timeout=20)
    service.rules_dir.mkdir(exist_ok=True)
    broken = service.rules_dir / "policies.yaml"
    broken.write_text("# edited\nfooters: maybe\n")
    socket_path = control.socket_path(service.data_dir)
    deadline = time.monotonic() + 15
    while True:
        status = asyncio.run(control.query(socket_path, "status"))
        if status.get("rule_errors"):
            break
        assert time.monotonic() < deadline, "the broken rule file was not noticed"
        time.sleep(0.2)
    [error] = status["rule_errors"]
    assert (error["file"], error["line"], error["key"]) == (str(broken), 2, "footers")
    assert service.smtp_answers()
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "-c", str(service.config_path), "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert f"{broken}:2: footers:" in result.stdout


def test_status_command_when_not_running(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {})
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "-c", str(config_path), "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "gdpr-mail-proxy is not running" in result.stderr


def test_sigterm_finishes_the_message_in_flight_and_exits_0(start_process: Any, slow_upstream: SlowHandler) -> None:
    service: ServiceProcess = start_process(upstream_settings(slow_upstream.port))
    service.systemd.wait_for("READY", timeout=20)
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", service.port, timeout=20) as client:
                outcome["refused"] = client.sendmail(
                    "anna@nordlicht.example",
                    ["buyer@example.com"],
                    b"From: anna@nordlicht.example\r\nTo: buyer@example.com\r\nSubject: Hello\r\n"
                    b"Message-ID: <inflight@nordlicht.example>\r\n\r\nHello.\r\n",
                )
        except Exception as exc:
            outcome["error"] = exc

    client = threading.Thread(target=send)
    client.start()
    assert slow_upstream.data_started.wait(20), "the message never reached the upstream"
    service.process.send_signal(signal.SIGTERM)
    service.systemd.wait_for("STOPPING", timeout=5)
    # No new connections once stopping, while the message in flight is still being sent.
    deadline = time.monotonic() + 2
    while service.smtp_answers():
        assert time.monotonic() < deadline, "still accepting connections after STOPPING=1"
        time.sleep(0.05)
    client.join(30)
    assert outcome == {"refused": {}}, f"the message in flight was not finished: {outcome}"
    assert len(slow_upstream.received) == 1
    assert service.process.wait(30) == 0, service.output()
    assert not control.socket_path(service.data_dir).exists(), "control socket left behind"
