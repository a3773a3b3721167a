"""A scripted IMAP server over a real socket that misbehaves on purpose, for the watcher's fault tests.

It speaks just enough IMAP4rev1 for the watcher (LOGIN, CAPABILITY, SELECT, UID SEARCH,
UID FETCH of BODYSTRUCTURE and BODY.PEEK sections, UID STORE, IDLE, NOOP, LOGOUT) and lets a
test make one message, or the whole server, hostile: a literal far larger than asked for
(streamed, never held in memory), a server that ignores partial fetches, a malformed or
5,000-deep BODYSTRUCTURE, a text line that never ends, a BYE in the middle of IDLE.
Every message is one text/plain part.  Runs in a thread of the test process, or as its own
process with ``python -m tests.hostile_imap`` (see ``main``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

CRLF = b"\r\n"
_CHUNK = b"x" * 1_048_575 + b"\n"  # what a huge literal is made of, sent again and again
_SECTION = re.compile(r"BODY\.PEEK\[([A-Z0-9.]*)\](?:<(\d+)\.(\d+)>)?", re.IGNORECASE)


@dataclass
class Message:
    raw: bytes
    # Hostile behaviours of this message:
    literal_size: int | None = None  # announce (and stream) a literal of this size for its body
    bodystructure: bytes | None = None  # sent instead of the real BODYSTRUCTURE
    ignore_partial: bool = False  # send whole sections whatever <0.N> asks for
    broken_fetch: bool = False  # every FETCH answer for it is malformed
    stall: bool = False  # never answer a FETCH of its body
    stall_after: int | None = None  # send this much of the body literal, then nothing more
    extra_literals: tuple[int, int] | None = None  # (count, size): literals added to the body's answer

    @property
    def header(self) -> memoryview:
        cut = self.raw.find(b"\r\n\r\n")
        return memoryview(self.raw) if cut < 0 else memoryview(self.raw)[: cut + 4]

    @property
    def text(self) -> memoryview:
        # Views, not copies: the server runs in the test process, whose memory some tests measure.
        cut = self.raw.find(b"\r\n\r\n")
        return memoryview(b"") if cut < 0 else memoryview(self.raw)[cut + 4 :]


def reply(n: int, text: str = "Please remove me from your list.") -> bytes:
    """A plain reply from a prospect, with a Message-ID the tests can look for."""
    return (
        f"From: Prospect {n} <prospect{n}@kunde.example>\r\n"
        f"To: anna@nordlicht.example\r\n"
        f"Subject: Re: our offer {n}\r\n"
        f"Message-ID: <reply-{n}@kunde.example>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def deep_bodystructure(depth: int) -> bytes:
    """A multipart nested ``depth`` levels deep (a hostile server's; no real message is)."""
    leaf = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1)'
    return b"(" * depth + leaf + b' "MIXED")' * depth


@dataclass
class Behaviour:
    """Hostile behaviours of the whole server."""

    bye_in_idle: float | None = None  # seconds into IDLE after which BYE is sent and the socket closed
    endless_line_after_select: int | None = None  # bytes of one line without CRLF sent after SELECT
    idle: bool = True


@dataclass
class HostileImap:
    messages: dict[int, Message] = field(default_factory=dict)
    behaviour: Behaviour = field(default_factory=Behaviour)
    uidvalidity: int = 7
    user: str = "anna"
    password: str = "hostile-test-password"
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    connect_times: list[float] = field(default_factory=list)
    fetches: list[tuple[int, str]] = field(default_factory=list)  # (UID, items) of every UID FETCH
    fetch_commands: list[str] = field(default_factory=list)  # the UID set and items of each UID FETCH
    stored: list[tuple[int, str]] = field(default_factory=list)
    bytes_sent: int = 0
    _server: socketserver.ThreadingTCPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> HostileImap:
        owner = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with owner._lock:
                    owner.connections += 1
                    owner.connect_times.append(time.monotonic())
                with contextlib.suppress(OSError):
                    _Session(owner, self.request).run()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HostileImap:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, message: Message) -> int:
        """Deliver a message; a client in IDLE is told at once."""
        with self._lock:
            uid = max(self.messages, default=0) + 1
            self.messages[uid] = message
        return uid

    def fetched_uids(self) -> list[int]:
        with self._lock:
            return [uid for uid, _ in self.fetches]


class _Session:
    def __init__(self, server: HostileImap, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.buffer = b""

    def readline(self, timeout: float | None = None) -> bytes | None:
        """One line from the client; b"" once it hung up, None when ``timeout`` passed first."""
        while b"\n" not in self.buffer:
            self.sock.settimeout(timeout)
            try:
                got = self.sock.recv(65536)
            except TimeoutError:
                return None
            finally:
                self.sock.settimeout(None)
            if not got:
                return b""
            self.buffer += got
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            got = self.sock.recv(65536)
            if not got:
                raise ConnectionError("client hung up in a literal")
            self.buffer += got
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, data: bytes | memoryview) -> None:
        self.sock.sendall(data)
        with self.server._lock:
            self.server.bytes_sent += len(data)

    def line(self, text: str | bytes) -> None:
        self.send((text.encode() if isinstance(text, str) else text) + CRLF)

    def run(self) -> None:
        caps = "IMAP4rev1 IDLE" if self.server.behaviour.idle else "IMAP4rev1"
        self.line(f"* OK [CAPABILITY {caps}] hostile test server ready")
        while True:
            raw = self.readline()
            if not raw:
                return
            parts = raw.decode("utf-8", "replace").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2:
                continue
            tag, command, rest = parts[0], parts[1].upper(), parts[2] if len(parts) > 2 else ""
            if command == "UID":
                sub, _, rest = rest.partition(" ")
                command = "UID " + sub.upper()
            if not self.command(tag, command, rest, caps):
                return

    def command(self, tag: str, command: str, rest: str, caps: str) -> bool:
        server = self.server
        if command == "CAPABILITY":
            self.line(f"* CAPABILITY {caps}")
        elif command == "LOGIN":
            # The tests log in with the right password; anything else is refused.
            if server.password not in rest:
                self.line(f"{tag} NO [AUTHENTICATIONFAILED] wrong password")
                return True
        elif command == "SELECT":
            with server._lock:
                uids = sorted(server.messages)
            self.line(f"* {len(uids)} EXISTS")
            self.line("* FLAGS (\\Seen \\Deleted)")
            self.line(f"* OK [UIDVALIDITY {server.uidvalidity}] ok")
            self.line(f"* OK [UIDNEXT {max(uids, default=0) + 1}] ok")
            endless = server.behaviour.endless_line_after_select
            if endless:
                self.stream(b"* OK ", endless, b"")
                return False
            self.line(f"{tag} OK [READ-WRITE] SELECT completed")
            return True
        elif command == "UID SEARCH":
            with server._lock:
                uids = sorted(server.messages)
            m = re.search(r"UID (\d+):\*", rest)
            if m:
                low = int(m.group(1))
                found = [u for u in uids if u >= low] or uids[-1:]  # "n:*" always matches the newest
            else:
                found = uids
            self.line("* SEARCH " + " ".join(map(str, found)))
        elif command == "UID FETCH":
            uid_text, _, items = rest.partition(" ")
            with server._lock:
                server.fetch_commands.append(rest)
            for uid in _uid_set(uid_text):
                with server._lock:
                    message = server.messages.get(uid)
                    if message is not None:
                        server.fetches.append((uid, items))
                if message is not None and not self.fetch(uid, items, message):
                    return False
        elif command == "UID STORE":
            with server._lock:
                server.stored.append((int(rest.split(" ", 1)[0]), rest))
        elif command == "IDLE":
            return self.idle(tag)
        elif command == "APPEND":  # the relay's notices to its user land in the mailbox like any mail
            m = re.search(r"\{(\d+)\}$", rest)
            if m is None:
                self.line(f"{tag} BAD APPEND without a literal")
                return True
            self.line("+ ready for the message")
            raw = self.read_exact(int(m.group(1)))
            self.readline()  # the CRLF that ends the command
            server.add(Message(raw))
        elif command == "LOGOUT":
            self.line("* BYE logging out")
            self.line(f"{tag} OK LOGOUT completed")
            return False
        elif command not in ("NOOP", "CHECK"):
            self.line(f"{tag} BAD unknown command")
            return True
        self.line(f"{tag} OK {command} completed")
        return True

    def fetch(self, uid: int, items: str, message: Message) -> bool:
        wants_body = "BODY.PEEK" in items.upper()
        if message.broken_fetch:
            self.line(f'* {uid} FETCH (UID {uid} BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "unterminated')
            return True
        if wants_body and (message.stall or message.stall_after is not None):
            if message.stall_after is not None:
                size = message.literal_size or len(message.text)
                self.send(f"* {uid} FETCH (UID {uid} BODY[TEXT] {{{size}}}".encode() + CRLF)
                self.stream(b"", message.stall_after, b"")
            while self.readline(timeout=0.1) is None:
                pass  # until the client gives up and hangs up
            return False
        out: list[bytes | memoryview] = [f"* {uid} FETCH (UID {uid}".encode()]
        if "BODYSTRUCTURE" in items.upper():
            structure = message.bodystructure or (
                b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" '
                + str(len(message.text)).encode()
                + b" "
                + str(self.raw_count(message.text)).encode()
                + b")"
            )
            out.append(b" BODYSTRUCTURE " + structure)
        for m in _SECTION.finditer(items):
            section = m.group(1).upper()
            whole = message.header if section == "HEADER" else message.text
            echo = f"BODY[{section}]"
            if m.group(2) is not None and not message.ignore_partial:
                start, length = int(m.group(2)), int(m.group(3))
                whole = whole[start : start + length]
                echo += f"<{start}>"
            if message.literal_size is not None and section != "HEADER":
                self.send_all([*out, f" {echo} {{{message.literal_size}}}".encode() + CRLF])
                out = []
                if not self.stream(b"", message.literal_size, b""):
                    return False
                continue
            out.append(f" {echo} {{{len(whole)}}}".encode() + CRLF)
            out.append(whole)
        if wants_body and message.extra_literals:
            count, size = message.extra_literals
            self.send_all(out)
            out = []
            try:
                for n in range(count):
                    self.send(f" BODY[{n + 2}] {{{size}}}".encode() + CRLF + _CHUNK[:size])
            except OSError:
                return False
        out.append(b")" + CRLF)
        self.send_all(out)
        return True

    def send_all(self, pieces: list[bytes | memoryview]) -> None:
        for piece in pieces:
            self.send(piece)

    @staticmethod
    def raw_count(text: memoryview) -> int:
        return bytes(text[:65536]).count(b"\n")  # the line count of a BODYSTRUCTURE need not be exact

    def stream(self, head: bytes, size: int, tail: bytes) -> bool:
        """Send ``size`` bytes made of a repeated chunk; False once the client hung up."""
        try:
            self.send(head)
            left = size
            while left > 0:
                piece = _CHUNK if left >= len(_CHUNK) else _CHUNK[:left]
                self.send(piece)
                left -= len(piece)
            self.send(tail)
        except OSError:
            return False
        return True

    def idle(self, tag: str) -> bool:
        server = self.server
        self.line("+ idling")
        with server._lock:
            known = len(server.messages)
        started = time.monotonic()
        while True:
            bye = server.behaviour.bye_in_idle
            if bye is not None and time.monotonic() - started >= bye:
                self.line("* BYE the server is going away")
                return False
            with server._lock:
                count = len(server.messages)
            if count != known:
                known = count
                self.line(f"* {count} EXISTS")
            got = self.readline(timeout=0.03)
            if got is None:
                continue
            if not got:
                return False
            if got.strip().upper() == b"DONE":
                break
        self.line(f"{tag} OK IDLE terminated")
        return True


@contextlib.contextmanager
def hostile_server(*messages: Message, behaviour: Behaviour | None = None) -> Iterator[HostileImap]:
    server = HostileImap(behaviour=behaviour or Behaviour())
    for message in messages:
        server.add(message)
    with server:
        yield server


def main(argv: list[str] | None = None) -> None:
    """Serve until killed: ``--literal N`` makes every body fetch a literal of N bytes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--literal", type=int, default=None)
    parser.add_argument("--password", default=HostileImap.password)
    args = parser.parse_args(argv)
    server = HostileImap(port=args.port, password=args.password)
    for n in range(1, args.messages + 1):
        server.add(Message(reply(n), literal_size=args.literal))
    server.start()
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()


def _uid_set(text: str) -> list[int]:
    """The UIDs of a UID set such as "3:7,9" (RFC 3501 sequence-set, without "*")."""
    uids: list[int] = []
    for run in text.split(","):
        low, _, high = run.partition(":")
        uids.extend(range(int(low), int(high or low) + 1))
    return uids
