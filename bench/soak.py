"""Soak test: the relay under mixed load with faults, for a bounded time, one section per fault.

    .venv/bin/python -m bench.soak                      # every section, 20 s of load each
    .venv/bin/python -m bench.soak --seconds 10 --sections mixed,imap --keep

The relay runs as its own process (``python -m proxy serve``) in front of a recording
upstream in this process.  Several smtplib clients send messages with 1-3 recipients (some
opted out, some at consumer mail providers, some 50 KB HTML); a client retries a message that
got a 4xx (or lost its connection) until it is accepted or the time is up.  Sections:

    mixed         the upstream answers 451 at DATA, drops connections, is stopped and restarted;
                  the relay is killed with SIGKILL once midway and restarted
    one of three  every message has three recipients; the upstream refuses one of them with 451
                  at RCPT until the drain (the other two must not be sent twice)
    disk full     three recipients each; the relay's data directory (its queue) on an 8 MB tmpfs
                  that is filled up a third into the run while the upstream defers one recipient
                  of three, then emptied; without a tmpfs the queue directory is made read-only
                  instead (root ignores that: then the section is skipped and says so)
    imap          the watcher follows a hostile IMAP server (tests/hostile_imap.py) that sends
                  1 GB literals, malformed and 5,000-deep BODYSTRUCTUREs, unparsable answers and
                  BYE during IDLE, between real opt-out replies

After each section's drain it counts, and prints one table:

    sent        messages the clients offered
    accepted    messages the relay answered 250 (some recipients may have been refused)
    delivered   distinct (message, recipient) copies the upstream received
    duplicated  extra copies of a (message, recipient) pair (at-least-once delivery)
    lost        copies the client was told 250 for that never arrived upstream (must be 0)
    crashes     relay exits other than the soak's own kill (must be 0)
    peak RSS    the relay's VmHWM, largest over its runs

A section that fails to run is shown with its error; the others still run.  Exit status 0 when
every section ran with 0 lost and 0 crashes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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
import traceback
from collections import Counter
from collections.abc import Callable
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
FLAKY = "einkauf@zentrale.example"  # the recipient the upstream defers in "one of three"
MESSAGE_ID = re.compile(rb"(?im)^Message-ID:\s*<([^>]+)>")
IMAP_PASSWORD_ENV = "GDPR_PROXY_SOAK_IMAP_PASSWORD"
SECTIONS = ("mixed", "one of three", "disk full", "imap")


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
        self.deferred_rcpt: str | None = None  # answered 451 at RCPT while set
        self.controller: Controller | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address == self.deferred_rcpt:
            return "451 4.2.0 Soak: this mailbox is busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

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
    def __init__(self, workdir: Path, config: Path, port: int, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.config = config
        self.port = port
        self.env = env
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
                env=self.env,
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
        if self.proc.returncode not in (0, -signal.SIGTERM):
            self.crashes += 1  # it did not shut down cleanly


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
    accepted: int = 0
    refused: int = 0
    deferred: int = 0
    promised: set[tuple[str, str]] = field(default_factory=set)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, amount in counts.items():
                setattr(self, name, getattr(self, name) + amount)


Picker = Callable[[random.Random], list[str]]


def mixed_recipients(rng: random.Random) -> list[str]:
    pool = BUSINESS * 4 + SUPPRESSED + CONSUMER
    return list(dict.fromkeys(rng.sample(pool, rng.randint(1, 3))))


def one_of_three(rng: random.Random) -> list[str]:
    return [*rng.sample(BUSINESS, 2), FLAKY]


def client_loop(n: int, port: int, deadline: float, tally: Tally, stop: threading.Event, pick: Picker) -> None:
    rng = random.Random(n)
    serial = 0
    while time.monotonic() < deadline and not stop.is_set():
        serial += 1
        message_id = f"soak-{n}-{serial}@nordlicht.example"
        rcpts = pick(rng)
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
                tally.add(refused=len(refused), accepted=1)
                with tally.lock:
                    tally.promised.update((message_id, r) for r in rcpts if r not in refused)
                break
            time.sleep(0.3)


def write_config(workdir: Path, upstream_port: int, relay_port: int, **extra: Any) -> Path:
    config: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": relay_port},
        "data_dir": str(workdir / "data"),
        # beside the data directory: the disk-full section fills only the queue's disk
        "store": str(workdir / "store.sqlite3"),
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
        # Refused recipients are refused at RCPT: a client told 250 for someone must see them delivered.
        "smtp": {"refused_recipients": "refuse_at_rcpt"},
        **extra,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def spool_entries(workdir: Path) -> int:
    return len(list((workdir / "data").rglob("queue/*.json")))


# --- one section: a relay, its upstream, the clients, a fault, the drain, the count ---


class Section:
    def __init__(self, workdir: Path, clients: int, seconds: float, env: dict[str, str] | None = None, **config: Any):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.clients = clients
        self.seconds = seconds
        self.upstream = FaultyUpstream()
        self.upstream.start()
        self.relay_port = free_port()
        self.config = write_config(workdir, self.upstream.port, self.relay_port, **config)
        for address in SUPPRESSED:
            subprocess.run(
                [sys.executable, "-m", "proxy", "-c", str(self.config), "suppress", "add", address],
                cwd=ROOT,
                check=True,
                capture_output=True,
                env=env,
            )
        self.relay = Relay(workdir, self.config, self.relay_port, env)
        self.tally = Tally()
        self.notes: list[str] = []

    def run(self, pick: Picker, fault: Callable[[threading.Event], None]) -> None:
        """Load for ``seconds`` with ``fault`` running beside it, then drain with faults off."""
        self.relay.start()
        stop = threading.Event()
        deadline = time.monotonic() + self.seconds

        def faults() -> None:
            try:
                fault(stop)
            except Exception as exc:  # the load goes on; the table says what went wrong
                self.notes.append(f"fault thread failed: {type(exc).__name__}: {exc}")

        fault_thread = threading.Thread(target=faults, daemon=True)
        fault_thread.start()
        threads = [
            threading.Thread(
                target=client_loop, args=(n, self.relay_port, deadline, self.tally, stop, pick), daemon=True
            )
            for n in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            self.relay.sample_memory()
            self.relay.check_alive()
            time.sleep(0.2)
        stop.set()
        fault_thread.join(15)

        upstream = self.upstream
        upstream.mode = "ok"
        upstream.deferred_rcpt = None
        if upstream.controller is None:
            upstream.start()
        self.relay.check_alive()
        drain_until = time.monotonic() + 30
        while spool_entries(self.workdir) and time.monotonic() < drain_until:
            self.relay.sample_memory()
            time.sleep(0.2)
        time.sleep(1.0)  # a last retry round in flight lands
        self.relay.sample_memory()
        self.relay.check_alive()

    def close(self) -> None:
        self.relay.stop()
        self.upstream.stop()

    def result(self) -> dict[str, Any]:
        with self.upstream.lock:
            copies = {k: v for k, v in self.upstream.copies.items() if not k[0].startswith("bounce:")}
        leftovers = len(list((self.workdir / "data").rglob("queue/*.tmp")))
        if leftovers:
            self.notes.append(f"{leftovers} temporary file(s) left in the queue")
        self.notes.append(f"{self.tally.deferred} answered 4xx")
        queued = spool_entries(self.workdir)
        if queued:
            self.notes.append(f"{queued} still queued after the drain")
        return {
            "sent": self.tally.offered,
            "accepted": self.tally.accepted,
            "delivered": len(copies),
            "duplicated": sum(v - 1 for v in copies.values()),
            "lost": len(self.tally.promised - set(copies)),
            "crashes": self.relay.crashes,
            "peak RSS": f"{self.relay.peak_kb / 1024:.0f} MB",
            "notes": "; ".join(self.notes),
        }


def mixed(workdir: Path, clients: int, seconds: float) -> dict[str, Any]:
    """Upstream faults of every kind; the relay killed with SIGKILL once at half time."""
    section = Section(workdir, clients, seconds)

    def fault(stop: threading.Event) -> None:
        rng = random.Random(42)
        started = time.monotonic()
        killed = False
        upstream, relay = section.upstream, section.relay
        while not stop.is_set():
            kind = rng.choice(["ok", "ok", "data451", "drop", "restart"])
            if kind == "restart":
                upstream.stop()
                stop.wait(1.5)
                upstream.start()
            else:
                upstream.mode = kind
                stop.wait(rng.uniform(0.5, 2.0))
                upstream.mode = "ok"
            if not killed and time.monotonic() - started > seconds / 2:
                relay.kill9()
                stop.wait(0.5)
                relay.start()
                killed = True
            stop.wait(rng.uniform(0.5, 2.0))

    try:
        section.run(mixed_recipients, fault)
    finally:
        section.close()
    section.notes.insert(0, f"kill -9 x{section.relay.kills}")
    return section.result()


def one_of_three_failing(workdir: Path, clients: int, seconds: float) -> dict[str, Any]:
    """Three recipients each; the upstream defers one of them at RCPT until the drain."""
    section = Section(workdir, clients, seconds)

    def fault(stop: threading.Event) -> None:
        section.upstream.deferred_rcpt = FLAKY
        stop.wait()

    try:
        section.run(one_of_three, fault)
    finally:
        section.close()
    return section.result()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    command = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)]
    done = subprocess.run(command, capture_output=True)
    return done.returncode == 0


def disk_full(workdir: Path, clients: int, seconds: float) -> dict[str, Any]:
    """The queue's disk fills up a third into the run, while the upstream defers, then frees."""
    data = workdir / "data"
    mounted = _mount_tmpfs(data, "8m")
    if not mounted and os.geteuid() == 0:
        return {"notes": "skipped: no tmpfs could be mounted, and root ignores a read-only queue directory"}
    section = Section(workdir, clients, seconds)
    section.notes.append("queue on an 8 MB tmpfs, filled up" if mounted else "no tmpfs: queue directory read-only")

    def fault(stop: threading.Event) -> None:
        if stop.wait(seconds / 3):
            return
        queue = data / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        filler = data / "filler"
        # The upstream takes two recipients of three: the third copy needs the queue after the
        # first two went out (the client must not be told "not sent" and send them again).
        section.upstream.deferred_rcpt = FLAKY
        try:
            if mounted:
                with contextlib.suppress(OSError), filler.open("wb") as out:
                    block = b"\0" * 65536
                    while True:
                        out.write(block)
                        out.flush()
            else:
                queue.chmod(0o500)
            stop.wait(seconds / 3)
        finally:
            section.upstream.deferred_rcpt = None
            if mounted:
                filler.unlink(missing_ok=True)
            else:
                queue.chmod(0o700)

    try:
        section.run(one_of_three, fault)
    finally:
        section.close()
        if mounted:
            subprocess.run(["umount", str(data)], capture_output=True)
    return section.result()


def imap_misbehaving(workdir: Path, clients: int, seconds: float) -> dict[str, Any]:
    """The watcher follows a hostile IMAP server while mail is relayed."""
    sys.path.insert(0, str(ROOT))
    from tests.hostile_imap import Behaviour, HostileImap, Message, deep_bodystructure, reply

    server = HostileImap(behaviour=Behaviour(bye_in_idle=3.0)).start()
    hostile = [
        lambda n: Message(reply(n), literal_size=1024**3),
        lambda n: Message(reply(n), bodystructure=b'("TEXT" "PLAIN" ((( "7BIT"'),
        lambda n: Message(reply(n), bodystructure=deep_bodystructure(5000)),
        lambda n: Message(reply(n), broken_fetch=True),
        lambda n: Message(reply(n, "Bitte austragen.\r\n" + ("x" * 998 + "\r\n") * 5000), ignore_partial=True),
    ]
    env = {**os.environ, IMAP_PASSWORD_ENV: server.password}
    imap = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "username": server.user,
        "password_env": IMAP_PASSWORD_ENV,
        "poll_seconds": 1,
        "timeout_seconds": 5,
    }
    section = Section(workdir, clients, seconds, env=env, imap=imap)

    def fault(stop: threading.Event) -> None:
        n = 0
        while not stop.wait(0.5):
            n += 1
            server.add(hostile[n % len(hostile)](n) if n % 2 else Message(reply(n, "Bitte keine E-Mails mehr.")))

    try:
        section.run(mixed_recipients, fault)
    finally:
        section.close()
        server.stop()
    unreadable = 0
    with contextlib.suppress(Exception):
        import sqlite3

        with contextlib.closing(sqlite3.connect(workdir / "store.sqlite3")) as db:
            unreadable = db.execute("SELECT COUNT(*) FROM unreadable_messages").fetchone()[0]
    fetched = len(set(server.fetched_uids()))
    section.notes.append(
        f"IMAP: {len(server.messages)} messages, {fetched} fetched, {unreadable} recorded unreadable, "
        f"{server.connections} connections, {server.bytes_sent / 1024**2:.0f} MB sent by the server"
    )
    return section.result()


RUNNERS: dict[str, Callable[[Path, int, float], dict[str, Any]]] = {
    "mixed": mixed,
    "one of three": one_of_three_failing,
    "disk full": disk_full,
    "imap": imap_misbehaving,
}
COLUMNS = ("sent", "accepted", "delivered", "duplicated", "lost", "crashes", "peak RSS")


def print_table(results: dict[str, dict[str, Any]]) -> None:
    width = max(len(name) for name in results)
    print(f"{'section':<{width}}  " + "  ".join(f"{c:>10}" for c in COLUMNS) + "  notes")
    for name, row in results.items():
        cells = "  ".join(f"{row.get(c, '-')!s:>10}" for c in COLUMNS)
        print(f"{name:<{width}}  {cells}  {row.get('notes', '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration of each section (default 20)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent SMTP clients (default 4)")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)} (default all)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, stores)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    workdir = Path(tempfile.mkdtemp(prefix="gdpr-proxy-soak-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        for index, name in enumerate(chosen):
            print(f"soak: {name} ({args.seconds:.0f} s) ...", flush=True)
            try:
                results[name] = RUNNERS[name](workdir / f"{index}-{name.replace(' ', '-')}", args.clients, args.seconds)
            except Exception as exc:
                traceback.print_exc()
                results[name] = {"notes": f"FAILED: {type(exc).__name__}: {exc}"}
    finally:
        print_table(results)
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory: {workdir}")
    failed = [r for r in results.values() if str(r.get("notes", "")).startswith("FAILED")]
    ran = [r for r in results.values() if "lost" in r]
    return 0 if not failed and all(r["lost"] == 0 and r["crashes"] == 0 for r in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
