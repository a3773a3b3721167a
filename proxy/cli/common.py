"""Helpers every command group shares: the store for one command, message files, the address policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.store import Store, open_store


async def with_store(config: Config, work: Callable[[Store], Awaitable[int]]) -> int:
    """Open the store for one command, run ``work`` with it, and close it whatever happens."""
    store = await open_store(config)
    try:
        return await work(store)
    finally:
        await store.close()


def read_message_file(path: str) -> bytes:
    """An .eml file as SMTP would carry it (files saved on Unix use LF; SMTP uses CRLF)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from None
    return raw if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")
