from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import RelayThread, upstream_settings, write_config
from tests.imap_server import ImapServer
from tests.journey import PASSWORD_ENV as IMAP_PASSWORD_ENV
from tests.upstream import RecordingServer


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's config, data or rules."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def upstream() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Callable[..., RelayThread]]:
    relays: list[RelayThread] = []

    def start(settings: dict[str, Any] | None = None) -> RelayThread:
        relay = RelayThread(write_config(tmp_path, settings or {})).start()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()


@pytest.fixture
def relay_to(upstream: RecordingServer, start_relay: Callable[..., RelayThread]) -> Callable[..., RelayThread]:
    """A relay whose upstream is the recording server."""

    def start(**extra: Any) -> RelayThread:
        return start_relay({**upstream_settings(upstream.port), **extra})

    return start


@pytest.fixture
def mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImapServer]:
    """The salesperson's mailbox on a real IMAP server; its password in IMAP_PASSWORD_ENV."""
    server = ImapServer(tmp_path / "mail")
    monkeypatch.setenv(IMAP_PASSWORD_ENV, server.password)
    server.start()
    yield server
    server.stop()
