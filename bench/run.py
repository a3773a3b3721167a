"""Benchmark the relay against its baselines, all measured in the same run.

    bench/run [--quick] [--repeat N] [--keep]      (or: .venv/bin/python -m bench.run ...)

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
from .latency import measure, send_one
from .messages import MESSAGES, RECIPIENT, SENDER, write_for_smtp_source
from .procs import Proc, ensure_postfix_tools, free_port, machine_description, python_server, smtp_sink
from .store_fill import fill

REPO = Path(__file__).resolve().parent.parent
SUPPRESSIONS = 100_000

WIRE, BARE, NAIVE, RELAY0, RELAY = "wire", "bare", "naive", "relay/0", "relay"
ALL_TARGETS = [WIRE, BARE, NAIVE, RELAY0, RELAY]
SERVERS = [BARE, NAIVE, RELAY0, RELAY]  # the ones that are processes of ours
CONCURRENCY = (1, 10, 50)
SIZES = ("5k", "50k")
SIZE_LABEL = {"5k": "5 KB text", "50k": "50 KB HTML", "25m": "25 MB"}


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
        for rep in range(self.plan.big_repeat):
            for target in self.targets:
                if target == RELAY0:
                    continue  # one message: the pool makes no difference
                proc = self.procs.get(target)
                if proc:
                    proc.reset_peak()
                try:
                    seconds = send_one(self.ports[target], raw)
                except Exception as exc:
                    self.results.errors.append(f"{target} 25 MB: {exc}")
                    seconds = math.nan
                self.results.big_seconds[target].append(seconds)
                if proc:
                    self.results.big_peak_mb[target].append(proc.peak_mb())
            progress(
                f"repeat {rep + 1}: 25 MB: "
                + ", ".join(f"{t} {v[-1]:.2f} s" for t, v in self.results.big_seconds.items())
            )

    def run(self) -> None:
        self.prepare_messages()
        self.start()
        self.idle()
        self.warm_up()
        for rep in range(self.plan.repeat):
            self.throughput(rep)
            self.latency(rep)
        self.big_message()
        self.scan_logs()

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


def report(bench: Bench, plan: Plan, header: str) -> str:
    r = bench.results
    targets = bench.targets
    out = [header, ""]

    # throughput
    out.append(f"Throughput, messages/s (smtp-source, new connection per message; median of {plan.repeat} run(s))")
    headers = ["scenario", *targets]
    relays = [t for t in (RELAY0, RELAY) if t in targets]
    if NAIVE in targets:
        headers += [f"{t}/naive" for t in relays]
    if NAIVE in targets and RELAY in targets:
        headers.append("target")
    rows = []
    for size in SIZES:
        for connections in CONCURRENCY:
            label = f"{SIZE_LABEL[size]}, {connections} conn"
            row = [label] + [fmt(median(r.throughput[(size, connections, t)])) for t in targets]
            if NAIVE in targets:
                naive = r.throughput[(size, connections, NAIVE)]
                ratios = [paired_ratio(r.throughput[(size, connections, t)], naive) for t in relays]
                row += [fmt(x, 2) for x in ratios]
                if RELAY in targets:
                    ratio = ratios[-1]
                    row.append(f">=0.80 {check(ratio >= 0.8)}" if connections > 1 and not math.isnan(ratio) else "")
            rows.append(row)
    out += [table(headers, rows), ""]

    servers = [t for t in targets if t != WIRE]
    out.append("Server CPU per message, ms (the process under test only; same runs as above)")
    rows = []
    for size in SIZES:
        for connections in CONCURRENCY:
            rows.append(
                [f"{SIZE_LABEL[size]}, {connections} conn"]
                + [fmt(median(r.cpu_per_msg[(size, connections, t)]), 2) for t in servers]
            )
    out += [table(["scenario", *servers], rows), ""]

    # latency
    out.append(
        f"Latency, ms from end of DATA to the reply (one client, sequential; {plan.latency_count} messages a run, "
        f"median of {plan.repeat} run(s))"
    )
    headers = ["message"]
    for t in servers:
        headers += [f"{t} med", f"{t} p99"]
    if NAIVE in servers and RELAY in servers:
        headers += ["added med", "added p99", "target"]
    rows = []
    for size in SIZES:
        row = [SIZE_LABEL[size]]
        for t in servers:
            row += [fmt(median(r.latency_median[(size, t)]), 2), fmt(median(r.latency_p99[(size, t)]), 2)]
        if NAIVE in servers and RELAY in servers:
            add_med = paired_diff(r.latency_median[(size, RELAY)], r.latency_median[(size, NAIVE)])
            add_p99 = paired_diff(r.latency_p99[(size, RELAY)], r.latency_p99[(size, NAIVE)])
            row += [fmt(add_med, 2), fmt(add_p99, 2)]
            if size == "50k" and not math.isnan(add_med):
                row.append(f"<=2/<=10 {check(add_med <= 2 and add_p99 <= 10)}")
            else:
                row.append("")
        rows.append(row)
    out += [table(headers, rows), ""]

    # 25 MB
    big_targets = [t for t in targets if t != RELAY0]
    out.append(f"One 25 MB message (MAIL to final reply; peak RSS = VmHWM of the server; {plan.big_repeat} run(s))")
    rows = [
        ["time, s"] + [fmt(median(r.big_seconds[t]), 2) for t in big_targets],
        ["peak RSS, MB"] + [fmt(median(r.big_peak_mb[t]), 0) if t != WIRE else "-" for t in big_targets],
    ]
    headers = ["25 MB", *big_targets]
    if NAIVE in targets and RELAY in targets:
        headers.append("relay/naive")
        time_ratio = paired_ratio(r.big_seconds[RELAY], r.big_seconds[NAIVE])
        rows[0].append(f"{fmt(time_ratio, 2)} (target <=1.5 {check(time_ratio <= 1.5)})")
        peak = median(r.big_peak_mb[RELAY])
        rows[1].append(f"relay {fmt(peak, 0)} MB (target <=150 {check(peak <= 150)})")
    out += [table(headers, rows), ""]

    # idle
    out.append(f"Idle service (RSS ~1 s after ready; CPU over {plan.idle_seconds:.0f} s idle; ready = 220 answered)")
    rows = [
        ["time to ready, ms"] + [fmt(r.ready_seconds.get(t, math.nan) * 1000) for t in servers],
        ["RSS, MB"] + [fmt(r.idle_rss_mb.get(t, math.nan), 1) for t in servers],
        ["CPU, %"] + [fmt(r.idle_cpu_pct.get(t, math.nan), 2) for t in servers],
    ]
    headers = ["idle", *servers]
    if RELAY in servers:
        headers.append("relay target")
        rows[0].append(f"<=1000 {check(r.ready_seconds[RELAY] <= 1.0)}")
        rows[1].append(f"<=60 {check(r.idle_rss_mb[RELAY] <= 60)}")
        rows[2].append(f"~0 {check(r.idle_cpu_pct[RELAY] < 0.5)}")
    out += [table(headers, rows), ""]

    # reply watcher (hook)
    rows_w = watcher.run(quick=plan.repeat == 1, repeat=plan.repeat)
    out.append(f"Reply watcher (target: {watcher.TARGET})")
    if rows_w is None:
        out.append("  not measured yet: the hook is bench/watcher.py (run)")
    else:
        out.append(table(["reply watcher", "figure"], [list(x) for x in rows_w]))
    out.append("")

    for name, (count, first) in r.log_errors.items():
        out.append(f"{name} logged {count} error line(s); first: {first}")
    if r.log_errors:
        out.append("")
    if r.errors:
        out.append("Errors (figures shown as '-'):")
        out += [f"  {e}" for e in r.errors[:20]]
        if len(r.errors) > 20:
            out.append(f"  ... and {len(r.errors) - 20} more")
    return "\n".join(out)


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
    args = parser.parse_args(argv)
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(only) - set(ALL_TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be 1 or more")

    source, sink = ensure_postfix_tools()
    plan = make_plan(args.quick, args.repeat)
    header = (
        f"gdpr-mail-proxy benchmark, {time.strftime('%Y-%m-%d %H:%M')}"
        f"{' (--quick: indicative only)' if args.quick else ''}\n"
        f"machine: {machine_description()}\n"
        f"relay store: {SUPPRESSIONS:,} suppressions; recipients kontakt@firma.de-style (EU, none suppressed); "
        "upstream and wire: smtp-sink on loopback"
    )
    print_fn(header.splitlines()[0] + " — running, progress on stderr")
    workdir = Path(tempfile.mkdtemp(prefix="gdpr-proxy-bench-"))
    workdir.chmod(0o777)  # smtp-sink drops privileges to 'nobody' when run as root
    bench = Bench(plan, workdir, source, sink, only)
    started = time.perf_counter()
    try:
        bench.run()
    finally:
        bench.stop()
        if args.keep:
            print_fn(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_fn("")
    print_fn(report(bench, plan, header))
    print_fn(f"(took {time.perf_counter() - started:.0f} s)")
    return 1 if bench.results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
