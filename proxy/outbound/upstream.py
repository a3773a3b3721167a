"""Handing a message on: to the user's real SMTP server, or into the capture Maildir.

Both answer with a DeliveryResult that says, per recipient, accepted or refused (with the
code and text), so that the dispatcher decides what the mail client is told.  Connection
problems become 451 refusals for every recipient: the mail stays with the client.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiosmtplib

from proxy.config.secrets import SecretError, read_secret
from proxy.config.settings import UpstreamConfig

log = logging.getLogger("gdpr_proxy.delivery")

NO_SMTPUTF8 = "5.6.7 it does not offer SMTPUTF8, needed for an address with non-ASCII characters"
UNWRITABLE_ADDRESS = "5.1.3 the address has characters that cannot be written in SMTP"


@dataclass
class DeliveryResult:
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    unreachable: str | None = None  # set when no transaction could be attempted

    @classmethod
    def all_refused(cls, recipients: list[str], code: int, text: str, unreachable: str | None = None) -> DeliveryResult:
        return cls([], {r: (code, text) for r in recipients}, unreachable)


class Upstream(Protocol):
    description: str
    captures: bool

    async def deliver(
        self, mail_from: str, recipients: list[str], raw: bytes, smtputf8: bool, connect_timeout: float | None = None
    ) -> DeliveryResult: ...

    async def close(self) -> None: ...


class CaptureMaildir:
    """Capture mode: write what would have been sent into a Maildir instead of sending it.

    The file holds exactly the bytes that would have left, preceded by ``Return-Path`` and one
    ``Delivered-To`` per envelope recipient, as a local delivery agent writes them.
    """

    captures = True

    def __init__(self, directory: Path):
        self.directory = directory
        self.description = f"capture Maildir {directory}"
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self._counter = 0

    def _write(self, mail_from: str, recipients: list[str], raw: bytes) -> Path:
        self._counter += 1
        name = f"{time.time_ns()}.P{os.getpid()}Q{self._counter}.{socket.gethostname()}"
        envelope = f"Return-Path: <{mail_from}>\r\n" + "".join(f"Delivered-To: {r}\r\n" for r in recipients)
        tmp = self.directory / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, envelope.encode("utf-8", "surrogateescape"))
            view = memoryview(raw)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.directory / "new" / name
        os.rename(tmp, final)
        return final

    async def deliver(
        self, mail_from: str, recipients: list[str], raw: bytes, smtputf8: bool, connect_timeout: float | None = None
    ) -> DeliveryResult:
        try:
            await asyncio.to_thread(self._write, mail_from, recipients, raw)
        except OSError as exc:
            return DeliveryResult.all_refused(recipients, 451, f"capture folder not writable: {exc.strerror}")
        return DeliveryResult(accepted=list(recipients))

    async def close(self) -> None:
        return None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)  # verification and hostname check on
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _StaleConnection(Exception):
    """A pooled connection that the server had closed: safe to retry on a new one."""


class SmtpUpstream:
    """The user's real server, through aiosmtplib, with a small pool of reused connections."""

    captures = False

    def __init__(self, config: UpstreamConfig):
        self.config = config
        self.description = f"{config.host}:{config.effective_port} ({config.security})"
        self._idle: list[aiosmtplib.SMTP] = []
        # pool_size is how many idle connections are kept, not how many transactions run at
        # once: while every pooled connection is busy another one is opened, up to
        # max_connections transactions at a time; beyond that a message waits for a turn.
        self._busy = 0
        self._turns: collections.deque[asyncio.Future[None]] = collections.deque()
        self._password: str | None = None
        self._context = tls_context(config.ca_file) if config.security != "none" else None

    def _client(self) -> aiosmtplib.SMTP:
        cfg = self.config
        if cfg.username and self._password is None:
            password = read_secret(cfg.password_env, cfg.password_file, cfg.password_credential)
            if not password or not password.strip():
                raise SecretError("the upstream password is empty")  # an empty secret is no password
            self._password = password
        return aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.effective_port,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            tls_context=self._context,
            timeout=cfg.timeout_seconds,
            username=cfg.username,
            password=self._password,
        )

    async def _connection(self, connect_timeout: float | None = None) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp, True
        smtp = self._client()
        if connect_timeout is None:
            await smtp.connect()
        else:
            try:
                # Connecting (TCP, TLS, AUTH) is safe to give up on: nothing was handed over yet.
                await asyncio.wait_for(smtp.connect(), connect_timeout)
            except TimeoutError:
                smtp.close()
                raise TimeoutError(f"no answer within {connect_timeout:g} s") from None
        if not smtp.esmtp_extensions:
            # Without STARTTLS aiosmtplib sends no EHLO on connect, and SMTPUTF8, 8BITMIME and
            # SIZE would go unannounced on a fresh connection.
            await smtp.ehlo()
        return smtp, False

    def _release(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected and len(self._idle) < self.config.pool_size:
            self._idle.append(smtp)
        else:
            smtp.close()

    async def deliver(
        self, mail_from: str, recipients: list[str], raw: bytes, smtputf8: bool, connect_timeout: float | None = None
    ) -> DeliveryResult:
        try:
            await self._turn(connect_timeout)
        except TimeoutError:
            message = f"all {self.config.max_connections} connections busy for {connect_timeout:g} s"
            return self._unreachable(recipients, TimeoutError(message))
        try:
            return await self._deliver(mail_from, recipients, raw, smtputf8, connect_timeout)
        finally:
            self._release_turn()

    async def _turn(self, timeout: float | None) -> None:
        """Wait until fewer than max_connections transactions run (connecting counts as waiting)."""
        if self._busy < self.config.max_connections and not self._turns:
            self._busy += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release_turn()  # handed the turn just as it gave up: on to the next one
            raise

    def _release_turn(self) -> None:
        while self._turns:
            waiter = self._turns.popleft()
            if not waiter.done():  # (one that gave up waiting is skipped)
                waiter.set_result(None)  # the turn passes on: as many transactions as before
                return
        self._busy -= 1

    async def _deliver(
        self, mail_from: str, recipients: list[str], raw: bytes, smtputf8: bool, connect_timeout: float | None
    ) -> DeliveryResult:
        for _attempt in range(2):
            try:
                smtp, reused = await self._connection(connect_timeout)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                return self._unreachable(recipients, exc)
            except SecretError as exc:  # checked at start-up; a password file may vanish later
                log.error("upstream %s: %s", self.description, exc)
                return DeliveryResult.all_refused(recipients, 451, str(exc), unreachable=str(exc))
            try:
                result = await self._transaction(smtp, reused, mail_from, recipients, raw, smtputf8)
            except _StaleConnection:
                smtp.close()
                continue
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                smtp.close()
                return self._unreachable(recipients, exc)
            self._release(smtp)
            return result
        return DeliveryResult.all_refused(recipients, 451, "server closed the connection", "disconnected")

    def _unreachable(self, recipients: list[str], exc: BaseException) -> DeliveryResult:
        code = getattr(exc, "code", None)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if isinstance(code, int) and 400 <= code < 600:
            return DeliveryResult.all_refused(recipients, code, message)
        log.warning("upstream %s: %s", self.description, message)
        return DeliveryResult.all_refused(recipients, 451, message, unreachable=message)

    async def _transaction(
        self,
        smtp: aiosmtplib.SMTP,
        reused: bool,
        mail_from: str,
        recipients: list[str],
        raw: bytes,
        utf8: bool,
    ) -> DeliveryResult:
        result = DeliveryResult()
        offers_utf8 = smtp.supports_extension("smtputf8")
        if not offers_utf8:
            # RFC 6531: without SMTPUTF8 such an address cannot even be written; a permanent answer,
            # never a 451 that the client would retry for ever.
            if not mail_from.isascii():
                return DeliveryResult.all_refused(recipients, 553, NO_SMTPUTF8 + " for the sender's address")
            result.refused = {r: (553, NO_SMTPUTF8) for r in recipients if not r.isascii()}
            recipients = [r for r in recipients if r.isascii()]
            if not recipients:
                return result
        use_utf8 = offers_utf8 and (utf8 or not mail_from.isascii() or not all(r.isascii() for r in recipients))
        encoding = "utf-8" if use_utf8 else "ascii"
        options = ["SMTPUTF8"] if use_utf8 else []
        if smtp.supports_extension("8bitmime") and not raw.isascii():
            options.append("BODY=8BITMIME")
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(raw)}")
        if smtp.supports_extension("pipelining") and _Replies.usable(smtp):
            return await self._pipelined(smtp, reused, mail_from, recipients, raw, encoding, options, result)
        try:
            # A pooled connection is clean after its last 250 (failures are reset at once), so
            # no RSET: a server that closed it meanwhile shows up here as a disconnect.
            response = await smtp.mail(mail_from, options=options, encoding=encoding)
        except aiosmtplib.SMTPServerDisconnected as exc:
            if reused:
                raise _StaleConnection() from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            await _reset(smtp)
            return DeliveryResult.all_refused(recipients, exc.code, exc.message)
        except ValueError:  # UnicodeEncodeError too: refused before anything was written
            return DeliveryResult.all_refused(recipients, 553, UNWRITABLE_ADDRESS + " (the sender's)")
        del response
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt, encoding=encoding)
                result.accepted.append(rcpt)
            except aiosmtplib.SMTPResponseException as exc:
                result.refused[rcpt] = (exc.code, exc.message)
            except ValueError:
                result.refused[rcpt] = (553, UNWRITABLE_ADDRESS)
        if not result.accepted:
            await _reset(smtp)
            return result
        try:
            await send_data(smtp, raw, self.config.timeout_seconds)
        except aiosmtplib.SMTPResponseException as exc:
            await _reset(smtp)
            refused = {r: (exc.code, exc.message) for r in result.accepted}
            refused.update(result.refused)
            return DeliveryResult([], refused)
        return result

    async def _pipelined(
        self,
        smtp: aiosmtplib.SMTP,
        reused: bool,
        mail_from: str,
        recipients: list[str],
        raw: bytes,
        encoding: str,
        options: list[str],
        result: DeliveryResult,
    ) -> DeliveryResult:
        """The transaction with MAIL, every RCPT and DATA written at once (RFC 2920): one
        round trip instead of one per command, the replies read in order."""
        try:
            commands = [
                _command(b" ".join([b"MAIL FROM:" + _path(mail_from).encode(encoding), *(o.encode() for o in options)]))
            ]
        except ValueError:  # UnicodeEncodeError too: refused before anything was written
            return DeliveryResult.all_refused(recipients, 553, UNWRITABLE_ADDRESS + " (the sender's)")
        sent: list[str] = []
        for rcpt in recipients:
            try:
                commands.append(_command(b"RCPT TO:" + _path(rcpt).encode(encoding)))
                sent.append(rcpt)
            except ValueError:
                result.refused[rcpt] = (553, UNWRITABLE_ADDRESS)
        if not sent:
            return result  # nothing was written: the connection is as clean as before
        commands.append(b"DATA")
        timeout = self.config.timeout_seconds
        protocol = smtp.protocol
        lock = protocol._command_lock  # type: ignore[union-attr]  # usable() checked it
        assert protocol is not None and lock is not None
        got: list[aiosmtplib.SMTPResponse] = []

        async def reply() -> aiosmtplib.SMTPResponse:
            try:
                answer = await replies.next(timeout)
            except aiosmtplib.SMTPServerDisconnected:
                closing = next((g for g in got if g.code == 421), None)
                if closing is None:
                    raise
                answer = closing  # the server said it was closing: that is the answer to the rest
            got.append(answer)
            return answer

        async with lock, _Replies(protocol) as replies:
            try:
                protocol.write(b"\r\n".join(commands) + b"\r\n")
                mail = await reply()
            except aiosmtplib.SMTPServerDisconnected as exc:
                if reused:
                    raise _StaleConnection() from exc
                raise
            answers = [await reply() for _ in sent]
            data = await reply()
            if mail.code != 250:
                refused = {r: (mail.code, mail.message) for r in sent}
            else:
                refused = {
                    r: (a.code, a.message) for r, a in zip(sent, answers, strict=True) if a.code not in (250, 251)
                }
            result.accepted = [r for r in sent if r not in refused]
            result.refused.update(refused)
            if data.code == 354 and not result.accepted:
                # A server that took DATA with nobody to deliver to: an empty message ends it.
                protocol.write(b".\r\n")
                await reply()
            elif data.code == 354:
                await _write_payload(protocol, raw)
                data = await reply()
            if result.accepted and data.code != 250:  # DATA, or the message, refused
                result.refused.update({r: (data.code, data.message) for r in result.accepted})
                result.accepted = []
        if any(g.code == 421 for g in got):
            smtp.close()  # the server is closing the connection
        elif not result.accepted:
            await _reset(smtp)
        return result

    async def close(self) -> None:
        while self._idle:
            smtp = self._idle.pop()
            try:
                await asyncio.wait_for(smtp.quit(), 2)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                smtp.close()


DATA_CHUNK = 256 * 1024
_ANY_EOL = re.compile(rb"\r\n|\r|\n")


def data_chunks(raw: bytes, size: int = DATA_CHUNK) -> Iterator[bytes | memoryview]:
    """``raw`` as the DATA payload, in pieces of about ``size``: CRLF line endings, leading dots
    doubled (RFC 5321 4.5.2), the final CRLF and the lone dot.

    aiosmtplib builds the whole payload with two regular-expression passes, two more copies
    of a 25 MB message; here each piece ends at a line end, so it is stuffed on its own, and a
    piece with nothing to change is handed on as a slice of the message, not a copy.
    """
    view = memoryview(raw)
    pos, end = 0, len(raw)
    while pos < end:
        stop = raw.find(b"\n", min(pos + size, end) - 1)
        stop = end if stop < 0 else stop + 1
        crlf = raw.count(b"\r\n", pos, stop)
        if raw.count(b"\n", pos, stop) != crlf or raw.count(b"\r", pos, stop) != crlf:
            fixed = _ANY_EOL.sub(b"\r\n", raw[pos:stop])
            if fixed.startswith(b".") or b"\n." in fixed:
                fixed = (b"." if fixed.startswith(b".") else b"") + fixed.replace(b"\n.", b"\n..")
            yield fixed
        elif raw.find(b".", pos, stop) >= 0 and (raw.startswith(b".", pos) or raw.find(b"\n.", pos, stop) >= 0):
            # (a dot at all first: one byte is found at memchr speed, and base64 has none)
            piece = raw[pos:stop]
            yield (b"." if piece.startswith(b".") else b"") + piece.replace(b"\n.", b"\n..")
        else:
            yield view[pos:stop]
        pos = stop
    yield b".\r\n" if raw.endswith((b"\n", b"\r")) else b"\r\n.\r\n"


# A copy this small is written in one piece with its final dot: one system call, no yield.
SMALL_PAYLOAD = 64 * 1024


async def _write_payload(protocol: aiosmtplib.protocol.SMTPProtocol, raw: bytes) -> None:
    drain = protocol._drain_helper
    if len(raw) <= SMALL_PAYLOAD:
        protocol.write(b"".join(data_chunks(raw)))
        await drain()
        return
    for piece in data_chunks(raw):
        protocol.write(piece)  # type: ignore[arg-type]  # the transport takes any bytes-like object
        await drain()
        # drain() returns at once while the socket takes everything (loopback, a fast
        # server): without this a 25 MB message would be written in one go while every
        # other client waits.
        await asyncio.sleep(0)


async def send_data(smtp: aiosmtplib.SMTP, raw: bytes, timeout: float | None) -> None:
    """DATA with the message written piece by piece (``data_chunks``), waiting whenever the
    socket's buffer is full, so a large message is never copied whole for sending.

    aiosmtplib has no way to send a payload in pieces, so this does what its ``data()`` does
    on its protocol object; should that change shape, ``data()`` itself is used.
    """
    protocol = smtp.protocol
    lock = getattr(protocol, "_command_lock", None)
    drain = getattr(protocol, "_drain_helper", None)
    if protocol is None or lock is None or drain is None or not hasattr(protocol, "_response_pending"):
        await smtp.data(raw)
        return
    try:
        async with lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=timeout)
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol._response_pending = True
            await _write_payload(protocol, raw)
            response = await protocol.read_response(timeout=timeout)
            if response.code != 250:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, ConnectionError):
        smtp.close()
        raise


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.rset()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        smtp.close()


_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)


def _path(address: str) -> str:
    """``<address>`` as aiosmtplib writes it in MAIL and RCPT (ValueError where it cannot be
    written safely); a plain local@domain without its address parser."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return aiosmtplib.email.quote_address(address)


def _command(line: bytes) -> bytes:
    """As aiosmtplib refuses it: no control character may end a command early (CR, LF, NUL...)."""
    if aiosmtplib.protocol.COMMAND_INJECTION_REGEX.search(line):
        raise ValueError("Command arg contains a prohibited control character")
    return line


class _Replies:
    """The replies to pipelined commands, read in order.

    aiosmtplib's protocol keeps one reply for one command and drops what arrives while that
    reply waits to be picked up, so while pipelined commands are answered this takes the
    connection's incoming bytes itself (and gives them back to the protocol after).
    """

    def __init__(self, protocol: aiosmtplib.protocol.SMTPProtocol):
        self.protocol = protocol
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None

    @staticmethod
    def usable(smtp: aiosmtplib.SMTP) -> bool:
        protocol = smtp.protocol
        return (
            protocol is not None
            and getattr(protocol, "_command_lock", None) is not None
            and hasattr(protocol, "_drain_helper")
            and hasattr(protocol, "_buffer")
            and isinstance(getattr(protocol, "_read_response_from_buffer", None), type(smtp.close))
        )

    async def __aenter__(self) -> _Replies:
        self.buffer += self.protocol._buffer  # nothing is expected there between transactions
        del self.protocol._buffer[:]
        self.protocol.data_received = self._received  # type: ignore[method-assign]
        self.protocol.connection_lost = self._connection_lost  # type: ignore[method-assign]
        return self

    async def __aexit__(self, *exc: object) -> None:
        del self.protocol.data_received, self.protocol.connection_lost  # the class's own again

    def _received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def _connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("closed")
        type(self.protocol).connection_lost(self.protocol, exc)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self, timeout: float | None) -> aiosmtplib.SMTPResponse:
        while True:
            if len(self.buffer) > aiosmtplib.protocol.MAX_RESPONSE_LENGTH:
                raise aiosmtplib.SMTPResponseException(500, "Response too long")
            response = self._parse()
            if response is not None:
                return response
            if self.lost is None and self.protocol.transport is None:
                self.lost = ConnectionResetError("closed")
            if self.lost is not None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost") from self.lost
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout)
            except TimeoutError as exc:
                raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from exc
            finally:
                self.waiter = None

    def _parse(self) -> aiosmtplib.SMTPResponse | None:
        """One complete reply from the front of the buffer (aiosmtplib's own reader), or None."""
        protocol = self.protocol
        saved, protocol._buffer = protocol._buffer, self.buffer
        try:
            return protocol._read_response_from_buffer()
        finally:
            protocol._buffer = saved
