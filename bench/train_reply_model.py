"""Rebuild the reply model (proxy/classify/reply_model.bin) from the training part of the reply corpus.

    .venv/bin/python bench/train_reply_model.py            train, print the cross-validation figures, write the file
    .venv/bin/python bench/train_reply_model.py --check    exit 1 when the shipped file is stale

Only the training part (``build.part_of``) is read; the evaluation part is for bench/replies.py.
Each training text is rendered into its client messages and the person's text is extracted the
way the classifier does at run time (see proxy/classify/model.py).  Label 1: an opt-out or
erasure request; 0: a neutral reply or an absence notice; texts written as uncertain and the
absence notices that quote somebody's opt-out (kind trap-out-of-office-quoting) are left out.

The thresholds come from 5-fold cross-validation, folds made by text so that two renderings of
one text never sit on both sides, with the model asked only where it is at run time (a none the
rules did not read, a request the rules only infer): ``flag`` is the lowest score that flags at
most FLAG_BUDGET of the out-of-fold neutral texts the rules answer none; ``veto`` the highest that
holds back at most VETO_BUDGET of the out-of-fold requests the rules find, capped at VETO_CAP (the model must be
sure that nothing is asked); 0 (off) when the budget allows none.  How many of the rules' false
opt-outs the veto catches is printed, not optimised: the rules are tuned on this same part, so
few are left here to count.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from proxy.classify import mimeparse  # noqa: E402
from proxy.classify import model as reply_model  # noqa: E402
from proxy.classify.classifier import classify  # noqa: E402
from proxy.classify.intent import judge, read_body  # noqa: E402
from proxy.classify.reader import reply_from_message  # noqa: E402
from proxy.rules.ruleset import load_rules  # noqa: E402
from tests.corpus.replies import build  # noqa: E402

FOLDS = 5
FLAG_BUDGET = 0.01  # of the neutral texts the rules answer none
VETO_BUDGET = 0.01  # of the requests the rules find
FLAG_FLOOR = 0.5  # the model must read a request more likely than not
VETO_CAP = 0.2  # the model must be sure there is none
LEFT_OUT_KINDS = ("trap-out-of-office-quoting",)


@dataclass(frozen=True)
class Record:
    """One rendered training message."""

    id: str
    text_id: str
    expect: str
    text: str  # what the model reads
    grammar: str  # the rules' verdict, without the model
    where: str
    vetoable: bool  # the rules' request is one the model may hold back (model.vetoable)
    read: bool  # the rules read the words they answered none for: never flagged


def records(part: str = "train") -> list[Record]:
    rules = load_rules()  # the shipped rules only
    reply_rules, fingerprints = rules.reply_rules, rules.footer_fingerprints
    out = []
    for case in build.iter_corpus(part):
        if case.expect == "uncertain" or case.kind in LEFT_OUT_KINDS:
            continue
        reply = reply_from_message(mimeparse.parse(case.raw), fingerprints, reply_rules.quoting)
        text = reply_model.text_of_reply(reply.new_text, reply_rules)
        verdict = classify(case.raw, reply_rules, fingerprints, second_signal=False)
        judgement = judge(reply.subject, reply.new_text, reply_rules)
        vetoable = reply_model.vetoable(judgement)
        body, guess = read_body(reply.new_text, reply_rules)
        read = bool(judgement.reason) or reply_model.rules_read_the_words(body, guess, reply_rules)
        out.append(Record(case.id, case.text_id, case.expect, text, verdict.verdict, verdict.where, vetoable, read))
    return out


def label(record: Record) -> int:
    return 1 if record.expect in reply_model.REQUESTS else 0


def examples_of(recs: Sequence[Record]) -> list[tuple[str, str, int]]:
    """(text id, text, label), one per distinct extracted text of a corpus text, in corpus order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in recs:
        if (r.text_id, r.text) not in seen:
            seen.add((r.text_id, r.text))
            out.append((r.text_id, r.text, label(r)))
    return out


def texts_sha256(examples: Sequence[tuple[str, str, int]]) -> str:
    digest = hashlib.sha256()
    for _, text, y in examples:
        digest.update(f"{y}\t{text}\x00".encode())
    return digest.hexdigest()


def fold_of(text_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"fold/{text_id}".encode()).digest()[:4], "big") % FOLDS


def flag_threshold(neutral: Sequence[float], budget: float, total: int | None = None) -> float:
    """The lowest score that flags at most ``budget`` of ``total`` (default: these scores)."""
    ranked = sorted(neutral, reverse=True)
    if not ranked:
        return 1.0
    k = int(budget * (len(ranked) if total is None else total))  # this many may be flagged
    if k >= len(ranked):
        return ranked[-1]
    if k == 0:
        return min(1.0, ranked[0] + 1e-6)
    return (ranked[k - 1] + ranked[k]) / 2 if ranked[k - 1] > ranked[k] else min(1.0, ranked[k] + 1e-6)


def veto_threshold(requests: Sequence[float], budget: float, total: int | None = None) -> float:
    """The highest score that holds back at most ``budget`` of ``total`` (default: these scores; 0: none)."""
    ranked = sorted(requests)
    k = int(budget * (len(ranked) if total is None else total))
    if k == 0 or not ranked:
        return 0.0
    if k >= len(ranked):
        return ranked[-1]
    return (ranked[k - 1] + ranked[k]) / 2 if ranked[k - 1] < ranked[k] else max(0.0, ranked[k] - 1e-6)


def _share(n: int, total: int) -> str:
    return f"{n} of {total} ({n / total:.1%})" if total else "0 of 0"


def cross_validate(
    recs: Sequence[Record],
    examples: Sequence[tuple[str, str, int]],
    spec: reply_model.Spec,
    out: Any = print,
    flag_budget: float = FLAG_BUDGET,
    veto_budget: float = VETO_BUDGET,
) -> tuple[float, float, dict[str, Any]]:
    feats = [reply_model.features(reply_model.words_of(t, spec), spec) for _, t, _ in examples]
    oof: dict[tuple[str, str], float] = {}
    for fold in range(FOLDS):
        train = [(f, y) for (tid, _, y), f in zip(examples, feats, strict=True) if fold_of(tid) != fold]
        bias, weights = reply_model.fit(train, spec)
        for (tid, text, _), f in zip(examples, feats, strict=True):
            if fold_of(tid) == fold:
                oof[(tid, text)] = reply_model.predict(bias, weights, f)
    score = {r.id: oof[(r.text_id, r.text)] for r in recs}
    body = [r for r in recs if r.where != "subject"]
    # what the model may change: none the rules did not read, requests they only infer
    never = -1.0  # the score of a reply the model is not asked about: never flagged
    ever = 2.0  # nor vetoed
    neutral_none = [never if r.read else score[r.id] for r in body if label(r) == 0 and r.grammar == "none"]
    found = [score[r.id] if r.vetoable else ever for r in body if label(r) == 1 and r.grammar in reply_model.REQUESTS]
    missed = [never if r.read else score[r.id] for r in body if label(r) == 1 and r.grammar == "none"]
    false_found = [
        score[r.id] if r.vetoable else ever for r in body if label(r) == 0 and r.grammar in reply_model.REQUESTS
    ]
    flag = max(FLAG_FLOOR, flag_threshold([s for s in neutral_none if s >= 0], flag_budget, len(neutral_none)))
    veto = min(VETO_CAP, veto_threshold([s for s in found if s <= 1], veto_budget, len(found)))
    caught = sum(s <= veto for s in false_found) if veto > 0 else 0
    # accuracy of the model alone at 0.5, by message
    right = sum((score[r.id] >= 0.5) == bool(label(r)) for r in recs)
    figures = {
        "folds": FOLDS,
        "flag_budget": flag_budget,
        "veto_budget": veto_budget,
        "messages": len(recs),
        "model_alone_accuracy": round(right / len(recs), 4),
        "neutral_none": len(neutral_none),
        "neutral_flagged": sum(s >= flag for s in neutral_none),
        "requests_missed_by_rules": len(missed),
        "missed_flagged": sum(s >= flag for s in missed),
        "requests_found_by_rules": len(found),
        "found_vetoed": sum(s <= veto for s in found) if veto > 0 else 0,
        "false_opt_outs_of_rules": len(false_found),
        "false_opt_outs_vetoed": caught,
    }
    out(f"Cross-validation ({FOLDS} folds by text, out-of-fold scores, {len(recs)} training messages):")
    out(f"  the model alone at 0.5: {right / len(recs):.1%} of messages right")
    out(f"  flag = {flag:.4f} (budget {flag_budget:.1%} of neutral texts the rules answer none, floor {FLAG_FLOOR})")
    out(f"    neutral texts the rules answer none, flagged: {_share(figures['neutral_flagged'], len(neutral_none))}")
    out(f"    requests the rules miss, flagged:            {_share(figures['missed_flagged'], len(missed))}")
    veto_state = f"{veto:.4f}" if veto > 0 else "off (0)"
    out(f"  veto = {veto_state} (budget {veto_budget:.1%} of requests the rules find, cap {VETO_CAP})")
    out(f"    requests the rules find, vetoed:             {_share(figures['found_vetoed'], len(found))}")
    out(f"    the rules' false opt-outs, vetoed:           {_share(caught, len(false_found))}")
    return flag, veto, figures


def train(path: Path, out: Any = print, flag_budget: float = FLAG_BUDGET, veto_budget: float = VETO_BUDGET) -> int:
    started = time.process_time()
    spec = reply_model.Spec()
    recs = records("train")
    examples = examples_of(recs)
    positives = sum(y for *_, y in examples)
    out(f"{len(recs)} training messages, {len(examples)} distinct texts ({positives} requests)")
    flag, veto, figures = cross_validate(recs, examples, spec, out, flag_budget, veto_budget)
    feats = [(reply_model.features(reply_model.words_of(t, spec), spec), y) for _, t, y in examples]
    bias, weights = reply_model.fit(feats, spec)
    scale, values = reply_model.quantise(weights)
    header = {
        "spec": spec.as_json(),
        "bias": bias,
        "scale": scale,
        "flag": round(flag, 6),
        "veto": round(veto, 6),
        "train_sha256": texts_sha256(examples),
        "counts": {"messages": len(recs), "texts": len(examples), "requests": positives},
        "cv": figures,
        "trainer": "bench/train_reply_model.py",
    }
    size = reply_model.dump(path, header, values)
    nonzero = sum(1 for v in values if v)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    out(f"wrote {shown}: {size:,} bytes, {nonzero:,} non-zero weights")
    out(f"({time.process_time() - started:.1f} s CPU)")
    return 0


def check(path: Path, out: Any = print) -> int:
    try:
        header, _ = reply_model.read_file(path)
    except (OSError, ValueError, KeyError) as exc:
        out(f"{path}: unreadable ({exc}); rebuild with bench/train_reply_model.py")
        return 1
    examples = examples_of(records("train"))
    if header.get("train_sha256") != texts_sha256(examples):
        out(f"{path}: stale, the training texts changed; rebuild with bench/train_reply_model.py")
        return 1
    if header.get("spec") != reply_model.Spec().as_json():
        out(f"{path}: stale, the feature spec changed; rebuild with bench/train_reply_model.py")
        return 1
    out(f"{path.name}: up to date ({len(examples)} training texts)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the shipped file is stale")
    parser.add_argument("--out", type=Path, default=reply_model.DATA_FILE, help="default: the shipped file")
    parser.add_argument("--flag-budget", type=float, default=FLAG_BUDGET, help=f"default: {FLAG_BUDGET}")
    parser.add_argument("--veto-budget", type=float, default=VETO_BUDGET, help=f"default: {VETO_BUDGET}")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    return train(args.out, flag_budget=args.flag_budget, veto_budget=args.veto_budget)


if __name__ == "__main__":
    sys.exit(main())
