"""Reply-watcher benchmark: classification rate, catch-up of a full mailbox, opt-out latency
and idle CPU, against a real IMAP server.

    .venv/bin/python -m bench.watcher [--quick] [--repeat N] [--server dovecot|pymap]

The server is Dovecot (Debian's dovecot-imapd, a private instance in the foreground on a free
loopback port with a generated configuration, bench/dovecot.py) when it is installed, else
pymap's maildir backend as the tests start it (needs the test extras: pysasl, pymap).

1. classify() over the realistic replies of tests/fixtures/replies, cycled to ~5,000
   classifications: replies per second on one core (process CPU time and wall clock).
2. catch-up: a maildir INBOX (bench/watcher_data.py: ordinary replies, opt-outs, absence
   notices, bounces, 10 % with a 1-5 MB PDF); a fresh store, the real ReplyProcessor and
   ImapWatcher.run_once() until every message is handled.  With Dovecot the folder holds
   10,000 messages (--quick: 1,000) and the server's index is built before the timing, as on
   a server in use.  Bytes read from the server are counted on the client's socket, to show
   attachments stay on the server.
3. opt-out latency: the watcher in IDLE (with Dovecot on the same full folder, resuming from
   the catch-up's checkpoint); one "Nein danke" reply (In-Reply-To a Message-ID the store
   recorded as sent) is APPENDed; time until the store holds the suppression.
4. idle CPU: the watcher's process CPU time over a stretch of IDLE with no mail.

pymap re-reads the folder index and stats every message file on each command, so its cost
per message grows with the folder: 10,000 messages would take it hours.  With pymap the
catch-up is measured on 200 messages and the 10,000-message figure is projected from the
watcher's own CPU per message, and the table says so.  WATCHER_CATCHUP_MESSAGES overrides
the folder size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aioimaplib import aioimaplib

from proxy.classify.classifier import classify
from proxy.config.imap import ImapSettings
from proxy.config.settings import Config
from proxy.rules.ruleset import RuleHolder, load_rules
from proxy.store import Store
from proxy.watcher.actions import ReplyProcessor
from proxy.watcher.imap.follow import ImapWatcher

from .dovecot import Dovecot, find_dovecot
from .watcher_data import Mailbox, fixture_replies, write_maildir

CLASSIFY_TARGET = 1_000  # replies/s on one core
CATCHUP_GOAL = 10_000  # the folder size the catch-up target is stated for
CATCHUP_TARGET = 20.0  # seconds for CATCHUP_GOAL messages
OPTOUT_TARGET = 2.0  # seconds from arrival to the suppression
TARGET = (
    f"classify >= {CLASSIFY_TARGET:,} replies/s; {CATCHUP_GOAL:,}-message catch-up <= {CATCHUP_TARGET:.0f} s; "
    f"opt-out <= {OPTOUT_TARGET:.0f} s; idle CPU ~0"
)

CLASSIFY_COUNT = 5_000
TICKS = os.sysconf("SC_CLK_TCK")
PASSWORD_ENV = "GDPR_PROXY_BENCH_IMAP_PASSWORD"
DOVECOT, PYMAP = "dovecot", "pymap"


class Unavailable(Exception):
    """No IMAP server to measure against; the message says what to install."""


def available_server(prefer: str | None = None) -> str:
    """Dovecot when installed, else pymap when the test extras are; raises Unavailable."""
    has_dovecot = find_dovecot() is not None
    has_pymap = all(importlib.util.find_spec(m) is not None for m in ("pysasl", "pymap"))
    if prefer == DOVECOT and not has_dovecot:
        raise Unavailable("dovecot is not installed (Debian: apt-get install dovecot-imapd)")
    if prefer == PYMAP and not has_pymap:
        raise Unavailable("pymap is not installed (.venv/bin/pip install -e '.[test]')")
    if prefer:
        return prefer
    if has_dovecot:
        return DOVECOT
    if has_pymap:
        return PYMAP
    raise Unavailable(
        "no IMAP server to measure against: install Dovecot (Debian: apt-get install dovecot-imapd), "
        "or the test extras for pymap (.venv/bin/pip install -e '.[test]')"
    )


@dataclass(frozen=True)
class Plan:
    repeat: int
    classify_count: int
    catchup_messages: int
    latency_samples: int
    idle_seconds: float


def make_plan(quick: bool, repeat: int, server: str = DOVECOT) -> Plan:
    override = os.environ.get("WATCHER_CATCHUP_MESSAGES")
    if server == DOVECOT:
        count = 1_000 if quick else CATCHUP_GOAL
    else:
        count = 100 if quick else 200
    count = int(override) if override else count
    if quick:
        return Plan(repeat, 1_000, count, latency_samples=3, idle_seconds=3.0)
    return Plan(repeat, CLASSIFY_COUNT, count, latency_samples=5, idle_seconds=10.0)


# -- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifyRun:
    replies: int
    per_cpu_second: float  # the figure for "one core": unaffected by other processes
    per_wall_second: float
    verdicts: dict[str, int]


def measure_classify(count: int = CLASSIFY_COUNT) -> ClassifyRun:
    """classify() in a loop over the fixture replies, with the shipped rules."""
    rules = load_rules()
    reply_rules, fingerprints = rules.reply_rules, rules.footer_fingerprints
    corpus = list(fixture_replies().values())
    verdicts: dict[str, int] = {}
    for raw in corpus:  # warm-up: compiled patterns, codec look-ups
        kind = classify(raw, reply_rules, fingerprints).verdict
        verdicts[kind] = verdicts.get(kind, 0) + 1
    batch = [corpus[i % len(corpus)] for i in range(count)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for raw in batch:
        classify(raw, reply_rules, fingerprints)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return ClassifyRun(count, count / cpu, count / wall, verdicts)


def proc_cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of a process (all its threads; with ``children`` also its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / TICKS


class ByteCounter:
    """Counts what the watcher's IMAP connections receive, at the socket (aioimaplib's
    protocol), so the figure is the traffic itself, attachments included if any came."""

    def __init__(self) -> None:
        self.received = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        cls = aioimaplib.IMAP4ClientProtocol
        original: Callable[[aioimaplib.IMAP4ClientProtocol, bytes], None] = cls.data_received

        def counting(protocol: aioimaplib.IMAP4ClientProtocol, data: bytes) -> None:
            self.received += len(data)
            original(protocol, data)

        cls.data_received = counting  # type: ignore[method-assign]
        try:
            yield
        finally:
            cls.data_received = original  # type: ignore[method-assign]


class Server(Protocol):
    name: str
    home: Path  # the INBOX maildir

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def append(self, raw: bytes) -> None: ...
    def warm(self) -> None: ...
    def cpu_seconds(self) -> float: ...
    def settings(self, **overrides: object) -> ImapSettings: ...


def _settings(host: str, port: int, user: str, password: str, **overrides: object) -> ImapSettings:
    os.environ[PASSWORD_ENV] = password
    values: dict[str, object] = {
        "host": host,
        "port": port,
        "security": "none",  # loopback
        "username": user,
        "password_env": PASSWORD_ENV,
        "first_scan_days": 3650,  # the whole folder is "new" to a fresh store
        "timeout_seconds": 300.0,  # the test server slows down with a full folder
    }
    values.update(overrides)
    return ImapSettings(**values)  # type: ignore[arg-type]


class DovecotServer:
    name = DOVECOT

    def __init__(self, base: Path) -> None:
        self.dovecot = Dovecot(base)
        self.home = self.dovecot.home

    def start(self) -> None:
        self.dovecot.start()

    def stop(self) -> None:
        self.dovecot.stop()

    def append(self, raw: bytes) -> None:
        self.dovecot.append(raw)

    def warm(self) -> None:
        self.dovecot.warm()

    def cpu_seconds(self) -> float:
        """The master with its reaped children (login, imap, auth) and the ones still running."""
        pids = self.dovecot.pids
        total = 0.0
        for n, pid in enumerate(pids):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += proc_cpu_seconds(pid, children=n == 0)
        return total

    def settings(self, **overrides: object) -> ImapSettings:
        d = self.dovecot
        return _settings(d.host, d.port, d.user, d.password, **overrides)


class PymapServer:
    """pymap as tests/imap_server.py starts it; imported lazily, since tests/ is not
    installed with the product and pymap comes with the test extras only."""

    name = PYMAP

    def __init__(self, base: Path) -> None:
        from tests.imap_server import ImapServer

        self.imap = ImapServer(base)
        self.home = self.imap.base_dir / self.imap.user

    def start(self) -> None:
        self.imap.start()

    def stop(self) -> None:
        self.imap.stop()

    def append(self, raw: bytes) -> None:
        self.imap.append(raw)

    def warm(self) -> None:
        pass  # pymap keeps no index between commands

    def cpu_seconds(self) -> float:
        assert self.imap.proc is not None
        return proc_cpu_seconds(self.imap.proc.pid)

    def settings(self, **overrides: object) -> ImapSettings:
        i = self.imap
        return _settings(i.host, i.port, i.user, i.password, **overrides)


def make_server(kind: str, base: Path) -> Server:
    return DovecotServer(base) if kind == DOVECOT else PymapServer(base)


async def _processor(directory: Path) -> tuple[Store, ReplyProcessor]:
    """The store in ``directory`` (created when new) and the real reply processor."""
    directory.mkdir(parents=True, exist_ok=True)
    store = await Store.open(directory / "store.sqlite3")
    rules = RuleHolder(None)
    # Compiled once per rule set (cached): outside the timing, as in a running service.
    _ = rules.current.reply_rules, rules.current.footer_fingerprints
    return store, ReplyProcessor(store, rules, Config())


@dataclass(frozen=True)
class CatchUpRun:
    messages: int
    handled: int
    seconds: float
    watcher_cpu: float  # this process: IMAP client, classification, store (user + system)
    watcher_sys: float  # of which system time: loopback TCP and SQLite writes in the kernel
    server_cpu: float  # the IMAP server's processes
    bytes_received: int
    suppressed: int
    server: str = DOVECOT


async def _catch_up(server: Server, directory: Path, messages: int) -> CatchUpRun:
    store, processor = await _processor(directory)
    counter = ByteCounter()
    watcher = ImapWatcher(server.settings(), store, processor)
    try:
        with counter.installed():
            times0, srv0, wall0 = os.times(), server.cpu_seconds(), time.perf_counter()
            handled = await watcher.run_once()
            seconds = time.perf_counter() - wall0
            times, srv = os.times(), server.cpu_seconds() - srv0
            user, system = times.user - times0.user, times.system - times0.system
        suppressed = len(await store.list_suppressions())
    finally:
        await watcher.close()
        await store.close()
    return CatchUpRun(messages, handled, seconds, user + system, system, srv, counter.received, suppressed, server.name)


def _catch_ups(server: Server, base: Path, messages: int, repeat: int) -> list[CatchUpRun]:
    server.warm()
    runs = []
    for rep in range(repeat):
        runs.append(asyncio.run(_catch_up(server, base / f"catchup-store-{rep}", messages)))
        progress(
            f"catch-up {runs[-1].handled:,}/{messages:,} in {runs[-1].seconds:.1f} s "
            f"({server.name} CPU {runs[-1].server_cpu:.1f} s)"
        )
    return runs


def measure_catch_up(
    base: Path, messages: int, repeat: int, server_kind: str | None = None
) -> tuple[Mailbox, list[CatchUpRun]]:
    """One maildir, served by one server; each repeat a fresh store (so a full first scan)."""
    server = make_server(available_server(server_kind), base / "catchup")
    mailbox = write_maildir(server.home, messages)
    server.start()
    try:
        return mailbox, _catch_ups(server, base, messages, repeat)
    finally:
        server.stop()


NEIN_DANKE = (
    "From: Jana Schulz <{sender}>\r\nTo: Anna Nowak <anna@nordlicht.example>\r\n"
    "Subject: AW: Routenplanung\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
    "Message-ID: <{n}.nein@kunde.example>\r\nIn-Reply-To: <{sent}>\r\nReferences: <{sent}>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Nein danke.\r\n\r\nAm 20.11.2026 um 10:00 schrieb Anna Nowak <anna@nordlicht.example>:\r\n"
    "> Guten Tag, kurz zu unserer Routenplanung.\r\n> -- \r\n"
    "> Sie k\u00f6nnen dem jederzeit widersprechen: Antworten Sie einfach mit \u201eNein danke\u201c.\r\n"
)


@dataclass(frozen=True)
class LiveRun:
    latencies: list[float]  # seconds from APPEND to the suppression in the store
    idle_cpu_pct: float
    idle_seconds: float
    idling: bool  # the watcher was in IDLE (not polling)
    folder_messages: int = 0  # what the folder held while the watcher idled on it


async def _wait_until(condition: Callable[[], Awaitable[bool]], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(step)
    return False


async def _live(server: Server, directory: Path, samples: int, idle_seconds: float, folder: int, first: int) -> LiveRun:
    store, processor = await _processor(directory)
    # poll_seconds far away: only IDLE can bring the reply in time.
    watcher = ImapWatcher(server.settings(poll_seconds=3600), store, processor)
    processor.watcher = watcher
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    latencies: list[float] = []
    try:
        # The first round catches up on what the folder holds (nothing, after a catch-up
        # with this store), then idles.
        if not await _wait_until(lambda: _is_idle(watcher), 600):
            raise RuntimeError("the watcher did not start idling")
        # Idle CPU first, on a quiet connection.
        await asyncio.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
        idling = bool(watcher.idle_supported) and watcher.connected
        for n in range(first, first + samples):
            sent, recipient, sender = f"offer-{n}@nordlicht.example", f"kontakt{n}@firma.de", f"assistenz{n}@firma.de"
            await store.record_delivery(sent, [recipient])
            raw = NEIN_DANKE.format(sender=sender, n=n, sent=sent).encode()
            started = time.perf_counter()
            append = asyncio.create_task(asyncio.to_thread(server.append, raw))

            async def done(recipient: str = recipient) -> bool:
                return await store.find_suppression(recipient) is not None

            if not await _wait_until(done, 30):
                latencies.append(math.nan)
            else:
                latencies.append(time.perf_counter() - started)
            await append
            await _wait_until(lambda: _is_idle(watcher), 30)
            await asyncio.sleep(0.3)  # back in IDLE, not mid-catch-up
    finally:
        stop.set()
        await task
        await store.close()
    return LiveRun(latencies, idle_cpu, idle_seconds, idling, folder + first)


async def _is_idle(watcher: ImapWatcher) -> bool:
    # The watcher holds the connection's lock while idling; connected and past its first round.
    return watcher.connected and watcher.last_check is not None and watcher._lock.locked()


def measure_live(
    base: Path, samples: int, idle_seconds: float, background: int = 50, server_kind: str | None = None
) -> LiveRun:
    """On a folder of ``background`` messages of its own (the catch-up's folder in run())."""
    # A directory of its own per run: a store that already holds the suppression would
    # answer at once.
    directory = Path(tempfile.mkdtemp(prefix="live-", dir=base))
    server = make_server(available_server(server_kind), directory / "mail")
    write_maildir(server.home, background, seed=2)
    server.start()
    try:
        return asyncio.run(_live(server, directory / "store", samples, idle_seconds, background, 0))
    finally:
        server.stop()


# -- the report -------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def figures(
    classify_runs: list[ClassifyRun], mailbox: Mailbox, catchups: list[CatchUpRun], lives: list[LiveRun]
) -> dict[str, object]:
    """The section's figures, for --json and for the table."""
    n = mailbox.messages
    seconds = _median([r.seconds for r in catchups])
    cpu = _median([r.watcher_cpu for r in catchups])
    measured_goal = n >= CATCHUP_GOAL
    projected = seconds / n * CATCHUP_GOAL if measured_goal else cpu / n * CATCHUP_GOAL
    latencies = [x for r in lives for x in r.latencies]
    worst = max((x for x in latencies if not math.isnan(x)), default=math.nan)
    missing = sum(math.isnan(x) for x in latencies)
    return {
        "server": catchups[0].server,
        "classify_per_cpu_second": _median([r.per_cpu_second for r in classify_runs]),
        "classify_per_wall_second": _median([r.per_wall_second for r in classify_runs]),
        "classify_count": classify_runs[0].replies,
        "catchup_messages": n,
        "catchup_with_attachment": mailbox.with_attachment,
        "catchup_folder_mb": mailbox.bytes_on_disk / 1e6,
        "catchup_seconds": seconds,
        "catchup_seconds_runs": [r.seconds for r in catchups],
        "catchup_handled_min": min(r.handled for r in catchups),
        "catchup_suppressed": catchups[0].suppressed,
        "watcher_cpu_ms_per_message": cpu / n * 1000,
        "watcher_sys_ms_per_message": _median([r.watcher_sys for r in catchups]) / n * 1000,
        "server_cpu_ms_per_message": _median([r.server_cpu for r in catchups]) / n * 1000,
        "bytes_received": _median([float(r.bytes_received) for r in catchups]),
        "attachments_downloaded": _median([float(r.bytes_received) for r in catchups])
        >= mailbox.attachment_bytes / 100,
        "catchup_goal_messages": CATCHUP_GOAL,
        "catchup_goal_seconds": projected,
        "catchup_goal_measured": measured_goal,
        "catchup_ok": measured_goal and projected <= CATCHUP_TARGET and min(r.handled for r in catchups) == n,
        "optout_median_seconds": _median(latencies),
        "optout_max_seconds": worst,
        "optout_missing": missing,
        "optout_folder_messages": lives[0].folder_messages,
        "optout_ok": not missing and worst <= OPTOUT_TARGET,
        "idle_cpu_pct": _median([r.idle_cpu_pct for r in lives]),
        "idle_seconds": lives[0].idle_seconds,
        "idling": all(r.idling for r in lives),
    }


def rows_for(
    classify_runs: list[ClassifyRun],
    mailbox: Mailbox,
    catchups: list[CatchUpRun],
    lives: list[LiveRun],
) -> list[tuple[str, str]]:
    f = figures(classify_runs, mailbox, catchups, lives)
    rate, n = float(f["classify_per_cpu_second"]), mailbox.messages  # type: ignore[arg-type]
    seconds = float(f["catchup_seconds"])  # type: ignore[arg-type]
    handled = int(f["catchup_handled_min"])  # type: ignore[call-overload]
    received = float(f["bytes_received"])  # type: ignore[arg-type]
    rows: list[tuple[str, str]] = [
        (
            f"classify, replies/s (1 core; {f['classify_count']:,} over {len(fixture_replies())} fixtures)",
            f"{rate:,.0f} (wall {f['classify_per_wall_second']:,.0f}); target >= {CLASSIFY_TARGET:,} "
            f"{_mark(rate >= CLASSIFY_TARGET)}",
        ),
        (
            f"catch-up of {n:,} messages ({mailbox.with_attachment} with a 1-5 MB PDF; {f['server']}), s",
            f"{seconds:.1f} ({n / seconds:,.0f} msg/s; all handled: {'yes' if handled == n else f'NO, {handled}'}; "
            f"{f['catchup_suppressed']} suppressed)",
        ),
        (
            "  watcher CPU per message, ms",
            f"{f['watcher_cpu_ms_per_message']:.2f} (system {f['watcher_sys_ms_per_message']:.2f})",
        ),
        (f"  {f['server']} CPU per message, ms", f"{f['server_cpu_ms_per_message']:.2f}"),
        (
            "  bytes read from the server",
            f"{received / 1e6:,.2f} MB of {mailbox.bytes_on_disk / 1e6:,.0f} MB in the folder "
            f"({received / n / 1024:.1f} KB/msg); attachments not downloaded "
            f"{_mark(not f['attachments_downloaded'])}",
        ),
    ]
    goal = float(f["catchup_goal_seconds"])  # type: ignore[arg-type]
    if f["catchup_goal_measured"]:
        rows.append(
            (
                f"  {CATCHUP_GOAL:,}-message catch-up, s (measured)",
                f"{goal:.1f}; target <= {CATCHUP_TARGET:.0f} {_mark(bool(f['catchup_ok']))}",
            )
        )
    else:
        rows.append(
            (
                f"  {CATCHUP_GOAL:,}-message catch-up, watcher's own CPU (PROJECTED from {n:,}), s",
                f"{goal:.1f}; target <= {CATCHUP_TARGET:.0f} not judged: "
                + (
                    f"the folder held only {n:,}"
                    if f["server"] == DOVECOT
                    else "measured only with Dovecot (apt-get install dovecot-imapd)"
                ),
            )
        )
    missing = int(f["optout_missing"])  # type: ignore[call-overload]
    rows.append(
        (
            f"opt-out latency in IDLE, s (APPEND to suppression stored; folder of {f['optout_folder_messages']:,})",
            f"median {f['optout_median_seconds']:.2f}, max {f['optout_max_seconds']:.2f}"
            f"{f', {missing} never arrived' if missing else ''}; target <= {OPTOUT_TARGET:.0f} "
            f"{_mark(bool(f['optout_ok']))}",
        )
    )
    idle = float(f["idle_cpu_pct"])  # type: ignore[arg-type]
    rows.append(
        (
            f"idle CPU in IDLE over {f['idle_seconds']:.0f} s, %",
            f"{idle:.3f}{'' if f['idling'] else ' (NOT in IDLE)'}; target ~0 {_mark(idle < 0.5)}",
        )
    )
    return rows


def progress(text: str) -> None:
    print(f"  .. watcher: {text}", file=sys.stderr, flush=True)


@dataclass
class Section:
    rows: list[tuple[str, str]]
    figures: dict[str, object]


def run(quick: bool, repeat: int, server_kind: str | None = None) -> Section:
    """The reply-watcher section of bench/run's report; raises Unavailable without a server."""
    kind = available_server(server_kind)
    plan = make_plan(quick, repeat, kind)
    base = Path(tempfile.mkdtemp(prefix="gdpr-proxy-bench-watcher-"))
    try:
        classify_runs = []
        for _ in range(plan.repeat):
            classify_runs.append(measure_classify(plan.classify_count))
            progress(f"classify {classify_runs[-1].per_cpu_second:,.0f} replies/s")
        started = time.perf_counter()
        server = make_server(kind, base / "catchup")
        mailbox = write_maildir(server.home, plan.catchup_messages)
        progress(
            f"{kind}: folder of {mailbox.messages:,} messages ({mailbox.bytes_on_disk / 1e6:,.0f} MB) written "
            f"in {time.perf_counter() - started:.0f} s"
        )
        server.start()
        try:
            catchups = _catch_ups(server, base, plan.catchup_messages, plan.repeat)
            lives = []
            if kind == DOVECOT:
                # On the full folder, resuming from the last catch-up's checkpoint.
                store_dir = base / f"catchup-store-{plan.repeat - 1}"
                for rep in range(plan.repeat):
                    first = rep * plan.latency_samples
                    lives.append(
                        asyncio.run(
                            _live(server, store_dir, plan.latency_samples, plan.idle_seconds, mailbox.messages, first)
                        )
                    )
                    progress("opt-out latency " + ", ".join(f"{x:.2f}" for x in lives[-1].latencies) + " s")
        finally:
            server.stop()
        if kind != DOVECOT:
            for _ in range(plan.repeat):
                lives.append(measure_live(base, plan.latency_samples, plan.idle_seconds, server_kind=kind))
                progress("opt-out latency " + ", ".join(f"{x:.2f}" for x in lives[-1].latencies) + " s")
        progress(f"watcher section took {time.perf_counter() - started:.0f} s")
        return Section(
            rows_for(classify_runs, mailbox, catchups, lives), figures(classify_runs, mailbox, catchups, lives)
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.watcher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--repeat", type=int, help="runs per figure (default 3; --quick: 1)")
    parser.add_argument("--server", choices=[DOVECOT, PYMAP], help="IMAP server (default: Dovecot when installed)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    try:
        section = run(args.quick, repeat, args.server)
    except Unavailable as exc:
        print(f"bench.watcher: {exc}", file=sys.stderr)
        return 2
    from .run import table

    print(f"Reply watcher (target: {TARGET}; median of {repeat} run(s))")
    print(table(["reply watcher", "figure"], [list(r) for r in section.rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
