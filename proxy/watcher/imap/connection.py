"""One authenticated IMAP connection, every call bounded in time.

aioimaplib has no reconnect of its own and some of its calls can wait forever (``idle_start``
when the server answers BYE, any command whose connection died), so every call here races
a timeout and the connection-lost callback: a dead connection surfaces at once as
``ConnectionLost`` and the watcher reconnects.

aioimaplib also keeps whatever the server sends: a literal announced as ``{999999999}`` is
collected in memory to the last byte.  The protocol below reads the stream before the library
does and bounds it: a literal larger than the watcher asked for is cut to its cap (the rest read
and thrown away, up to DRAIN_LIMIT), anything larger than that, a text line longer than
LINE_LIMIT or a response larger than its limit closes the connection as ``ResponseTooLarge``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import shlex
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from aioimaplib import aioimaplib

from proxy.config.imap import ImapSettings
from proxy.config.secrets import read_secret
from proxy.watcher.imap.fetch import MAX_PARTS
from proxy.watcher.imap.parse import Token, fetch_items, permanent_flags, response_code, search_uids, status_value

log = logging.getLogger(__name__)

T = TypeVar("T")

# Closing must be quick when the user stops the watcher, whatever timeout_seconds says.
CLOSE_TIMEOUT = 0.5

# Text lines stay far below this: a UID SEARCH of 100,000 messages is 700 KB, a BODYSTRUCTURE
# a few KB.
LINE_LIMIT = 4 * 1024 * 1024
_FETCH_UID = re.compile(rb"\* \d+ FETCH \(.*?\bUID (\d+)", re.IGNORECASE)
# A server that ignores the partial fetch sends whole parts: up to this size a part is read past
# its cap and thrown away, so the reply can still be classified from its start; anything larger
# is refused unread (reading it would only cost time).
DRAIN_LIMIT = 64 * 1024 * 1024


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


class ResponseTooLarge(ConnectionLost):
    """The server sent more than the watcher can hold; the connection was closed unread."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"the IMAP server sent {what} of {size} bytes, over the limit of {limit} bytes")
        self.what = what
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class ResponseLimits:
    """What one connection accepts from the server, derived from the part cap."""

    literal: int  # bytes kept of one literal: the cap of every part the watcher fetches
    response: int  # bytes kept of one command's whole response
    line: int = LINE_LIMIT
    drain: int = DRAIN_LIMIT

    @classmethod
    def for_part_cap(cls, cap: int) -> ResponseLimits:
        # A fetch asks for at most 2 * MAX_PARTS + 1 capped pieces (header, then each part's MIME
        # header and body); the rest is room for the text lines around them.
        return cls(literal=cap, response=(2 * MAX_PARTS + 8) * cap + LINE_LIMIT, drain=max(DRAIN_LIMIT, cap))


_TAGGED = aioimaplib.tagged_status_response_re


class _BoundedProtocol(aioimaplib.IMAP4ClientProtocol):
    """aioimaplib's protocol behind a reader that bounds lines, literals and responses.

    The reader splits the stream exactly as the library does (lines end at CRLF, a line ending
    in ``{N}`` is followed by N bytes of literal) and hands on only what fits: an oversized
    literal is announced to the library with its capped size.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Any, limits: ResponseLimits) -> None:
        super().__init__(loop, conn_lost_cb)
        self.limits = limits
        # (UID of the FETCH answer it was in, if it said; announced size) of each literal cut to the cap
        self.truncated: list[tuple[int | None, int]] = []
        self._fetch_uid: int | None = None
        self.refused: ResponseTooLarge | None = None
        self._line = bytearray()
        self._literal_left = 0  # bytes of the current literal still handed on
        self._drop_left = 0  # bytes of the current literal read and thrown away
        self._response_bytes = 0

    def data_received(self, d: bytes) -> None:
        if self.refused is not None:
            return
        out = bytearray()
        pos, end = 0, len(d)
        while pos < end:
            if self._literal_left:
                take = min(self._literal_left, end - pos)
                out += d[pos : pos + take]
                self._literal_left -= take
                pos += take
                if not self._counted(take):
                    return
                continue
            if self._drop_left:
                take = min(self._drop_left, end - pos)
                self._drop_left -= take
                pos += take
                continue
            if self._line.endswith(b"\r") and d[pos : pos + 1] == b"\n":
                stop = pos + 1
            else:
                found = d.find(b"\r\n", pos)
                stop = found + 2 if found >= 0 else -1
            if stop < 0:
                self._line += d[pos:]
                if len(self._line) > self.limits.line:
                    self._refuse(ResponseTooLarge("a line", len(self._line), self.limits.line))
                    return
                break
            self._line += d[pos:stop]
            pos = stop
            line = bytes(self._line)
            self._line.clear()
            if len(line) > self.limits.line:
                self._refuse(ResponseTooLarge("a line", len(line), self.limits.line))
                return
            answer = _FETCH_UID.match(line)
            if answer:
                self._fetch_uid = int(answer.group(1))
            announced = aioimaplib.literal_data_re.match(line[:-2])
            if announced:
                size = int(announced.group("size"))
                if size > self.limits.drain:
                    self._refuse(ResponseTooLarge("a literal", size, self.limits.drain))
                    return
                if size > self.limits.literal:
                    self.truncated.append((self._fetch_uid, size))
                    cut = announced.start("size")
                    line = line[:cut] + str(self.limits.literal).encode() + line[announced.end("size") :]
                    self._drop_left = size - self.limits.literal
                    size = self.limits.literal
                self._literal_left = size
            out += line
            if not self._counted(len(line)):
                return
            if _TAGGED.match(line):
                self._response_bytes = 0  # a command is complete: its response is the library's now
        if out:
            super().data_received(bytes(out))

    def _counted(self, size: int) -> bool:
        self._response_bytes += size
        if self._response_bytes > self.limits.response:
            self._refuse(ResponseTooLarge("a response", self._response_bytes, self.limits.response))
            return False
        return True

    def _refuse(self, exc: ResponseTooLarge) -> None:
        self.refused = exc
        self._line = bytearray()
        if self.transport is not None:
            self.transport.abort()


class _BoundedIMAP4(aioimaplib.IMAP4):
    def __init__(self, limits: ResponseLimits, **kwargs: Any) -> None:
        self._limits = limits
        super().__init__(**kwargs)

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = protocol = _BoundedProtocol(local_loop, conn_lost_cb, self._limits)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: protocol, host, port, ssl=ssl_context)
        )


class ImapConnection:
    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout_seconds
        self.selected: str | None = None
        self.permanent_flags: frozenset[str] | None = None  # of the selected folder, if told
        self.limits = ResponseLimits.for_part_cap(settings.max_part_bytes)
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
        self._client = _BoundedIMAP4(
            self.limits,
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
        protocol = self._client.protocol
        # After a timeout a command may still be pending: LOGOUT would only queue behind it.
        busy = protocol.pending_sync_command is not None or bool(protocol.pending_async_commands)
        with contextlib.suppress(Exception):
            if self.alive and not busy:
                await self.call(self._client.logout(), timeout=CLOSE_TIMEOUT)
        self.abort()

    def abort(self) -> None:
        client, self._client = self._client, None
        self.selected = None
        if client is not None:
            if client.protocol.transport is not None:
                client.protocol.transport.close()
            _release(client.protocol)

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
            try:
                return task.result()
            except aioimaplib.CommandTimeout:
                # The library's exception holds its command, buffers and all: do not pass it on.
                raise TimeoutError("the IMAP server did not answer in time") from None
        task.cancel()
        if lost in done:
            refused = self._refused()
            if refused is not None:
                raise refused
            raise ConnectionLost("connection to the IMAP server lost")
        raise TimeoutError("the IMAP server did not answer in time")

    def _refused(self) -> ResponseTooLarge | None:
        protocol = getattr(self._client, "protocol", None)
        return protocol.refused if isinstance(protocol, _BoundedProtocol) else None

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
        """The FETCH items for ``uid``, or None when the message is gone.

        Raises ResponseTooLarge (the connection is then closed) when the server sent more than
        the limits; parts it sent beyond their cap are cut to it and logged.
        """
        client = self._live()
        client.protocol.truncated.clear()
        try:
            response = await self.call(client.uid("fetch", str(uid), f"({items})"))
        except ResponseTooLarge as exc:
            log.warning("UID %d: %s; connection closed, the message is not read", uid, exc)
            raise
        self._warn_truncated(uid)
        _check(response, "UID FETCH")
        groups = fetch_items(response.lines)
        # Servers may slip in unsolicited FETCHes (flag changes of other messages).
        for group in groups:
            if group.get("UID") == str(uid):
                return group
        no_uid = [g for g in groups if "UID" not in g]
        return no_uid[0] if len(no_uid) == 1 else None

    async def uid_fetch_many(self, uids: list[int], items: str) -> dict[int, dict[str, Token]]:
        """The FETCH items of several messages in one command, by UID (gone ones are absent).

        One round trip instead of one per message; the same limits apply to the whole answer.
        """
        client = self._live()
        client.protocol.truncated.clear()
        response = await self.call(client.uid("fetch", uid_set(uids), f"({items})"))
        self._warn_truncated(None)
        _check(response, "UID FETCH")
        found: dict[int, dict[str, Token]] = {}
        wanted = set(uids)
        for group in fetch_items(response.lines):
            uid = group.get("UID")
            if isinstance(uid, str) and uid.isdigit() and int(uid) in wanted:
                found[int(uid)] = group
        return found

    def _warn_truncated(self, uid: int | None) -> None:
        protocol = self._live().protocol
        for answered, size in protocol.truncated:
            log.warning(
                "UID %s: the server sent a part of %d bytes although at most %d were asked for; "
                "only the first %d bytes are read",
                uid if uid is not None else answered if answered is not None else "?",
                size, self.limits.literal, self.limits.literal,
            )  # fmt: skip
        protocol.truncated.clear()

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


def _release(protocol: Any) -> None:
    """Let go of everything a closed connection still holds.

    aioimaplib never finishes the commands of a dead connection: each keeps its buffers and a
    timer that, when it fires, ties the command and its timeout exception in a reference cycle
    only the garbage collector frees.  Cancel the timers, drop the buffers and wake the waiters.
    """
    commands = [protocol.pending_sync_command, protocol.current_command, *protocol.pending_async_commands.values()]
    for command in commands:
        if command is None:
            continue
        command._timer.cancel()
        command._resp_lines = []
        command._resp_literal_data = bytearray()
        if not command._event.is_set():
            command._exception = aioimaplib.Abort("connection closed")
            command._event.set()
    protocol.pending_sync_command = None
    protocol.current_command = None
    protocol.pending_async_commands.clear()
    protocol.incomplete_line = b""
    protocol.conn_lost_cb = None
    while not protocol.idle_queue.empty():
        protocol.idle_queue.get_nowait()


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


def uid_set(uids: list[int]) -> str:
    """A UID set for a command: ascending runs as ranges ("3:7,9,12:13")."""
    runs: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        runs.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(runs)


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
