"""systemd readiness and watchdog notifications (the sd_notify protocol), without libsystemd.

Each notification is one datagram of ``KEY=VALUE`` lines sent to the AF_UNIX socket named
by ``$NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace.  Outside
systemd the variable is unset and every call is a cheap no-op, so the relay run from a
terminal behaves exactly the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger("gdpr_proxy.notify")


def _address(env: Mapping[str, str]) -> str | None:
    name = env.get("NOTIFY_SOCKET")
    if not name or name[0] not in "/@":
        return None  # unset, or a vsock address, which the relay has no use for
    return "\0" + name[1:] if name[0] == "@" else name


def notify(*fields: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``fields`` (``"READY=1"``, ...) as one message; False when there is nobody to tell."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    payload = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, address)
    except OSError as exc:
        # A lost notification must never take the relay down; systemd will notice by itself.
        log.warning("could not notify systemd (%s): %s", fields[0] if fields else "", exc.strerror)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """SMTP socket bound, store open, rules loaded: mail clients can connect now."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def reloading() -> bool:
    # MONOTONIC_USEC lets systemd tell this reload apart from an earlier one (Type=notify-reload).
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")


def stopping() -> bool:
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """Free text shown by ``systemctl status``; one line."""
    return notify("STATUS=" + text.replace("\n", " "))


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``WATCHDOG_USEC``), or None when not asked for."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process (we were started by one)
    return usec / 2_000_000


HealthCheck = Callable[[], Awaitable[bool]]


async def watchdog_loop(stop: asyncio.Event, healthy: HealthCheck | None = None) -> None:
    """Ping the watchdog while ``healthy()`` says so, until ``stop`` is set.

    The pings come from the event loop itself, so a blocked loop stops them and systemd
    restarts the service (Restart=on-failure).
    """
    interval = watchdog_interval()
    if interval is None:
        return
    while not stop.is_set():
        try:
            ok = True if healthy is None else await asyncio.wait_for(healthy(), interval)
        except Exception as exc:  # an unhealthy answer, whatever its form, means no ping
            log.warning("health check failed: %s", exc)
            ok = False
        if ok:
            watchdog()
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
