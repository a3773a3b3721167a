"""The control socket: how `gdpr-proxy status` and `reload` talk to the running service.

An AF_UNIX stream socket in the data directory, owner-only.  One JSON object per line each
way: the client sends ``{"command": "status"}``, the service answers
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}`` and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("gdpr_proxy.control")

SOCKET_NAME = "control.sock"
MAX_LINE = 64 * 1024
REQUEST_TIMEOUT = 5.0
# AF_UNIX paths are limited to 108 bytes including the terminating NUL.
MAX_PATH_BYTES = 107

Provider = Callable[[], Awaitable[dict[str, Any]]]


class ControlError(Exception):
    """The service answered with an error, or could not be asked."""


class ServiceNotRunning(ControlError):
    """Nobody listens on the control socket."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def _check_length(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ControlError(f"control socket path is too long for a Unix socket: {path}")


def _remove_stale(path: Path) -> None:
    """Remove a socket left by a service that did not shut down; refuse if one is alive."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"{path} exists and is not a socket; remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise ControlError(f"another gdpr-mail-proxy is already running (control socket {path})")


def _peer_allowed(writer: asyncio.StreamWriter) -> bool:
    # The file mode already keeps others out; this also covers a directory with loose modes.
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid in (os.getuid(), 0)


async def start_control_server(
    path: Path | str,
    status_provider: Provider,
    reload_handler: Provider | None = None,
    more_handlers: dict[str, Provider] | None = None,
) -> asyncio.AbstractServer:
    """Listen on ``path`` (mode 0600) for ``status`` and, when a handler is given, ``reload``."""
    path = Path(path)
    _check_length(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_stale(path)
    handlers: dict[str, Provider] = {"status": status_provider}
    if reload_handler is not None:
        handlers["reload"] = reload_handler
    handlers.update(more_handlers or {})

    async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _peer_allowed(writer):
                response: dict[str, Any] = {"ok": False, "error": "permission denied"}
            else:
                response = await _answer(reader, handlers)
            writer.write(json.dumps(response, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # Restrict the mode before listen(): until then every connect() is refused,
        # so there is no moment when another user could get in.
        os.chmod(path, 0o600)
        return await asyncio.start_unix_server(serve_client, sock=sock, limit=MAX_LINE)
    except BaseException:
        sock.close()
        path.unlink(missing_ok=True)
        raise


async def _answer(reader: asyncio.StreamReader, handlers: dict[str, Provider]) -> dict[str, Any]:
    try:
        line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
        request = json.loads(line)
    except (ValueError, asyncio.LimitOverrunError):
        return {"ok": False, "error": "malformed request"}
    command = request.get("command") if isinstance(request, dict) else None
    handler = handlers.get(command) if isinstance(command, str) else None
    if handler is None:
        return {"ok": False, "error": f"unknown command {command!r}; known: {', '.join(sorted(handlers))}"}
    try:
        return {"ok": True, "result": await handler()}
    except Exception as exc:
        log.exception("control command %r failed", command)
        return {"ok": False, "error": f"{command} failed: {type(exc).__name__}: {exc}"}


async def stop_control_server(server: asyncio.AbstractServer, path: Path | str) -> None:
    """Stop listening and remove the socket file, so `status` reports "not running"."""
    server.close()
    await server.wait_closed()
    Path(path).unlink(missing_ok=True)


async def query(path: Path | str, command: str, timeout: float = 10.0) -> dict[str, Any]:
    """Send ``command`` to the service listening on ``path``; its result, or ControlError."""
    path = Path(path)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path), limit=MAX_LINE * 16), timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ServiceNotRunning(f"gdpr-mail-proxy is not running (no service at {path})") from None
    except PermissionError:
        raise ControlError(f"permission denied on {path} (the service runs as another user?)") from None
    except TimeoutError:
        raise ControlError(f"the service did not answer on {path}") from None
    try:
        writer.write(json.dumps({"command": command}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        raise ControlError(f"the service did not answer {command!r} within {timeout:g} s") from None
    except ConnectionError as exc:
        raise ControlError(f"connection to the service lost: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    try:
        response = json.loads(line)
    except ValueError:
        raise ControlError("the service sent a malformed answer") from None
    if not isinstance(response, dict) or not response.get("ok"):
        error = response.get("error") if isinstance(response, dict) else None
        raise ControlError(str(error or "the service sent a malformed answer"))
    result = response.get("result")
    return result if isinstance(result, dict) else {}
