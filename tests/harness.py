"""Runs the real relay service in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from proxy.config.settings import load_config
from proxy.rules.ruleset import RuleHolder
from proxy.service.app import start_service, stop_service
from proxy.service.state import Service


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; one last look at the end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Await, without blocking the loop, until ``predicate`` holds; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def write_config(directory: Path, settings: dict[str, Any]) -> Path:
    """A config file with the test's data directory and port; ``settings`` merge on top."""
    base: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "data_dir": str(directory / "data"),
        "rules_dir": str(directory / "user-rules"),
        "queue": {"retry_seconds": 0.2, "max_retry_seconds": 0.5},
    }
    for key, value in settings.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    path.chmod(0o600)
    return path


def upstream_settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "upstream": {"host": "127.0.0.1", "port": port, "security": "none", "timeout_seconds": 5, **extra},
        "sender": {
            "name": "Anna Nowak",
            "company": "Nordlicht Software GmbH",
            "privacy_policy_url": "https://nordlicht.example/privacy",
            "opt_out_address": "optout@nordlicht.example",
        },
    }


class RelayThread:
    def __init__(self, config_path: Path):
        self.config = load_config(config_path, explicit=True)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.service: Service | None = None

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> RelayThread:
        self.thread.start()
        rules = RuleHolder(self.config.user_rules_path)
        self.service = self.call(start_service(self.config, rules))
        return self

    @property
    def port(self) -> int:
        assert self.service is not None
        return self.service.port

    @property
    def spool_entries(self) -> list[Any]:
        assert self.service is not None
        return self.service.spool.entries()

    def stop(self) -> None:
        if self.service is None:
            return
        service, self.service = self.service, None
        self.call(stop_service(service, drain_seconds=5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
