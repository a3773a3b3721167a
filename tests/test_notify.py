"""sd_notify messages, received on a real AF_UNIX datagram socket as systemd would."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.service import sd_notify as notify


class NotifySocket:
    """What systemd listens on: one datagram per notification."""

    def __init__(self, address: str, env_value: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2)
        self.env_value = env_value

    def receive(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
            return True
        except BlockingIOError:
            return False
        finally:
            self.sock.settimeout(2)


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    path = tmp_path / "notify.sock"
    listener = NotifySocket(str(path), str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", listener.env_value)
    yield listener
    listener.sock.close()


def test_ready_with_status(systemd: NotifySocket) -> None:
    assert notify.ready("listening on 127.0.0.1:2525")
    assert systemd.receive() == {"READY": "1", "STATUS": "listening on 127.0.0.1:2525"}


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (notify.watchdog, {"WATCHDOG": "1"}),
        (notify.stopping, {"STOPPING": "1"}),
        (lambda: notify.status("rules reloaded\nat noon"), {"STATUS": "rules reloaded at noon"}),
    ],
)
def test_single_field_messages(systemd: NotifySocket, send: object, expected: dict[str, str]) -> None:
    assert callable(send) and send()
    assert systemd.receive() == expected


def test_reloading_carries_the_monotonic_clock(systemd: NotifySocket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notify.reloading()
    message = systemd.receive()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"gdpr-proxy-test-{uuid.uuid4().hex}"
    listener = NotifySocket("\0" + name, "@" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", listener.env_value)
        assert notify.ready()
        assert listener.receive() == {"READY": "1"}
    finally:
        listener.sock.close()


def test_no_op_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.ready() is False
    assert notify.watchdog() is False
    assert notify.watchdog_interval({}) is None


def test_missing_socket_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert notify.stopping() is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    pid = str(os.getpid())
    assert notify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert notify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert notify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert notify.watchdog_interval({"WATCHDOG_USEC": "junk"}) is None


async def test_watchdog_loop_pings_while_healthy(systemd: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    stop = asyncio.Event()
    healthy = True

    async def check() -> bool:
        return healthy

    task = asyncio.create_task(notify.watchdog_loop(stop, check))
    received = await asyncio.to_thread(systemd.receive)
    assert received == {"WATCHDOG": "1"}
    healthy = False
    await asyncio.sleep(0.1)  # a ping may have been on its way already
    while systemd.pending():
        pass
    await asyncio.sleep(0.2)
    assert not systemd.pending(), "no WATCHDOG=1 while unhealthy"
    stop.set()
    await asyncio.wait_for(task, 1)
