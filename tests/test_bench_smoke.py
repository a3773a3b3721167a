"""Smoke tests of the benchmark harness (bench/): its parts work, fast; no figures are judged.

The Python parts (messages, store filler, baselines, latency client, report) always run;
the parts that drive Postfix's smtp-source/smtp-sink are skipped when those are absent.
"""

from __future__ import annotations

import email
import email.policy
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import messages
from bench.latency import Probe, dot_stuff, measure, percentile, send_one
from bench.procs import Proc, find_tool, free_port, python_server, smtp_sink
from bench.run import NAIVE, RELAY, WIRE, Bench, figures, make_plan, report
from bench.store_fill import fill
from proxy.store import Store
from tests.upstream import RecordingServer

REPO = Path(__file__).resolve().parent.parent


def test_messages_are_realistic() -> None:
    small = messages.plain_5k()
    assert 4_500 <= len(small) <= 5_500
    html = messages.html_50k()
    assert 45_000 <= len(html) <= 60_000
    assert b"\r\n" in html and b"\n" not in html.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(html, policy=email.policy.default)
    types = [part.get_content_type() for part in parsed.walk()]
    assert types == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    body = parsed.get_body(("html",))
    assert body is not None and body["Content-Transfer-Encoding"] == "quoted-printable"
    text = body.get_content()
    assert messages.MAILTRACK_PIXEL in text and "t.sidekickopen06.com" in text
    assert "cid:logo.nordlicht@nordlicht.example" in text
    big = messages.attachment_25m(size=1_000_000)
    assert 950_000 <= len(big) <= 1_050_000
    assert email.message_from_bytes(big, policy=email.policy.default).get_content_type() == "multipart/mixed"


def test_dot_stuffing_and_percentile() -> None:
    assert dot_stuff(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert percentile([float(x) for x in range(1, 201)], 99) == 198
    assert percentile([5.0], 99) == 5


async def test_store_fill_holds_no_benchmark_recipient(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    assert await fill(path, 2_000) == 2_000
    store = await Store.open(path)
    try:
        assert await store.find_suppression("kontakt@firma.de") is None
        assert await store.find_suppression("7kontakt@firma7.de") is None
    finally:
        await store.close()


@pytest.fixture
def recording_upstream() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


def _server(kind: str, tmp_path: Path, *extra: str) -> Proc:
    port = free_port()
    proc = python_server(kind, ["bench.servers", kind, "--port", str(port), *extra], port, tmp_path, REPO)
    proc.wait_ready(20)
    return proc


def test_naive_relay_and_latency_client(tmp_path: Path, recording_upstream: RecordingServer) -> None:
    naive = _server("naive", tmp_path, "--upstream", str(recording_upstream.port))
    try:
        run = measure(naive.port, messages.html_50k(), 5)
        assert len(run.samples) == 5 and all(0 < s < 5 for s in run.samples)
        assert run.median_ms > 0 and run.p99_ms >= run.median_ms
        assert all(total >= after for total, after in zip(run.totals, run.samples, strict=True))
        assert naive.rss_mb() > 5 and naive.peak_mb() >= naive.rss_mb() * 0.5
        assert naive.cpu_seconds() > 0
        assert not math.isnan(naive.ready_seconds)
    finally:
        naive.stop()
    received = recording_upstream.received
    assert len(received) == 5
    assert len({r.rcpt_tos[0] for r in received}) == 5
    ids = {email.message_from_bytes(r.data)["Message-ID"] for r in received}
    assert len(ids) == 5
    assert received[0].data.rstrip(b"\r\n").endswith(messages.html_50k().split(b"\r\n")[-2])


def test_bare_server_takes_a_big_message(tmp_path: Path) -> None:
    bare = _server("bare", tmp_path)
    try:
        assert bare.reset_peak() in (True, False)
        seconds = send_one(bare.port, messages.attachment_25m(size=2_000_000))
        assert 0 < seconds < 20
        assert bare.peak_mb() > 0
    finally:
        bare.stop()


def test_report_renders_with_missing_figures(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    bench = Bench(plan, tmp_path, "smtp-source", "smtp-sink", [WIRE, NAIVE, RELAY])
    r = bench.results
    r.throughput[("5k", 1, NAIVE)].append(100.0)
    r.throughput[("5k", 1, RELAY)].append(math.nan)
    r.latency_median[("50k", NAIVE)].append(4.0)
    r.latency_p99[("50k", NAIVE)].append(6.0)
    r.latency_median[("50k", RELAY)].append(5.0)
    r.latency_p99[("50k", RELAY)].append(9.0)
    r.ready_seconds.update({NAIVE: 0.5, RELAY: 0.8})
    r.idle_rss_mb.update({NAIVE: 25.0, RELAY: 40.0})
    r.idle_cpu_pct.update({NAIVE: 0.0, RELAY: 0.0})
    text = report(bench, plan, "header")
    assert "Throughput" in text and "Latency" in text and "25 MB" in text and "Idle" in text
    assert "<=1/<=5 ok" in text  # added 1.0 ms median, 3.0 ms p99
    assert "Reply watcher" in text and "not measured" in text
    r.latency_p99[("50k", RELAY)][-1] = 12.0
    assert "<=1/<=5 MISSED" in report(bench, plan, "header")
    data = json.loads(json.dumps(figures(bench)))  # every figure serialisable, NaN as null
    assert data["latency"]["50k"]["added_median"] == 1.0 and data["latency"]["50k"]["ok"] is False
    assert data["throughput"]["5k/1"][RELAY] is None  # a failed run is a missing figure, not NaN


def test_a_failing_phase_keeps_the_other_tables(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    bench = Bench(plan, tmp_path, "smtp-source", "smtp-sink", [NAIVE, RELAY])

    def broken() -> None:
        raise RuntimeError("upstream vanished")

    bench._phase("25 MB", broken)
    assert bench.results.errors == ["25 MB: RuntimeError: upstream vanished"]
    assert "Idle" in report(bench, plan, "header")  # the other sections still render


def test_probe_times_every_reply_of_another_client(tmp_path: Path, recording_upstream: RecordingServer) -> None:
    naive = _server("naive", tmp_path, "--upstream", str(recording_upstream.port))
    try:
        probe = Probe(naive.port, messages.plain_5k()).start()
        time.sleep(0.5)
        samples = probe.stop()
    finally:
        naive.stop()
    assert not probe.errors
    assert len(samples) >= 7 and len(samples) % 7 == 0  # greeting, EHLO, MAIL, RCPT, DATA, end of data, QUIT
    assert all(0 < s < 5 for s in samples)
    assert len(recording_upstream.received) == len(samples) // 7
    assert len(probe.own) == len(samples) // 7 * 6  # every reply but the end of data, which waits for the upstream


@pytest.mark.skipif(
    not (find_tool("smtp-source") and find_tool("smtp-sink")),
    reason="Postfix's smtp-source/smtp-sink not installed (apt-get install postfix)",
)
def test_postfix_tools_drive_sink_and_relay(tmp_path: Path) -> None:
    source, sink = find_tool("smtp-source"), find_tool("smtp-sink")
    assert source and sink
    tmp_path.chmod(0o777)  # smtp-sink runs as 'nobody' when the tests run as root
    plan = make_plan(quick=True, repeat=1)
    bench = Bench(plan, tmp_path, source, sink, [WIRE, RELAY], suppressions=1_000)
    try:
        bench.prepare_messages()
        bench.start()
        for target in (WIRE, RELAY):
            rate = bench.smtp_source(target, "50k", 2, 6)
            assert rate > 0, bench.results.errors
        run = measure(bench.ports[RELAY], bench.raw["50k"], 3)
        assert len(run.samples) == 3
    finally:
        bench.stop()
    assert not bench.results.errors
    assert "footer" in (tmp_path / "relay.log").read_text()


def test_smtp_sink_accepts_a_message(tmp_path: Path) -> None:
    sink = find_tool("smtp-sink")
    if not sink:
        pytest.skip("Postfix's smtp-sink not installed (apt-get install postfix)")
    tmp_path.chmod(0o777)
    proc = smtp_sink(sink, free_port(), tmp_path)
    try:
        proc.wait_ready(10)
        assert send_one(proc.port, messages.plain_5k()) < 5
    finally:
        proc.stop()
