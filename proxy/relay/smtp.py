"""The SMTP edge: aiosmtpd hooks, the only place where outcomes become SMTP replies.

Thin on purpose: RCPT runs the recipient checks, DATA runs the pipeline and the
dispatcher.  As desktop clients need it, a refused recipient is noted at RCPT and left out
at the end of DATA (the sender gets a notice), so that one opted-out person never stops the
others; only when nobody is left does the client get the 550 with the reasons.  Whatever
goes wrong inside answers 451 (the client keeps the message), never a crash of the server.
"""

from __future__ import annotations

import asyncio
import ctypes
import hmac
import io
import logging
import platform
import socket
import sys
import time
import unicodedata
import warnings
import weakref
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from proxy.addresses import AddressError, domain_of, normalise
from proxy.config.secrets import SecretError, read_secret
from proxy.config.settings import Config, LocalUser, is_loopback
from proxy.outbound.dispatch import dispatch, record_delivered
from proxy.outbound.notices import NoticeBox, Refusal
from proxy.outbound.retry import RetryRunner
from proxy.outbound.spool import Spool
from proxy.outbound.upstream import Upstream
from proxy.relay import replies
from proxy.relay.bcc import without_bcc
from proxy.relay.headers import message_id, without_mbox_from_line
from proxy.relay.limits import ConnectionSlots
from proxy.relay.pipeline import MessageContext, RecipientPlan, Reject, run_pipeline
from proxy.relay.reuse import IntrospectOnce
from proxy.relay.steps import message_steps
from proxy.relay.steps.recipients import RecipientRefusal, find_refusal, recipient_checks
from proxy.rules.ruleset import RuleHolder
from proxy.store import Store, StoreError

log = logging.getLogger("gdpr_proxy.smtp")


class Authenticator:
    """Local users from the config; failures are rate-limited per client address."""

    def __init__(self, users: tuple[LocalUser, ...], failures_per_minute: int):
        self._users: dict[str, str] = {}
        for user in users:
            password = read_secret(user.password_env, user.password_file, user.password_credential)
            if not password or not password.strip():
                # An empty secret is no password (start-up refuses it; a service started otherwise
                # must not let anyone in with nothing).
                log.error("local user %s has an empty password: that user cannot log in", user.username)
                continue
            self._users[user.username] = password
        self._limit = failures_per_minute
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        peer = str(session.peer[0]) if session.peer else "?"
        recent = self._failures[peer]
        while recent and recent[0] < time.monotonic() - 60:
            recent.popleft()
        if len(recent) >= self._limit:
            return AuthResult(success=False, handled=False, message="454 4.7.0 Too many failed logins; wait a minute")
        if isinstance(data, LoginPassword):
            login = data.login.decode("utf-8", "replace")
            expected = self._users.get(login)
            given = data.password.decode("utf-8", "replace")
            if expected is not None and given and hmac.compare_digest(expected.encode(), given.encode()):
                return AuthResult(success=True, auth_data=login)
        recent.append(time.monotonic())
        log.warning("failed login from %s", peer)
        return AuthResult(success=False, handled=False)


NULL_SENDER = "<>"  # as aiosmtpd hands over MAIL FROM:<>


def address_problem(address: str, smtputf8: bool) -> str | None:
    """The 5xx for an address no server can take as written, else None (never a 451 later on)."""
    hidden = next((c for c in address if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if hidden is not None:
        return replies.invisible_character(address, hidden)
    if not address.isascii() and not smtputf8:
        return replies.UTF8_ADDRESS_NEEDS_SMTPUTF8
    return None


@dataclass
class Transaction:
    """What the relay decided in one SMTP transaction, kept beside aiosmtpd's Envelope (one per MAIL FROM)."""

    normalised: dict[str, str] = field(default_factory=dict)  # recipient as given -> normalised
    refusals: dict[str, RecipientRefusal] = field(default_factory=dict)  # noted at RCPT, applied after DATA
    refused_at_rcpt: list[str] = field(default_factory=list)  # checks that refused with a 550 at RCPT
    clean_lines: bool = False  # reading DATA saw no bare CR or LF and no NUL: the line-ending step need not look again


class RelayHandler:
    def __init__(
        self,
        config: Config,
        store: Store,
        rules: RuleHolder,
        upstream: Upstream,
        spool: Spool,
        notices: NoticeBox | None = None,
    ):
        self.config = config
        self.notices = notices
        self.store = store
        self.rules = rules
        self.upstream = upstream
        self.spool = spool
        self.address_policy = config.addresses.policy
        self.checks = recipient_checks()
        self.steps = message_steps()
        self.in_flight = 0
        self.pending_counts: Counter[str] = Counter()
        self.retry: RetryRunner | None = None  # set by the service; `queue flush` wakes it
        # aiosmtpd makes a new Envelope for each transaction; ours lives exactly as long as it does
        self._transactions: weakref.WeakKeyDictionary[Envelope, Transaction] = weakref.WeakKeyDictionary()

    def transaction(self, envelope: Envelope) -> Transaction:
        return self._transactions.setdefault(envelope, Transaction())

    async def recheck(self, recipients: list[str]) -> dict[str, Refusal]:
        """Before each retry: the recipients no longer allowed (opted out, erased, consent gone) since queued."""
        refused: dict[str, Refusal] = {}
        for address in recipients:
            try:
                normalised = normalise(address, self.address_policy)
            except AddressError:
                continue  # it was valid at RCPT time; the policy cannot have changed under a running relay
            refusal = await find_refusal(self.checks, self.store, self.rules.current, address, normalised)
            if refusal:
                refused[address] = refusal.notice
                self.pending_counts[f"refused_recipient.{refusal.check}"] += 1
        return refused

    async def record_spooled(self, message_id: str | None, recipients: list[str]) -> None:
        """A spooled copy went out: last contact, and first contact where its full notice was noted."""
        addresses = []
        for address in recipients:
            try:
                addresses.append(normalise(address, self.address_policy))
            except AddressError:
                continue
        try:
            await self.store.record_queued_delivery(message_id, addresses)  # first contact: if it carried the notice
        except StoreError as exc:
            log.error("<%s> delivered from the queue but not recorded in the store: %s", message_id, exc)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if not self.config.smtp.users:  # nothing to log in to: do not invite clients to try
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        # aiosmtpd reads pipelined commands correctly but does not announce it.
        responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if address != NULL_SENDER:  # <>: read receipts and delivery reports; it relays as such
            problem = address_problem(address, envelope.smtp_utf8)
            if problem:
                return problem
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        transaction = self.transaction(envelope)
        if len(envelope.rcpt_tos) >= self.config.smtp.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        problem = address_problem(address, envelope.smtp_utf8)
        if problem:
            return problem
        try:
            normalised = normalise(address, self.address_policy)
        except AddressError as exc:
            return replies.bad_address(address, str(exc))
        try:
            refusal = await find_refusal(self.checks, self.store, self.rules.current, address, normalised)
        except StoreError as exc:
            log.error("store unavailable at RCPT: %s", exc)
            return replies.STORE_UNAVAILABLE
        if refusal:
            self.pending_counts[f"refused_recipient.{refusal.check}"] += 1
            log.info("recipient at %s refused by %s", domain_of(normalised), refusal.check)
            if self.config.smtp.refused_recipients == "refuse_at_rcpt":
                transaction.refused_at_rcpt.append(refusal.check)
                return refusal.reply
            transaction.refusals[address] = refusal
            reply = replies.recipient_noted(address, refusal.check)
        else:
            reply = "250 2.1.5 Recipient OK"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(" ".join(rcpt_options))
        transaction.normalised[address] = normalised
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.in_flight += 1
        try:
            return await self._relay(envelope)
        finally:
            self.in_flight -= 1

    async def _relay(self, envelope: Envelope) -> str:
        # Bcc recipients are in the envelope; the header would show them to everyone.
        raw = without_bcc(without_mbox_from_line(envelope.original_content or b""))
        # The pipeline holds the message from here on; a 25 MB attachment need not be kept twice.
        envelope.original_content = envelope.content = None
        transaction = self.transaction(envelope)
        normalised, refusals = transaction.normalised, transaction.refusals
        if refusals and all(a in refusals for a in envelope.rcpt_tos):
            log.info("<%s> refused: all %d recipient(s) refused", message_id(raw), len(refusals))
            self.pending_counts["refused"] += 1
            return replies.all_refused([r.reply for r in refusals.values()])
        plans = [
            RecipientPlan(address=a, normalised=normalised[a], domain=domain_of(normalised[a]))
            for a in envelope.rcpt_tos
            if a not in refusals
        ]
        ctx = MessageContext(
            mail_from="" if envelope.mail_from == NULL_SENDER else envelope.mail_from or "",
            raw=raw,
            recipients=plans,
            rules=self.rules.current,  # the rules this message started with, whatever reloads meanwhile
            config=self.config,
            store=self.store,
            smtputf8=envelope.smtp_utf8,
            clean_lines=transaction.clean_lines,
        )
        ctx.message_id = message_id(raw)
        result = "error"
        try:
            await run_pipeline(self.steps, ctx)
            outcome = await dispatch(ctx, self.upstream, self.spool, self.config.queue.wait_for_upstream_seconds)
            if outcome.delivered:
                await record_delivered(ctx, outcome.delivered)
            reply = outcome.reply
            if refusals and reply.startswith("250"):
                await self._tell_sender(ctx, raw, outcome.delivered + outcome.queued, refusals)
            result = f"upstream={outcome.upstream_code} delivered={len(outcome.delivered)}"
            if outcome.queued or outcome.bounced:
                result += f" queued={len(outcome.queued)} bounced={len(outcome.bounced)}"
        except Reject as exc:
            reply, result = exc.reply, "refused"
        except StoreError as exc:
            log.error("%s store unavailable: %s", ctx.label, exc)
            reply = replies.STORE_UNAVAILABLE
        except Exception:
            log.exception("%s internal error; answered 451", ctx.label)
            reply = replies.INTERNAL_ERROR
        took = (time.monotonic() - ctx.started) * 1000
        log.info(
            "%s rcpts=%d refused=%d versions=%d steps=%s %s reply=%s %.1fms",
            ctx.label,
            len(plans),
            len(transaction.refused_at_rcpt) + len(refusals),
            len(ctx.versions),
            ",".join(ctx.applied) or "none",
            result,
            reply[:3],
            took,
        )
        self._count(reply, ctx)
        return reply

    async def _tell_sender(
        self, ctx: MessageContext, raw: bytes, sent: list[str], refusals: dict[str, RecipientRefusal]
    ) -> None:
        """The client was told 250: which recipients did not get it, and why, goes in a notice."""
        if self.notices is None:
            return
        try:
            await asyncio.to_thread(
                self.notices.not_sent, ctx.mail_from, raw, sent, [r.notice for r in refusals.values()]
            )
        except OSError as exc:  # the message went out; only the notice is missing
            log.error("%s notice about %d refused recipient(s) not queued: %s", ctx.label, len(refusals), exc)

    def _count(self, reply: str, ctx: MessageContext) -> None:
        """Daily counters for `status`, kept in memory and written in batches (no cost per message)."""
        name = "relayed" if reply.startswith("250") else "refused" if reply.startswith("5") else "deferred"
        self.pending_counts[name] += 1
        if name == "relayed" and ctx.applied:
            self.pending_counts["modified"] += 1
        if name == "relayed":
            self.pending_counts.update(ctx.counts)  # e.g. first contacts sent without a recorded source

    async def flush_counts(self) -> None:
        counts, self.pending_counts = self.pending_counts, Counter()
        try:
            for name, amount in counts.items():
                await self.store.count_event(name, amount)
        except StoreError:
            self.pending_counts.update(counts)  # kept for the next flush

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__)
        return "421 4.3.0 Internal error in the relay; closing connection"


IDLE_BACKSTOP_SECONDS = 10_000_000.0

# While DATA is read the stream may hold this much before the socket is paused: the body is
# taken in pieces of up to this size instead of one line at a time.
DATA_CHUNK = 256 * 1024
_END = b".\r\n"
TOO_MUCH_DATA = "552 5.3.4 Message too big for the relay (see smtp.max_message_bytes)"


@dataclass
class DataFacts:
    """What reading DATA found out on the way, so that no later step reads the whole again."""

    # No bare CR or LF (a CRLF split between two pieces counts as bare) and no NUL anywhere.
    clean_lines: bool = True


def _clean_lines(piece: bytes) -> bool:
    crlf = piece.count(b"\r\n")
    return piece.count(b"\n") == crlf and piece.count(b"\r") == crlf and b"\x00" not in piece


async def read_data(reader: asyncio.StreamReader, limit: int | None, facts: DataFacts | None = None) -> bytes | None:
    """The DATA payload up to the lone dot, transparency dots removed (RFC 5321 4.5.2); None
    when it was larger than ``limit`` (it is still read to the end, so the session goes on).

    aiosmtpd reads DATA line by line into a list and joins it at the end: for a 25 MB
    attachment that is 300,000 awaits and the message held twice over.  Here the stream is
    read in large pieces, ending at a ".\r\n" that starts a line; each piece is copied into one
    buffer as it arrives (which then becomes the message without another copy), and the dots
    are undone with one pass, only when a piece has a line starting with one.  Lines
    split only at CRLF, as in aiosmtpd, so a bare LF before a dot never ends the data.  Each
    piece is looked at as it arrives (line endings, dots), spread over the upload instead of
    passes over the whole message that would hold up every other client.
    """
    buffer = io.BytesIO()  # each piece copied in as it arrives; the buffer becomes the message
    size = 0
    tail = b"\r\n"  # the last two bytes read: DATA starts at the beginning of a line
    clean = True
    dotted = False
    while True:
        try:
            piece = await reader.readuntil(_END)
            done = (piece[-5:-3] if len(piece) >= 5 else (tail + piece[:-3])[-2:]) == b"\r\n"
        except asyncio.LimitOverrunError as exc:  # no dot yet within DATA_CHUNK: take what is there
            piece = await reader.readexactly(exc.consumed)
            done = False
        size += len(piece)
        tail = (tail + piece[-2:])[-2:]
        if limit is not None and size > limit + len(_END):
            if buffer.tell():
                buffer = io.BytesIO()  # still read to the end, but keep nothing
            if done:
                break
            continue
        content = piece[: -len(_END)] if done else piece
        clean = clean and _clean_lines(content)
        dotted = dotted or content.startswith(b".") or b"\n." in content
        buffer.write(content)
        del piece, content
        if done:
            break
    if facts is not None:
        facts.clean_lines = clean
    if limit is not None and size > limit + len(_END):
        return None
    data = buffer.getvalue()  # no copy: the bytes share the buffer
    del buffer
    if dotted:
        if data.startswith(b"."):
            data = data[1:]
        data = data.replace(b"\r\n.", b"\r\n")
    return data


class RelaySMTP(IntrospectOnce, SMTP):
    """aiosmtpd's server with connection slots per client address and a 421 for idle clients.

    Idle means no progress: no command that moves a transaction on (NOOP, RSET, HELP and VRFY
    alone do not, so a client cannot hold a slot by sending NOOP for ever) and, while the
    message is uploaded, no bytes at all (the watchdog is fed by every ``data_received``, so a
    slow but active upload is never cut).  A silent client is told why it is closed (RFC 5321
    4.5.3.2) before aiosmtpd's own, later timer would close it silently.  While the relay
    itself works on a message the client waits, and is not idle.
    """

    connections = ConnectionSlots(100)  # replaced per server by smtp_factory
    idle_seconds = 300.0  # replaced per server by smtp_factory
    _client: str | None = None  # the client's address while it holds a slot
    _active = 0.0  # when the client last made progress
    _before_command = 0.0
    _uploading = False
    _relaying = False
    _watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._client is not None:  # STARTTLS: the same connection gets a new TLS transport
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "127.0.0.1"  # no address: a local socket
        if not self.connections.admit(client):
            transport.write(b"421 4.7.0 Too many connections to the relay; try again shortly\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        self._client = client
        super().connection_made(transport)
        self._active = self.loop.time()
        self._watch(self.idle_seconds)

    def data_received(self, data: bytes) -> None:
        if self._uploading:
            self._active = self.loop.time()
        super().data_received(data)

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd calls this before every command it accepts: progress, unless the command is junk.
        self._before_command, self._active = self._active, self.loop.time()
        super()._reset_timeout(duration)

    def _junk(self) -> None:
        self._active = self._before_command

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str) -> None:
        self._junk()
        await super().smtp_NOOP(arg)

    @syntax("RSET")
    async def smtp_RSET(self, arg: str) -> None:
        self._junk()
        await super().smtp_RSET(arg)

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str) -> None:
        self._junk()
        await super().smtp_HELP(arg)

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str) -> None:
        self._junk()
        await super().smtp_VRFY(arg)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA command with the message read by ``read_data`` (in pieces, held once)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = self._reader
        # StreamReader's limit is aiosmtpd's command-line limit; raised while the body is read
        # (when the attribute is missing the reader keeps it and the pieces are just smaller).
        line_limit = getattr(reader, "_limit", None)
        if isinstance(line_limit, int):
            reader._limit = max(line_limit, DATA_CHUNK)  # type: ignore[attr-defined]
        self._uploading = True
        facts = DataFacts()
        try:
            content = await read_data(reader, self.data_size_limit, facts)
        except (asyncio.CancelledError, asyncio.IncompleteReadError):
            log.info("connection lost during DATA")
            self._writer.close()
            raise asyncio.CancelledError from None
        finally:
            self._uploading = False
            if isinstance(line_limit, int):
                reader._limit = line_limit  # type: ignore[attr-defined]
        if content is None:
            await self.push(TOO_MUCH_DATA)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content
        transaction = getattr(self.event_handler, "transaction", None)
        if callable(transaction):
            transaction(self.envelope).clean_lines = facts.clean_lines
        self._relaying = True
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            self._relaying = False
            self._active = self.loop.time()  # the client waited for us: its idle time starts now
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def connection_lost(self, error: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._client is not None:
            self.connections.leave(self._client)
            self._client = None
            super().connection_lost(error)

    def _watch(self, delay: float) -> None:
        self._watchdog = self.loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        silent = 0.0 if self._relaying else self.loop.time() - self._active
        if silent < self.idle_seconds:
            self._watch(self.idle_seconds - silent)
            return
        self._watchdog = None
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            log.info("client silent for %.0f s: closed", silent)
            transport.write(b"421 4.4.2 Connection idle too long; closing\r\n")
            transport.close()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
# Above asyncio's 256 KB socket reads and the DATA pieces, which come and go by the thousand
# (each its own mapping would cost two system calls); a whole message is far above it.
MMAP_THRESHOLD = 1024 * 1024


def return_large_buffers_to_the_system() -> bool:
    """Have glibc's malloc map every block of 1 MB or more on its own, whatever was freed before.

    glibc raises that threshold each time such a block is freed, up to 32 MB: after the first
    large message the next one's pieces and copies come from the heap, whose freed middle is
    never given back, and each large message leaves the relay bigger (150 -> 200 MB after a
    few 25 MB messages).  Fixed, each buffer is returned when freed.  False where the C
    library is not glibc (nothing changed).
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def smtp_factory(config: Config, handler: RelayHandler, tls_context: Any = None) -> Any:
    return_large_buffers_to_the_system()
    authenticator = (
        Authenticator(config.smtp.users, config.smtp.auth_failures_per_minute) if config.smtp.users else None
    )

    connections = ConnectionSlots(config.smtp.max_connections, config.smtp.max_connections_per_client)
    # aiosmtpd would look this up (reverse DNS, blocking the event loop) for every connection.
    hostname = config.listen.hostname or socket.getfqdn()

    loopback = is_loopback(config.listen.host)
    # Desktop clients use "no encryption" on loopback; beyond it, TLS is required for AUTH.
    require_tls = tls_context is not None and not loopback
    # aiosmtpd warns about plain-text AUTH on every connection; on loopback it is the intended
    # set-up.  Decided once here, not per connection (a warnings filter is compiled each time).
    quiet_auth_warning = loopback and config.smtp.require_auth and not require_tls

    def factory() -> RelaySMTP:
        if quiet_auth_warning:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
                server = _make_server()
        else:
            server = _make_server()
        server.connections = connections
        server.idle_seconds = config.smtp.timeout_seconds
        return server

    def _make_server() -> RelaySMTP:
        return RelaySMTP(
            handler,
            data_size_limit=config.smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="gdpr-mail-proxy",
            tls_context=tls_context,
            # aiosmtpd's timer restarts only between commands, so it would cut a long DATA upload:
            # RelaySMTP's watchdog (fed by every byte) does the idle check; this one never fires first
            timeout=IDLE_BACKSTOP_SECONDS,
            auth_required=config.smtp.require_auth,
            auth_require_tls=require_tls,
            authenticator=authenticator,
        )

    return factory


__all__ = ["Authenticator", "RelayHandler", "RelaySMTP", "SecretError", "smtp_factory"]
