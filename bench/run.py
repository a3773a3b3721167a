"""Benchmark the relay against its baselines, all measured in the same run.

    bench/run [--quick] [--repeat N] [--only T,..] [--keep] [--json] [--no-watcher]
                                                   (or: .venv/bin/python -m bench.run ...)

Targets, each a separate process on loopback, all forwarding into one ``smtp-sink``:

    wire      smtp-source straight into smtp-sink: the machine's limit
    bare      smtp-source into a do-nothing aiosmtpd handler: the Python floor
    naive     aiosmtpd + aiosmtplib.send, a new upstream connection per message
    relay/0   this relay (python -m proxy serve), upstream.pool_size: 0 (no reuse)
    relay     this relay with its default upstream pool (upstream.pool_size: 4)

The relay runs its whole pipeline on a store pre-filled with 100,000 suppressions.  Load:
smtp-source for throughput (1, 10, 50 connections; 5 KB and 50 KB messages), a small
Python client for per-message latency, one 25 MB message for time and peak memory, and an
idle phase for memory, CPU and time to ready.  Every figure is the median over the
repeats; repeats interleave the targets, and ratios are taken within each repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import watcher
from .latency import Probe, dot_stuff, measure, percentile, send_one
from .messages import MESSAGES, RECIPIENT, SENDER, write_for_smtp_source
from .procs import (
    Proc,
    ensure_dovecot,
    ensure_postfix_tools,
    free_port,
    machine_busy_seconds,
    machine_description,
    machine_load,
    python_server,
    smtp_sink,
)
from .store_fill import fill

REPO = Path(__file__).resolve().parent.parent
SUPPRESSIONS = 100_000

WIRE, BARE, NAIVE, RELAY0, RELAY = "wire", "bare", "naive", "relay/0", "relay"
ALL_TARGETS = [WIRE, BARE, NAIVE, RELAY0, RELAY]
SERVERS = [BARE, NAIVE, RELAY0, RELAY]  # the ones that are processes of ours
CONCURRENCY = (1, 10, 50)
SIZES = ("5k", "50k")
SIZE_LABEL = {"5k": "5 KB text", "50k": "50 KB HTML", "25m": "25 MB"}

# The targets of issue 17, all relative to the naive relay measured in the same run.
THROUGHPUT_RATIO = 1.0  # relay (pool) / naive, every size and connection count
ADDED_MEDIAN_MS, ADDED_P99_MS = 1.0, 5.0  # 50 KB, relay - naive
CPU_ADDED_MS = 1.0  # server CPU per 5 KB message, relay - naive
BIG_PEAK_MB, BIG_TIME_RATIO = 150.0, 1.2
BUSY_P99_MS = 50.0  # another client's reply waits while the relay handles the 25 MB message
IDLE_RSS_MB, IDLE_CPU_PCT, READY_S = 60.0, 0.5, 1.0


@dataclass(frozen=True)
class Plan:
    repeat: int
    counts: dict[tuple[str, int], int]  # (size, connections) -> messages per smtp-source run
    latency_count: int
    warmup: int
    idle_seconds: float
    big_repeat: int


def make_plan(quick: bool, repeat: int | None) -> Plan:
    if quick:
        counts = {(s, c): n for s in SIZES for c, n in zip(CONCURRENCY, (30, 60, 100), strict=True)}
        return Plan(repeat or 1, counts, latency_count=20, warmup=5, idle_seconds=2, big_repeat=1)
    counts = {
        ("5k", 1): 300,
        ("5k", 10): 500,
        ("5k", 50): 600,
        ("50k", 1): 150,
        ("50k", 10): 250,
        ("50k", 50): 300,
    }
    reps = repeat or 3
    return Plan(reps, counts, latency_count=200, warmup=20, idle_seconds=10, big_repeat=min(reps, 3))


# -- results ----------------------------------------------------------------------------


@dataclass
class Results:
    throughput: dict[tuple[str, int, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_per_msg: dict[tuple[str, int, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    latency_median: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    latency_p99: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    big_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    big_peak_mb: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    busy_waits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # seconds, all runs
    own_waits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # without end of data
    ready_seconds: dict[str, float] = field(default_factory=dict)
    idle_rss_mb: dict[str, float] = field(default_factory=dict)
    idle_cpu_pct: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    log_errors: dict[str, tuple[int, str]] = field(default_factory=dict)  # server -> (count, first line)


def median(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of the per-repeat ratios a[i]/b[i] (both measured in the same repeat)."""
    return median(x / y for x, y in zip(a, b, strict=False) if y and not math.isnan(x) and not math.isnan(y))


def paired_diff(a: list[float], b: list[float]) -> float:
    return median(x - y for x, y in zip(a, b, strict=False))


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# -- the run ----------------------------------------------------------------------------


class Bench:
    def __init__(
        self, plan: Plan, workdir: Path, source: str, sink: str, only: list[str], suppressions: int = SUPPRESSIONS
    ):
        self.plan = plan
        self.suppressions = suppressions
        self.workdir = workdir
        self.source = source
        self.sink_path = sink
        self.only = only
        self.results = Results()
        self.procs: dict[str, Proc] = {}
        self.ports: dict[str, int] = {}
        self.files: dict[str, Path] = {}
        self.raw: dict[str, bytes] = {}
        self.watcher_result: watcher.Section | None = None
        self.watcher_missing = ""

    @property
    def targets(self) -> list[str]:
        return [t for t in ALL_TARGETS if t in self.only]

    # set-up

    def prepare_messages(self) -> None:
        for name, make in MESSAGES.items():
            self.raw[name] = make()
            self.files[name] = write_for_smtp_source(self.raw[name], self.workdir / f"{name}.eml")

    def relay_config(self, name: str, port: int, sink_port: int, pool_size: int, store: Path) -> Path:
        directory = self.workdir / name.replace("/", "-")
        data = directory / "data"
        data.mkdir(parents=True, mode=0o700)
        (directory / "rules").mkdir()
        shutil.copy(store, data / "store.sqlite3")
        settings = {
            "listen": {"host": "127.0.0.1", "port": port},
            "upstream": {
                "host": "127.0.0.1",
                "port": sink_port,
                "security": "none",
                "timeout_seconds": 60,
                "pool_size": pool_size,
            },
            "sender": {
                "name": "Anna Nowak",
                "company": "Nordlicht Software GmbH",
                "privacy_policy_url": "https://nordlicht.example/privacy",
                "opt_out_address": "privacy@nordlicht.example",
            },
            "data_dir": str(data),
            "rules_dir": str(directory / "rules"),
            "log": {"level": "info"},
        }
        path = directory / "config.yaml"
        path.write_text(yaml.safe_dump(settings))
        path.chmod(0o600)
        return path

    def start(self) -> None:
        sink_port = free_port()
        self.procs["sink"] = smtp_sink(self.sink_path, sink_port, self.workdir)
        self.procs["sink"].wait_ready(10)
        self.ports[WIRE] = sink_port

        store = self.workdir / "template-store.sqlite3"
        started = time.perf_counter()
        held = asyncio.run(fill(store, self.suppressions))
        progress(f"store with {held:,} suppressions filled in {time.perf_counter() - started:.1f} s")

        # Started one after another, so that each time to ready is measured on a quiet machine.
        for name in SERVERS:
            if name not in self.only:
                continue
            port = free_port()
            if name == BARE:
                args = ["bench.servers", "bare", "--port", str(port)]
            elif name == NAIVE:
                args = ["bench.servers", "naive", "--port", str(port), "--upstream", str(sink_port)]
            else:
                config = self.relay_config(name, port, sink_port, 0 if name == RELAY0 else 4, store)
                args = ["proxy", "-c", str(config), "serve"]
            proc = python_server(name.replace("/", "-"), args, port, self.workdir, REPO)
            self.procs[name] = proc
            self.ports[name] = port
            self.results.ready_seconds[name] = proc.wait_ready(30)
            progress(f"{name} ready in {self.results.ready_seconds[name] * 1000:.0f} ms (pid {proc.pid})")

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    # phases

    def idle(self) -> None:
        servers = [n for n in SERVERS if n in self.procs]
        time.sleep(1.0)  # let start-up work settle (e.g. the retry runner's first scan)
        before = {n: self.procs[n].cpu_seconds() for n in servers}
        t0 = time.perf_counter()
        time.sleep(self.plan.idle_seconds)
        elapsed = time.perf_counter() - t0
        for n in servers:
            proc = self.procs[n]
            self.results.idle_cpu_pct[n] = (proc.cpu_seconds() - before[n]) / elapsed * 100
            self.results.idle_rss_mb[n] = proc.rss_mb()
        progress(f"idle measured over {elapsed:.0f} s")

    def smtp_source(self, target: str, size: str, connections: int, count: int) -> float:
        """Messages per second for one smtp-source run; NaN when the target refused something."""
        argv = [
            self.source,
            "-s",
            str(connections),
            "-m",
            str(count),
            "-F",
            str(self.files[size]),
            "-N",  # a new recipient per message (1kontakt@firma.de, 2kontakt@...): first contacts
            "-f",
            SENDER,
            "-t",
            RECIPIENT,
            f"127.0.0.1:{self.ports[target]}",
        ]
        proc = self.procs.get(target)
        cpu0 = proc.cpu_seconds() if proc else 0.0
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or "fatal" in done.stderr or "error" in done.stderr.lower():
            message = (done.stderr.strip() or done.stdout.strip())[:300]
            self.results.errors.append(f"{target} {size} x{connections}: smtp-source: {message}")
            return math.nan
        if proc:
            self.results.cpu_per_msg[(size, connections, target)].append((proc.cpu_seconds() - cpu0) / count * 1000)
        return count / elapsed

    def warm_up(self) -> None:
        for target in self.targets:
            for size in SIZES:
                self.smtp_source(target, size, 1, self.plan.warmup)
        self.results.cpu_per_msg.clear()

    def throughput(self, rep: int) -> None:
        for size in SIZES:
            for connections in CONCURRENCY:
                count = self.plan.counts[(size, connections)]
                for target in self.targets:
                    rate = self.smtp_source(target, size, connections, count)
                    self.results.throughput[(size, connections, target)].append(rate)
                figures = ", ".join(
                    f"{t} {self.results.throughput[(size, connections, t)][-1]:.0f}" for t in self.targets
                )
                progress(f"repeat {rep + 1}: {size} x{connections}: {figures} msg/s")

    def latency(self, rep: int) -> None:
        for size in SIZES:
            for target in self.targets:
                if target == WIRE:
                    continue  # smtp-sink answers in microseconds; nothing to learn
                first = 1_000_000 * (rep + 1)
                try:
                    measure(self.ports[target], self.raw[size], self.plan.warmup, first=first)
                    run = measure(
                        self.ports[target], self.raw[size], self.plan.latency_count, first=first + self.plan.warmup
                    )
                except Exception as exc:
                    self.results.errors.append(f"{target} {size} latency: {exc}")
                    self.results.latency_median[(size, target)].append(math.nan)
                    self.results.latency_p99[(size, target)].append(math.nan)
                    continue
                self.results.latency_median[(size, target)].append(run.median_ms)
                self.results.latency_p99[(size, target)].append(run.p99_ms)
            progress(
                f"repeat {rep + 1}: latency {size}: "
                + ", ".join(self._latency_text(size, t) for t in self.targets if t != WIRE)
                + " ms (median/p99)"
            )

    def _latency_text(self, size: str, target: str) -> str:
        med = self.results.latency_median[(size, target)][-1]
        p99 = self.results.latency_p99[(size, target)][-1]
        return f"{target} {med:.2f}/{p99:.2f}"

    def big_message(self) -> None:
        raw = self.raw["25m"]
        payload = dot_stuff(raw)  # before the probe starts: its thread shares this interpreter
        for rep in range(self.plan.big_repeat):
            for target in self.targets:
                if target == RELAY0:
                    continue  # one message: the pool makes no difference
                proc = self.procs.get(target)
                if proc:
                    proc.reset_peak()
                # Also against smtp-sink alone (wire): the forwarding targets' probe messages go
                # into it, so its own stall while it takes in 25 MB is their floor.
                probe = Probe(self.ports[target], self.raw["5k"]).start()
                try:
                    seconds = send_one(self.ports[target], raw, payload=payload)
                except Exception as exc:
                    self.results.errors.append(f"{target} 25 MB: {exc}")
                    seconds = math.nan
                if probe is not None:
                    self.results.busy_waits[target] += probe.stop()
                    self.results.own_waits[target] += probe.own
                    if probe.errors:
                        self.results.errors.append(f"{target} 25 MB, other client: {probe.errors[0]}")
                self.results.big_seconds[target].append(seconds)
                if proc:
                    self.results.big_peak_mb[target].append(proc.peak_mb())
            progress(
                f"repeat {rep + 1}: 25 MB: "
                + ", ".join(f"{t} {v[-1]:.2f} s" for t, v in self.results.big_seconds.items())
            )

    def run(self, emit: Callable[[str, str], None] | None = None, watcher_section: bool = True) -> None:
        """Every phase; ``emit(section, text)`` is called as soon as a section's figures are
        complete, and a phase that fails is recorded and the next one still runs."""
        emit = emit or (lambda _name, _text: None)
        self.prepare_messages()
        self.start()
        self._phase("idle", self.idle)
        emit("idle", idle_section(self)[0])
        self._phase("warm-up", self.warm_up)
        for rep in range(self.plan.repeat):
            self._phase(f"throughput, repeat {rep + 1}", lambda rep=rep: self.throughput(rep))
            self._phase(f"latency, repeat {rep + 1}", lambda rep=rep: self.latency(rep))
        emit("throughput", throughput_section(self)[0])
        emit("cpu", cpu_section(self)[0])
        emit("latency", latency_section(self)[0])
        self._phase("25 MB", self.big_message)
        emit("big", big_section(self)[0])
        self._phase("logs", self.scan_logs)
        self.stop()  # the relay processes must not compete with the watcher for the CPU
        if watcher_section:
            self._phase("reply watcher", self.watcher)
            emit("watcher", watcher_section_text(self)[0])

    def _phase(self, name: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:  # one broken phase must not lose the others' figures
            self.results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            progress(f"{name} failed: {exc}")

    def watcher(self) -> None:
        try:
            self.watcher_result = watcher.run(quick=self.plan.repeat == 1, repeat=self.plan.repeat)
        except watcher.Unavailable as exc:
            self.watcher_missing = str(exc)

    def scan_logs(self) -> None:
        """Count ERROR lines in the servers' logs: the figures are only worth as much as the relaying."""
        for name in SERVERS:
            proc = self.procs.get(name)
            if proc is None or not proc.log.exists():
                continue
            lines = [x for x in proc.log.read_text(errors="replace").splitlines() if " ERROR " in x or "Traceback" in x]
            if lines:
                self.results.log_errors[name] = (len(lines), lines[0][:200])


# -- output -----------------------------------------------------------------------------


def fmt(value: float, digits: int = 0, suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(out)


def check(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


Section = tuple[str, dict[str, object]]  # the table, and its figures for --json


def throughput_section(bench: Bench) -> Section:
    r, targets = bench.results, bench.targets
    out = [f"Throughput, messages/s (smtp-source, new connection per message; median of {bench.plan.repeat} run(s))"]
    headers = ["scenario", *targets]
    relays = [t for t in (RELAY0, RELAY) if t in targets]
    if NAIVE in targets:
        headers += [f"{t}/naive" for t in relays]
    judged = NAIVE in targets and RELAY in targets
    if judged:
        headers.append("target")
    rows, data = [], {}
    for size in SIZES:
        for connections in CONCURRENCY:
            row = [f"{SIZE_LABEL[size]}, {connections} conn"]
            row += [fmt(median(r.throughput[(size, connections, t)])) for t in targets]
            entry: dict[str, object] = {t: _num(median(r.throughput[(size, connections, t)])) for t in targets}
            if NAIVE in targets:
                naive = r.throughput[(size, connections, NAIVE)]
                ratios = [paired_ratio(r.throughput[(size, connections, t)], naive) for t in relays]
                row += [fmt(x, 2) for x in ratios]
                entry.update({f"{t}/naive": _num(x) for t, x in zip(relays, ratios, strict=True)})
                if judged:
                    ratio = ratios[-1]
                    ok = None if math.isnan(ratio) else ratio >= THROUGHPUT_RATIO
                    row.append(f">={THROUGHPUT_RATIO:.2f} {check(ok)}")
                    entry["ok"] = ok
            rows.append(row)
            data[f"{size}/{connections}"] = entry
    out.append(table(headers, rows))
    return "\n".join(out), data


def cpu_section(bench: Bench) -> Section:
    r = bench.results
    servers = [t for t in bench.targets if t != WIRE]
    judged = NAIVE in servers and RELAY in servers
    out = ["Server CPU per message, ms (the process under test only; same runs as above)"]
    rows, data = [], {}
    for size in SIZES:
        for connections in CONCURRENCY:
            key = (size, connections)
            row = [f"{SIZE_LABEL[size]}, {connections} conn"]
            row += [fmt(median(r.cpu_per_msg[(*key, t)]), 2) for t in servers]
            entry: dict[str, object] = {t: _num(median(r.cpu_per_msg[(*key, t)])) for t in servers}
            if judged:
                added = paired_diff(r.cpu_per_msg[(*key, RELAY)], r.cpu_per_msg[(*key, NAIVE)])
                entry["added"] = _num(added)
                row.append(fmt(added, 2))
                if size == "5k" and not math.isnan(added):
                    entry["ok"] = added <= CPU_ADDED_MS
                    row.append(f"<=+{CPU_ADDED_MS:.0f} {check(added <= CPU_ADDED_MS)}")
                else:
                    row.append("")
            rows.append(row)
            data[f"{size}/{connections}"] = entry
    headers = ["scenario", *servers] + (["relay-naive", "target"] if judged else [])
    out.append(table(headers, rows))
    return "\n".join(out), data


def latency_section(bench: Bench) -> Section:
    r, plan = bench.results, bench.plan
    servers = [t for t in bench.targets if t != WIRE]
    out = [
        f"Latency, ms from end of DATA to the reply (one client, sequential; {plan.latency_count} messages a run, "
        f"median of {plan.repeat} run(s))"
    ]
    headers = ["message"]
    for t in servers:
        headers += [f"{t} med", f"{t} p99"]
    judged = NAIVE in servers and RELAY in servers
    if judged:
        headers += ["added med", "added p99", "target"]
    rows, data = [], {}
    for size in SIZES:
        row = [SIZE_LABEL[size]]
        entry: dict[str, object] = {}
        for t in servers:
            med, p99 = median(r.latency_median[(size, t)]), median(r.latency_p99[(size, t)])
            row += [fmt(med, 2), fmt(p99, 2)]
            entry[t] = {"median": _num(med), "p99": _num(p99)}
        if judged:
            add_med = paired_diff(r.latency_median[(size, RELAY)], r.latency_median[(size, NAIVE)])
            add_p99 = paired_diff(r.latency_p99[(size, RELAY)], r.latency_p99[(size, NAIVE)])
            row += [fmt(add_med, 2), fmt(add_p99, 2)]
            entry.update({"added_median": _num(add_med), "added_p99": _num(add_p99)})
            if size == "50k" and not math.isnan(add_med):
                ok = add_med <= ADDED_MEDIAN_MS and add_p99 <= ADDED_P99_MS
                row.append(f"<={ADDED_MEDIAN_MS:.0f}/<={ADDED_P99_MS:.0f} {check(ok)}")
                entry["ok"] = ok
            else:
                row.append("")
        rows.append(row)
        data[size] = entry
    out.append(table(headers, rows))
    return "\n".join(out), data


def big_section(bench: Bench) -> Section:
    r = bench.results
    targets = bench.targets
    big_targets = [t for t in targets if t != RELAY0]
    out = [
        f"One 25 MB message (MAIL to final reply; peak RSS = VmHWM of the server; meanwhile another client sends "
        f"5 KB messages: its reply waits; {bench.plan.big_repeat} run(s))"
    ]
    busy = {t: percentile(v, 99) * 1000 if v else math.nan for t, v in r.busy_waits.items()}
    own = {t: percentile(v, 99) * 1000 if v else math.nan for t, v in r.own_waits.items()}
    rows = [
        ["time, s"] + [fmt(median(r.big_seconds[t]), 2) for t in big_targets],
        ["peak RSS, MB"] + [fmt(median(r.big_peak_mb[t]), 0) if t != WIRE else "-" for t in big_targets],
        ["other client p99, ms"] + [fmt(busy.get(t, math.nan), 1) for t in big_targets],
        # the end of data waits for the upstream (smtp-sink, busy taking in the 25 MB): the
        # other replies are what the server answers by itself
        ["  without end of data"] + [fmt(own.get(t, math.nan), 1) for t in big_targets],
    ]
    data: dict[str, object] = {
        t: {
            "seconds": _num(median(r.big_seconds[t])),
            "peak_mb": _num(median(r.big_peak_mb[t])),
            "other_client_p99_ms": _num(busy.get(t, math.nan)),
            "other_client_p99_without_end_of_data_ms": _num(own.get(t, math.nan)),
        }
        for t in big_targets
    }
    headers = ["25 MB", *big_targets]
    if NAIVE in targets and RELAY in targets:
        headers.append("relay target")
        time_ratio = paired_ratio(r.big_seconds[RELAY], r.big_seconds[NAIVE])
        peak = median(r.big_peak_mb[RELAY])
        relay_busy = busy.get(RELAY, math.nan)
        oks = [
            None if math.isnan(time_ratio) else time_ratio <= BIG_TIME_RATIO,
            None if math.isnan(peak) else peak <= BIG_PEAK_MB,
            None if math.isnan(relay_busy) else relay_busy <= BUSY_P99_MS,
        ]
        rows[0].append(f"{fmt(time_ratio, 2)}x naive (<={BIG_TIME_RATIO} {check(oks[0])})")
        rows[1].append(f"<={BIG_PEAK_MB:.0f} {check(oks[1])}")
        rows[2].append(f"<={BUSY_P99_MS:.0f} {check(oks[2])}")
        rows[3].append("(shown, not the target)")
        data.update({"relay/naive_time": _num(time_ratio), "ok_time": oks[0], "ok_peak": oks[1], "ok_busy": oks[2]})
    out.append(table(headers, rows))
    return "\n".join(out), data


def idle_section(bench: Bench) -> Section:
    r, plan = bench.results, bench.plan
    servers = [t for t in bench.targets if t != WIRE]
    out = [f"Idle service (RSS ~1 s after ready; CPU over {plan.idle_seconds:.0f} s idle; ready = 220 answered)"]
    rows = [
        ["time to ready, ms"] + [fmt(r.ready_seconds.get(t, math.nan) * 1000) for t in servers],
        ["RSS, MB"] + [fmt(r.idle_rss_mb.get(t, math.nan), 1) for t in servers],
        ["CPU, %"] + [fmt(r.idle_cpu_pct.get(t, math.nan), 2) for t in servers],
    ]
    data: dict[str, object] = {
        t: {
            "ready_ms": _num(r.ready_seconds.get(t, math.nan) * 1000),
            "rss_mb": _num(r.idle_rss_mb.get(t, math.nan)),
            "cpu_pct": _num(r.idle_cpu_pct.get(t, math.nan)),
        }
        for t in servers
    }
    headers = ["idle", *servers]
    if RELAY in servers and RELAY in r.idle_rss_mb:
        headers.append("relay target")
        oks = [
            r.ready_seconds[RELAY] <= READY_S,
            r.idle_rss_mb[RELAY] <= IDLE_RSS_MB,
            r.idle_cpu_pct[RELAY] < IDLE_CPU_PCT,
        ]
        rows[0].append(f"<={READY_S * 1000:.0f} {check(oks[0])}")
        rows[1].append(f"<={IDLE_RSS_MB:.0f} {check(oks[1])}")
        rows[2].append(f"~0 {check(oks[2])}")
        data.update({"ok_ready": oks[0], "ok_rss": oks[1], "ok_cpu": oks[2]})
    out.append(table(headers, rows))
    return "\n".join(out), data


def watcher_section_text(bench: Bench) -> Section:
    title = f"Reply watcher (target: {watcher.TARGET})"
    if bench.watcher_result is not None:
        rows = [list(x) for x in bench.watcher_result.rows]
        return f"{title}\n{table(['reply watcher', 'figure'], rows)}", bench.watcher_result.figures
    why = bench.watcher_missing or "not measured (see the errors below)"
    return f"{title}\n  not measured: {why}", {"not_measured": why}


def errors_text(bench: Bench) -> str:
    r = bench.results
    out = []
    for name, (count, first) in r.log_errors.items():
        out.append(f"{name} logged {count} error line(s); first: {first}")
    if r.errors:
        out.append("Errors (figures shown as '-'):")
        out += [f"  {e}" for e in r.errors[:20]]
        if len(r.errors) > 20:
            out.append(f"  ... and {len(r.errors) - 20} more")
    return "\n".join(out)


SECTIONS: dict[str, Callable[[Bench], Section]] = {
    "throughput": throughput_section,
    "cpu": cpu_section,
    "latency": latency_section,
    "big": big_section,
    "idle": idle_section,
    "watcher": watcher_section_text,
}


def report(bench: Bench, plan: Plan, header: str) -> str:
    """Every section's table (as printed during the run), and the errors."""
    parts = [header, ""]
    for make in SECTIONS.values():
        parts += [make(bench)[0], ""]
    parts.append(errors_text(bench))
    return "\n".join(parts)


def figures(bench: Bench) -> dict[str, object]:
    """Everything for --json: per section the figures and each target's verdict."""
    out: dict[str, object] = {name: make(bench)[1] for name, make in SECTIONS.items()}
    out["errors"] = bench.results.errors
    out["log_errors"] = {k: {"count": c, "first": f} for k, (c, f) in bench.results.log_errors.items()}
    return out


def _print(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None, print_fn: Callable[[str], None] = _print) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few messages, one run: a smoke check (~1 min)")
    parser.add_argument("--repeat", type=int, help="runs per figure (default 3; --quick: 1)")
    parser.add_argument(
        "--only",
        default=",".join(ALL_TARGETS),
        help=f"comma-separated targets to run (default: all of {','.join(ALL_TARGETS)})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, store)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout (tables on stderr)")
    parser.add_argument("--no-watcher", action="store_true", help="leave out the reply-watcher section")
    args = parser.parse_args(argv)
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(only) - set(ALL_TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be 1 or more")

    print_table = print_fn
    if args.json:

        def print_table(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

    # Everything the run needs, before any work: never a missing tool after minutes.
    source, sink = ensure_postfix_tools()
    dovecot = ensure_dovecot() if not args.no_watcher else None
    if not args.no_watcher:
        try:
            server = watcher.available_server()
            if server != watcher.DOVECOT:
                print_table(
                    "note: dovecot not installed; the reply-watcher section uses pymap and projects the catch-up"
                )
        except watcher.Unavailable as exc:
            print_table(f"note: the reply-watcher section will be skipped: {exc}")
    plan = make_plan(args.quick, args.repeat)
    load0, busy0 = machine_load(), machine_busy_seconds()
    header = (
        f"gdpr-mail-proxy benchmark, {time.strftime('%Y-%m-%d %H:%M')}"
        f"{' (--quick: indicative only)' if args.quick else ''}\n"
        f"machine: {machine_description()}\n"
        f"load average at the start: {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} (1/5/15 min)\n"
        f"relay store: {SUPPRESSIONS:,} suppressions; recipients kontakt@firma.de-style (EU, none suppressed); "
        f"upstream and wire: smtp-sink on loopback; watcher: {'dovecot' if dovecot else 'pymap or none'}"
    )
    print_table(header)
    print_table("(progress on stderr; each table is printed as soon as its figures are complete)")
    workdir = Path(tempfile.mkdtemp(prefix="gdpr-proxy-bench-"))
    workdir.chmod(0o777)  # smtp-sink drops privileges to 'nobody' when run as root
    bench = Bench(plan, workdir, source, sink, only)
    started = time.perf_counter()

    def emit(_name: str, text: str) -> None:
        print_table("")
        print_table(text)

    try:
        bench.run(emit, watcher_section=not args.no_watcher)
    except Exception as exc:  # set-up failed (a server did not start): say so, print what exists
        bench.results.errors.append(f"run: {type(exc).__name__}: {exc}")
    finally:
        bench.stop()
        if args.keep:
            print_table(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    busy1 = machine_busy_seconds()
    elapsed = time.perf_counter() - started
    # The whole machine's CPU use during the run, ours included: how shared the machine was.
    busy_pct = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9) * 100
    load1 = machine_load()
    footer = (
        f"machine CPU busy during the run: {busy_pct:.0f} % of all cores (this benchmark included); "
        f"load average at the end: {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}\n(took {elapsed:.0f} s)"
    )
    errors = errors_text(bench)
    if errors:
        print_table("")
        print_table(errors)
    print_table("")
    print_table(footer)
    if args.json:
        document = {
            "header": header,
            "machine": machine_description(),
            "load_start": load0,
            "load_end": load1,
            "machine_busy_pct": round(busy_pct, 1),
            "seconds": round(elapsed, 1),
            "plan": {"repeat": plan.repeat, "quick": args.quick},
            **figures(bench),
        }
        print_fn(json.dumps(document, indent=2, default=str))
    return 1 if bench.results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
