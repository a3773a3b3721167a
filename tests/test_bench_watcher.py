"""Smoke test of the reply-watcher benchmark (bench/watcher.py): its parts run and return
sane numbers at a small scale, against a real IMAP server (Dovecot when installed, and pymap
from the test extras).  No timing is judged."""

from __future__ import annotations

import email
import email.policy
import math
from pathlib import Path

import pytest

from bench import watcher
from bench.watcher_data import fixture_replies, messages
from proxy.classify.classifier import classify
from proxy.rules.ruleset import load_rules


def test_generated_mailbox_is_a_realistic_mix() -> None:
    generated = list(messages(300))
    kinds = {kind for kind, _, _ in generated}
    assert kinds == {"reply", "auto-reply", "bounce", "opt-out"}
    ids = set()
    for _, attached, raw in generated:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        ids.add(msg["Message-ID"])
        if attached:
            pdf = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
            assert len(pdf) == 1 and 1_000_000 <= len(pdf[0].get_content()) <= 5_000_100
    assert len(ids) == len(generated)  # every message its own Message-ID: no duplicate short-cut
    assert any(attached for _, attached, _ in generated)


def test_personalised_fixtures_classify_as_the_originals() -> None:
    rules = load_rules()
    originals = {
        classify(raw, rules.reply_rules, rules.footer_fingerprints).verdict for raw in fixture_replies().values()
    }
    generated = {classify(raw, rules.reply_rules, rules.footer_fingerprints).verdict for _, _, raw in messages(200)}
    assert generated <= originals and {"opt-out", "bounce", "auto-reply", "none"} <= generated


def test_classify_rate_is_a_number() -> None:
    run = watcher.measure_classify(200)
    assert run.replies == 200 and run.per_cpu_second > 0 and run.per_wall_second > 0
    assert run.verdicts.get("opt-out", 0) > 0 and run.verdicts.get("bounce", 0) > 0


def _server_or_skip(kind: str) -> str:
    try:
        return watcher.available_server(kind)
    except watcher.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("kind", [watcher.DOVECOT, watcher.PYMAP])
def test_maildir_is_seen_by_the_server_and_caught_up(tmp_path: Path, kind: str) -> None:
    mailbox, runs = watcher.measure_catch_up(tmp_path, 50, repeat=1, server_kind=_server_or_skip(kind))
    assert mailbox.messages == 50 and sum(mailbox.kinds.values()) == 50
    (run,) = runs
    assert run.server == kind
    assert run.handled == 50  # pymap saw every file written directly into its maildir
    assert run.seconds > 0 and run.watcher_cpu > 0 and run.server_cpu >= 0
    assert run.suppressed > 0  # opt-outs and bounces reached the store
    assert 0 < run.bytes_received < 50 * 64 * 1024  # at most the capped parts, never a PDF
    rows = watcher.rows_for(
        [watcher.measure_classify(50)],
        mailbox,
        runs,
        [watcher.LiveRun([0.5], 0.01, 1.0, True)],
    )
    assert all(label and figure for label, figure in rows)
    assert any("PROJECTED" in label for label, _ in rows)  # 50 messages: never shown as a measured 10,000


def test_opt_out_arrives_while_idling(tmp_path: Path) -> None:
    live = watcher.measure_live(tmp_path, samples=1, idle_seconds=0.5, background=5)
    assert live.idling
    assert len(live.latencies) == 1 and not math.isnan(live.latencies[0]) and live.latencies[0] > 0
    assert live.idle_cpu_pct >= 0
