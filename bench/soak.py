"""Soak test: the relay under mixed load with faults, for a bounded time.

    .venv/bin/python -m bench.soak                 # 60 s
    .venv/bin/python -m bench.soak --seconds 20 --clients 6 --keep

The relay runs as its own process (``python -m proxy serve``) in front of a recording
upstream in this process.  Several smtplib clients send messages with 1-3 recipients (some
opted out, some at consumer mail providers, some 50 KB HTML) while the upstream answers 451
at DATA, drops connections, or is stopped and restarted, and the relay is killed with
SIGKILL once midway and restarted.  A client retries a message that got a 4xx (or lost its
connection) until it is accepted or the time is up.  After a final drain it prints:

    offered     messages the clients offered
    delivered   distinct (message, recipient) copies the upstream received
    refused     recipients refused with 5xx (at RCPT or DATA)
    deferred    4xx answers (and dropped connections) the clients got
    queued      entries left in the relay's spool after the drain
    lost        copies the client was told 250 for that never arrived upstream (must be 0)
    duplicates  extra copies of a (message, recipient) pair (at-least-once delivery)
    crashes     relay exits other than the soak's own kill (must be 0)
    kill -9     how many times the soak killed the relay (1)
    peak memory the relay's VmHWM, largest over its runs

Exit status 0 when lost and crashes are both 0, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

ROOT = Path(__file__).resolve().parent.parent
SENDER = "anna@nordlicht.example"
SUPPRESSED = ["optedout@kunde-a.example", "former@kunde-b.example"]
CONSUMER = ["max.mustermann@gmail.com", "jane@yahoo.com"]
BUSINESS = [f"kontakt{i}@firma{i}.de" for i in range(5)] + [f"lead{i}@corp{i}.example" for i in range(5)]
MESSAGE_ID = re.compile(rb"(?im)^Message-ID:\s*<([^>]+)>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the upstream: records per (Message-ID, recipient), misbehaves on request ---


class FaultyUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.copies: Counter[tuple[str, str]] = Counter()
        self.mode = "ok"  # ok | data451 | drop
        self.controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mode = self.mode
        if mode == "drop":
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "421 dropped"
        if mode == "data451":
            return "451 4.3.0 Soak: try again later"
        found = MESSAGE_ID.search(envelope.original_content or b"")
        message_id = found.group(1).decode() if found else "?"
        if envelope.mail_from in ("", "<>"):
            message_id = "bounce:" + message_id
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.copies[(message_id, rcpt)] += 1
        return "250 2.0.0 Soak OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


# --- the relay process ---


class Relay:
    def __init__(self, workdir: Path, config: Path, port: int):
        self.workdir = workdir
        self.config = config
        self.port = port
        self.log = workdir / "relay.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_kb = 0
        self.crashes = 0
        self.kills = 0
        self.expected_exit = False

    def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "proxy", "-c", str(self.config), "serve"],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.expected_exit = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(3) == b"220":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("relay did not start; see " + str(self.log))

    def sample_memory(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))
        except OSError:
            pass

    def kill9(self) -> None:
        assert self.proc is not None
        self.sample_memory()
        self.expected_exit = True
        self.kills += 1
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def check_alive(self) -> None:
        """A relay that exited without being told to counts as a crash and is restarted."""
        if self.proc is not None and self.proc.poll() is not None and not self.expected_exit:
            self.crashes += 1
            self.start()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.sample_memory()
        self.expected_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- load ---


def html_message(rng: random.Random, size: int = 50_000) -> str:
    words = ["Angebot", "Lösung", "Software", "Termin", "Beratung", "effizient", "Prozess", "Kunde"]
    paragraphs = []
    total = 0
    while total < size:
        text = " ".join(rng.choice(words) for _ in range(60))
        paragraphs.append(f'<p>{text} <a href="https://nordlicht.example/p/{total}">mehr</a></p>')
        total += len(paragraphs[-1])
    pixel = '<img src="https://t.example/o.gif" width="1" height="1">'
    return f"<html><body>{''.join(paragraphs)}{pixel}</body></html>"


def build_message(message_id: str, rcpts: list[str], rng: random.Random) -> bytes:
    headers = (
        f"From: Anna Nowak <{SENDER}>\r\nTo: {', '.join(rcpts)}\r\nSubject: Soak {message_id}\r\n"
        f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
    )
    if rng.random() < 0.25:
        body = html_message(rng).encode()
        lines = b"\r\n".join(body[i : i + 900] for i in range(0, len(body), 900))
        return (headers + "Content-Type: text/html; charset=utf-8\r\n\r\n").encode() + lines + b"\r\n"
    text = "Guten Tag,\r\n\r\nwir haben ein Angebot für Sie.\r\n\r\nGrüße\r\nAnna\r\n"
    return (
        headers + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text
    ).encode()


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    offered: int = 0
    refused: int = 0
    deferred: int = 0
    promised: set[tuple[str, str]] = field(default_factory=set)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, amount in counts.items():
                setattr(self, name, getattr(self, name) + amount)


def client_loop(n: int, port: int, deadline: float, tally: Tally, stop: threading.Event) -> None:
    rng = random.Random(n)
    serial = 0
    while time.monotonic() < deadline and not stop.is_set():
        serial += 1
        message_id = f"soak-{n}-{serial}@nordlicht.example"
        pool = BUSINESS * 4 + SUPPRESSED + CONSUMER
        rcpts = list(dict.fromkeys(rng.sample(pool, rng.randint(1, 3))))
        raw = build_message(message_id, rcpts, rng)
        tally.add(offered=1)
        while time.monotonic() < deadline and not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
                    refused = client.sendmail(SENDER, rcpts, raw)
            except smtplib.SMTPRecipientsRefused as exc:
                tally.add(refused=len(exc.recipients))
                break
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    tally.add(refused=len(rcpts))
                    break
                tally.add(deferred=1)
            except (OSError, smtplib.SMTPException):
                tally.add(deferred=1)  # relay restarting or connection lost: retry
            else:
                tally.add(refused=len(refused))
                with tally.lock:
                    tally.promised.update((message_id, r) for r in rcpts if r not in refused)
                break
            time.sleep(0.3)


def fault_loop(upstream: FaultyUpstream, relay: Relay, started: float, seconds: float, stop: threading.Event) -> None:
    """Cycle through upstream faults; kill the relay once at half time."""
    rng = random.Random(42)
    killed = False
    while not stop.is_set():
        fault = rng.choice(["ok", "ok", "data451", "drop", "restart"])
        if fault == "restart":
            upstream.stop()
            stop.wait(1.5)
            upstream.start()
        else:
            upstream.mode = fault
            stop.wait(rng.uniform(0.5, 2.0))
            upstream.mode = "ok"
        if not killed and time.monotonic() - started > seconds / 2:
            relay.kill9()
            stop.wait(0.5)
            relay.start()
            killed = True
        relay.sample_memory()
        relay.check_alive()
        stop.wait(rng.uniform(0.5, 2.0))


def write_config(workdir: Path, upstream_port: int, relay_port: int) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": relay_port},
        "data_dir": str(workdir / "data"),
        "rules_dir": str(workdir / "rules"),
        "queue": {"retry_seconds": 0.5, "max_retry_seconds": 2},
        "upstream": {"host": "127.0.0.1", "port": upstream_port, "security": "none", "timeout_seconds": 3},
        "sender": {
            "name": "Anna Nowak",
            "company": "Nordlicht Software GmbH",
            "privacy_policy_url": "https://nordlicht.example/privacy",
            "opt_out_address": "optout@nordlicht.example",
        },
        "log": {"level": "warning"},
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def spool_entries(workdir: Path) -> int:
    return len(list((workdir / "data").rglob("queue/*.json")))


def run(seconds: float, clients: int, workdir: Path) -> dict[str, Any]:
    upstream = FaultyUpstream()
    upstream.start()
    relay_port = free_port()
    config = write_config(workdir, upstream.port, relay_port)
    for address in SUPPRESSED:
        subprocess.run(
            [sys.executable, "-m", "proxy", "-c", str(config), "suppress", "add", address],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    relay = Relay(workdir, config, relay_port)
    relay.start()
    tally = Tally()
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + seconds
    faults = threading.Thread(target=fault_loop, args=(upstream, relay, started, seconds, stop), daemon=True)
    faults.start()
    threads = [
        threading.Thread(target=client_loop, args=(n, relay_port, deadline, tally, stop), daemon=True)
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    stop.set()
    faults.join(10)

    # Final drain: faults off, the relay empties its spool.
    upstream.mode = "ok"
    if upstream.controller is None:
        upstream.start()
    relay.check_alive()
    drain_until = time.monotonic() + 30
    while spool_entries(workdir) and time.monotonic() < drain_until:
        relay.sample_memory()
        time.sleep(0.2)
    time.sleep(1.0)  # a last retry round in flight lands
    relay.sample_memory()
    relay.check_alive()
    relay.stop()
    upstream.stop()

    with upstream.lock:
        copies = {k: v for k, v in upstream.copies.items() if not k[0].startswith("bounce:")}
        bounces = sum(v for k, v in upstream.copies.items() if k[0].startswith("bounce:"))
    return {
        "offered": tally.offered,
        "delivered": len(copies),
        "refused": tally.refused,
        "deferred": tally.deferred,
        "queued": spool_entries(workdir),
        "lost": len(tally.promised - set(copies)),
        "duplicates": sum(v - 1 for v in copies.values()),
        "bounces": bounces,
        "crashes": relay.crashes,
        "kill -9": relay.kills,
        "peak memory": f"{relay.peak_kb / 1024:.1f} MB",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent SMTP clients (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (config, log, store)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gdpr-proxy-soak-"))
    try:
        result = run(args.seconds, args.clients, workdir)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory: {workdir}")
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0 if result["lost"] == 0 and result["crashes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
