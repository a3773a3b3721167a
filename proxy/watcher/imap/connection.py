"""One authenticated IMAP connection, every call bounded in time.

aioimaplib has no reconnect of its own and some of its calls can wait forever (``idle_start``
when the server answers BYE, any command whose connection died), so every call here races
a timeout and the connection-lost callback: a dead connection surfaces at once as
``ConnectionLost`` and the watcher reconnects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shlex
import ssl
from collections.abc import Awaitable
from typing import Any, TypeVar

from aioimaplib import aioimaplib

from proxy.config.imap import ImapSettings
from proxy.config.secrets import read_secret
from proxy.watcher.imap.parse import Token, fetch_items, permanent_flags, response_code, search_uids, status_value

log = logging.getLogger(__name__)

T = TypeVar("T")

# Closing must be quick when the user stops the watcher, whatever timeout_seconds says.
CLOSE_TIMEOUT = 0.5


class ImapError(Exception):
    """The server refused a command or the connection could not be set up."""


class ConnectionLost(ImapError):
    pass


class AuthError(ImapError):
    pass


class IdleRefused(ImapError):
    pass


class FolderUnavailable(ImapError):
    """SELECT refused (no such folder, no permission): the other folders carry on."""


class ImapConnection:
    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout_seconds
        self.selected: str | None = None
        self.permanent_flags: frozenset[str] | None = None  # of the selected folder, if told
        self._client: Any = None
        self._lost = asyncio.Event()

    # --- life cycle -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._client is not None and not self._lost.is_set()

    @property
    def lost_event(self) -> asyncio.Event:
        return self._lost

    def has(self, capability: str) -> bool:
        return self._client is not None and bool(self._client.has_capability(capability))

    async def open(self) -> None:
        s = self.settings
        context = _tls_context(s) if s.security != "none" else None
        self._client = aioimaplib.IMAP4(
            host=s.host,
            port=s.effective_port,
            timeout=self.timeout,
            conn_lost_cb=self._on_lost,
            ssl_context=context if s.security == "tls" else None,
        )
        try:
            await self.call(self._client.wait_hello_from_server())
            if s.security == "starttls":
                assert context is not None
                await self._starttls(context)
            await self._authenticate()
            # Capabilities may change after login (RFC 3501 6.2.3); IDLE is often only listed then.
            await self.call(self._client.protocol.capability())
        except BaseException:
            self.abort()
            raise

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _starttls(self, context: ssl.SSLContext) -> None:
        # aioimaplib has no STARTTLS of its own: send the command, then upgrade the transport.
        if not self.has("STARTTLS"):
            raise ImapError("server does not offer STARTTLS; refusing to continue without TLS")
        protocol = self._client.protocol
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self.call(protocol.execute(command))
        _check(response, "STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await self.call(
            loop.start_tls(protocol.transport, protocol, context, server_hostname=self.settings.host)
        )
        protocol.transport = transport
        # Anything learnt before TLS must be forgotten (RFC 3501 6.2.1).
        await self.call(protocol.capability())

    async def _authenticate(self) -> None:
        s = self.settings
        if s.oauth2_command:
            token = await _run_token_command(s.oauth2_command, self.timeout)
            response = await self.call(self._client.xoauth2(s.username, token))
            if response.result != "OK":
                raise AuthError(f"XOAUTH2 login as {s.username} refused by the server")
            return
        if self.has("LOGINDISABLED"):
            raise AuthError("server refuses LOGIN on this connection (LOGINDISABLED)")
        password = read_secret(s.password_env, s.password_file, s.password_credential)
        if password is None:
            raise AuthError("no password configured")
        response = await self.call(self._client.login(s.username, password))
        if response.result != "OK":
            raise AuthError(f"login as {s.username} refused by the server")

    async def close(self) -> None:
        """LOGOUT politely but briefly, then drop the socket whatever happened."""
        if self._client is None:
            return
        with contextlib.suppress(Exception):
            if self.alive:
                await self.call(self._client.logout(), timeout=CLOSE_TIMEOUT)
        self.abort()

    def abort(self) -> None:
        client, self._client = self._client, None
        self.selected = None
        if client is not None and client.protocol.transport is not None:
            client.protocol.transport.close()

    def _live(self) -> Any:
        if self._client is None:
            raise ConnectionLost("connection to the IMAP server closed")
        return self._client

    # --- bounded calls ----------------------------------------------------------------------

    async def call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``awaitable`` unless the connection drops or the time runs out first."""
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost}, timeout=timeout or self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            task.cancel()
            raise
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if lost in done:
            raise ConnectionLost("connection to the IMAP server lost")
        raise TimeoutError("the IMAP server did not answer in time")

    # --- commands ---------------------------------------------------------------------------

    async def select(self, folder: str) -> tuple[int, int | None]:
        """SELECT ``folder``; return its UIDVALIDITY and UIDNEXT (if the server tells)."""
        name = mailbox_arg(folder)
        response = await self.call(self._live().select(name))
        self.selected = None
        try:
            _check(response, f"SELECT {folder}")
        except ImapError as exc:
            raise FolderUnavailable(str(exc)) from None
        self.selected = folder
        self.permanent_flags = permanent_flags(response.lines)
        uidvalidity = response_code(response.lines, "UIDVALIDITY")
        uidnext = response_code(response.lines, "UIDNEXT")
        if uidvalidity is None:  # some servers leave it out of SELECT; STATUS always has it
            status = await self.call(self._live().status(name, "(UIDVALIDITY UIDNEXT)"))
            uidvalidity = status_value(status.lines, "UIDVALIDITY")
            uidnext = uidnext or status_value(status.lines, "UIDNEXT")
        if uidvalidity is None:
            raise ImapError(f"server gives no UIDVALIDITY for {folder}")
        return uidvalidity, uidnext

    def keyword_allowed(self, keyword: str) -> bool:
        """Whether the selected folder stores ``keyword`` (servers may silently drop others)."""
        flags = self.permanent_flags
        return flags is None or "\\*" in flags or keyword.lower() in flags

    async def uid_search(self, *criteria: str) -> list[int]:
        # No CHARSET: the criteria are ASCII and some servers reject CHARSET UTF-8.
        response = await self.call(self._live().uid_search(*criteria, charset=None))
        _check(response, "UID SEARCH")
        return search_uids(response.lines)

    async def uid_fetch(self, uid: int, items: str) -> dict[str, Token] | None:
        """The FETCH items for ``uid``, or None when the message is gone."""
        response = await self.call(self._live().uid("fetch", str(uid), f"({items})"))
        _check(response, "UID FETCH")
        groups = fetch_items(response.lines)
        # Servers may slip in unsolicited FETCHes (flag changes of other messages).
        for group in groups:
            if group.get("UID") == str(uid):
                return group
        no_uid = [g for g in groups if "UID" not in g]
        return no_uid[0] if len(no_uid) == 1 else None

    async def append(self, folder: str, message: bytes, flags: str | None = None) -> None:
        """APPEND ``message`` to ``folder`` (the relay's notices to its user)."""
        response = await self.call(self._live().append(message, mailbox=mailbox_arg(folder), flags=flags))
        _check(response, f"APPEND {folder}")

    async def create(self, folder: str) -> None:
        response = await self.call(self._live().create(mailbox_arg(folder)))
        _check(response, f"CREATE {folder}")

    async def uid_command(self, command: str, *args: str) -> None:
        response = await self.call(self._live().uid(command, *args))
        _check(response, f"UID {command.upper()}")

    # --- IDLE -------------------------------------------------------------------------------

    async def idle(self, seconds: float, interrupt: asyncio.Event) -> bool:
        """IDLE until new mail (True), ``seconds`` pass or ``interrupt`` is set (False).

        Always ends with DONE, so the connection is usable afterwards.
        """
        client = self._live()
        queue = client.protocol.idle_queue
        while not queue.empty():  # pushes left from an earlier IDLE were already acted upon
            queue.get_nowait()
        # The library's own renewal timer is set beyond ours: our loop decides when to stop.
        try:
            idle_task = await self.call(client.idle_start(timeout=seconds + 60))
        except aioimaplib.Abort as exc:
            if not self.alive:
                raise ConnectionLost("connection to the IMAP server lost") from exc
            raise IdleRefused(str(exc)) from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        waits = [asyncio.ensure_future(interrupt.wait()), asyncio.ensure_future(self._lost.wait())]
        try:
            while (remaining := deadline - loop.time()) > 0:
                push = asyncio.ensure_future(client.wait_server_push(timeout=remaining + 60))
                done, _ = await asyncio.wait({push, *waits}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if push not in done:
                    push.cancel()
                    if self._lost.is_set():
                        raise ConnectionLost("connection to the IMAP server lost while idling")
                    return False
                if push.exception() is None and _has_new_mail(push.result()):
                    return True
                # keep-alives ("* OK Still here") and flag changes: keep idling
            return False
        finally:
            for waiter in waits:
                waiter.cancel()
            if self.alive and client.has_pending_idle():
                client.idle_done()
                with contextlib.suppress(Exception):
                    await self.call(idle_task, timeout=min(self.timeout, CLOSE_TIMEOUT * 4))
            if not idle_task.done():
                idle_task.cancel()  # the connection is gone: nothing will ever answer it


def _has_new_mail(lines: Any) -> bool:
    return isinstance(lines, list) and any(isinstance(x, bytes) and x.endswith(b"EXISTS") for x in lines)


def _check(response: Any, what: str) -> None:
    if response.result != "OK":
        text = response.lines[-1] if response.lines else b""
        if isinstance(text, bytes | bytearray):
            text = bytes(text[:200]).decode("utf-8", "replace")
        raise ImapError(f"{what} failed: {response.result} {text}")


def _tls_context(settings: ImapSettings) -> ssl.SSLContext:
    # Certificate and host name are always verified; ca_file only adds a trusted authority.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def _run_token_command(command: str, timeout: float) -> str:
    """Run the configured command that prints an OAuth2 access token (never logged)."""
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(command),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AuthError("oauth2_command did not finish in time") from None
    token = out.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not token:
        raise AuthError(f"oauth2_command failed (exit status {proc.returncode}, {len(token)} bytes printed)")
    return token


def mailbox_arg(name: str) -> str:
    """A folder name as an IMAP argument: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return aioimaplib.quoted("".join(out))
