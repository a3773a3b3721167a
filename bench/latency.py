"""A small synchronous SMTP client that times each message, for latency distributions.

``smtp-source`` reports no latency, so this client sends messages one after another over one
connection and records, per message, the time from the end of the DATA payload (the final
``.`` line written to the socket) to the server's reply: exactly the time the relay keeps a
mail client waiting.  Each message gets its own Message-ID and, optionally, its own
recipient, so the relay records a first contact each time (as when prospecting).
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .messages import MESSAGE_ID_PLACEHOLDER, SENDER


class SmtpError(Exception):
    pass


def dot_stuff(raw: bytes) -> bytes:
    """The DATA payload for ``raw`` (CRLF lines): leading dots doubled, then the final dot."""
    body = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
    body = body.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body + b".\r\n"


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 120.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.reply()  # 220
        self.command(b"EHLO bench.client")

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise SmtpError("connection closed by the server")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), "\n".join(x.decode("utf-8", "replace") for x in lines)

    def command(self, line: bytes, expect: int = 2) -> tuple[int, str]:
        self.sock.sendall(line + b"\r\n")
        code, text = self.reply()
        if code // 100 != expect:
            raise SmtpError(f"{line.decode()!r}: {text}")
        return code, text

    def send(self, sender: str, recipient: str, payload: bytes) -> tuple[float, float]:
        """One transaction; ``payload`` is already dot-stuffed with its final dot.

        Returns (seconds from MAIL to the final reply, seconds from the end of DATA to the reply).
        """
        start = time.perf_counter()
        self.command(f"MAIL FROM:<{sender}>".encode())
        self.command(f"RCPT TO:<{recipient}>".encode())
        self.command(b"DATA", expect=3)
        self.sock.sendall(payload)
        data_end = time.perf_counter()
        code, text = self.reply()
        done = time.perf_counter()
        if code // 100 != 2:
            raise SmtpError(f"end of DATA: {text}")
        return done - start, done - data_end

    def close(self) -> None:
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, SmtpError):
            pass
        self.sock.close()


@dataclass
class LatencyRun:
    samples: list[float]  # seconds, end of DATA -> reply
    totals: list[float]  # seconds, MAIL -> reply

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples, 99) * 1000


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 200 samples is the 198th value)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def default_recipient(i: int) -> str:
    return f"kontakt{i}@firma{i % 997}.de"


def measure(
    port: int,
    raw: bytes,
    count: int,
    recipient: Callable[[int], str] = default_recipient,
    first: int = 0,
) -> LatencyRun:
    """Send ``count`` messages over one connection; a fresh Message-ID for each."""
    client = Client(port)
    samples, totals = [], []
    try:
        for i in range(first, first + count):
            mid = f"<bench-{i:010d}@nordlicht.example>".encode()
            payload = dot_stuff(raw.replace(MESSAGE_ID_PLACEHOLDER, mid, 1))
            total, after_data = client.send(SENDER, recipient(i), payload)
            samples.append(after_data)
            totals.append(total)
    finally:
        client.close()
    return LatencyRun(samples, totals)


def send_one(port: int, raw: bytes, recipient: str = "kontakt@firma.de", payload: bytes | None = None) -> float:
    """Seconds for one whole transaction (MAIL to the final reply), e.g. the 25 MB message.

    ``payload`` is ``dot_stuff(raw)`` made beforehand: stuffing 25 MB holds this process's
    interpreter for tens of milliseconds, which a ``Probe`` thread running meanwhile would
    count as the server's delay."""
    payload = dot_stuff(raw) if payload is None else payload
    client = Client(port, timeout=600)
    try:
        total, _ = client.send(SENDER, recipient, payload)
    finally:
        client.close()
    return total


class Probe:
    """Another client while the server is busy: new connections one after another, each a
    whole 5 KB transaction; every reply's wait (greeting, EHLO, MAIL, RCPT, DATA, end of
    data, QUIT) is one sample.  ``own`` keeps the replies a forwarding server gives without
    its upstream (all but the end of data), to tell its own stalls from the upstream's.
    Runs in a thread until ``stop`` is called."""

    def __init__(self, port: int, raw: bytes, pause: float = 0.01) -> None:
        self.port = port
        self.payload = dot_stuff(raw)
        self.pause = pause
        self.samples: list[float] = []
        self.own: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(60)
        return self.samples

    def _timed(self, client: Client, line: bytes | None, expect: int = 2, upstream: bool = False) -> None:
        started = time.perf_counter()
        if line is not None:
            client.sock.sendall(line)
        code, text = client.reply()
        self.samples.append(time.perf_counter() - started)
        if not upstream:
            self.own.append(self.samples[-1])
        if code // 100 != expect:
            raise SmtpError(text)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                started = time.perf_counter()
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                client = Client.__new__(Client)
                client.sock, client.buffer = sock, b""
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client.reply()  # the greeting: timed from the connect
                self.samples.append(time.perf_counter() - started)
                self.own.append(self.samples[-1])
                self._timed(client, b"EHLO probe.client\r\n")
                self._timed(client, f"MAIL FROM:<{SENDER}>\r\n".encode())
                self._timed(client, f"RCPT TO:<probe{n}@firma{n % 97}.de>\r\n".encode())
                self._timed(client, b"DATA\r\n", expect=3)
                self._timed(client, self.payload, upstream=True)
                self._timed(client, b"QUIT\r\n")
                sock.close()
            except (OSError, SmtpError) as exc:
                self.errors.append(str(exc))
            self._stop.wait(self.pause)
