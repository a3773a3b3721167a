"""Reply benchmark: the classifier's verdicts on the reply corpus, per language, against the product's targets.

    .venv/bin/python bench/replies.py                    the evaluation part (nothing is tuned on it)
    .venv/bin/python bench/replies.py --part train       the training part (or --part all)
    .venv/bin/python bench/replies.py --public [--repo NAME=PATH ...]   the public fixtures (none is an opt-out)
    .venv/bin/python bench/replies.py --json             the same, machine-readable
    .venv/bin/python bench/replies.py --show de-004.gmail   one case: its message and the verdict with evidence
    .venv/bin/python bench/replies.py --check            exit 1 when a target is missed

Counting: an erasure answer to an opt-out request is right (erasure implies opt-out); an
opt-out answer to an erasure request is "erasure read as opt-out" (wrong, not missed); a
reply written as uncertain may be answered uncertain or opt-out.  Speed is replies per
second of process CPU time (one core: the classifier runs in this one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def make_classifier() -> Callable[[bytes], Any]:
    """The one place that knows the classifier's API: raw message in, verdict-like out
    (attributes verdict, evidence, where, language, reason; as_json() when it has one)."""
    from proxy.classify.classifier import classify
    from proxy.rules.ruleset import load_rules

    rules = load_rules()  # the shipped rules only: a user's edits are not the product
    reply_rules, fingerprints = rules.reply_rules, rules.footer_fingerprints

    def run(raw: bytes) -> Any:
        return classify(raw, reply_rules, fingerprints)

    return run


from tests.corpus import public  # noqa: E402  (needs the repository on the path)
from tests.corpus.replies import build  # noqa: E402

REQUESTS = ("opt-out", "erasure")
NEUTRAL = ("none", "not-opt-out")
RIGHT = {
    "opt-out": {"opt-out", "erasure"},
    "erasure": {"erasure"},
    "none": {"none"},
    "auto-reply": {"auto-reply"},
    "uncertain": {"uncertain", "opt-out"},
    "not-opt-out": {"none", "auto-reply", "bounce"},
}
MISSED = {"none", "auto-reply", "bounce"}
TARGETS = (
    ("false opt-outs", "0"),
    ("opt-out/erasure requests missed", "<= 1%"),
    ("requests left uncertain", "<= 5%"),
    ("neutral/positive sent to uncertain", "<= 3%"),
    ("every language right", ">= 95%"),
    ("speed", ">= 1000 replies/s"),
)
MIN_CPU_SECONDS = 1.0  # classify the set again until this much CPU time is measured


@dataclass(frozen=True)
class Item:
    id: str
    group: str  # language, or the public fixture's source
    expect: str
    kind: str
    shape: str
    raw: bytes


@dataclass
class Result:
    title: str
    items: int = 0
    right: int = 0
    groups: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # group -> [n, right]
    kinds: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    shapes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    requests: int = 0
    neutral: int = 0
    missed: list[str] = field(default_factory=list)
    requests_uncertain: list[str] = field(default_factory=list)
    erasure_as_opt_out: list[str] = field(default_factory=list)
    false_opt_outs: list[str] = field(default_factory=list)
    neutral_uncertain: list[str] = field(default_factory=list)
    other_wrong: list[str] = field(default_factory=list)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_second: float = 0.0
    cpu_seconds: float = 0.0
    by_model: list[str] = field(default_factory=list)  # sent to review by the reply model (second signal)
    problems: list[str] = field(default_factory=list)

    def rate(self, count: int, total: int) -> float:
        return count / total if total else 0.0

    def targets(self) -> list[tuple[str, str, str, bool]]:
        """(target, wanted, measured, met)."""
        worst = min(((r / n if n else 1.0), g) for g, (n, r) in self.groups.items()) if self.groups else (1.0, "-")
        missed = self.rate(len(self.missed), self.requests)
        uncertain = self.rate(len(self.requests_uncertain), self.requests)
        neutral = self.rate(len(self.neutral_uncertain), self.neutral)
        measured = (
            (str(len(self.false_opt_outs)), not self.false_opt_outs),
            (f"{missed:.1%} ({len(self.missed)} of {self.requests})", missed <= 0.01),
            (f"{uncertain:.1%} ({len(self.requests_uncertain)} of {self.requests})", uncertain <= 0.05),
            (f"{neutral:.1%} ({len(self.neutral_uncertain)} of {self.neutral})", neutral <= 0.03),
            (f"lowest {worst[0]:.1%} ({worst[1]})", worst[0] >= 0.95),
            (f"{self.per_second:,.0f} replies/s", self.per_second >= 1000),
        )
        return [(name, wanted, text, ok) for (name, wanted), (text, ok) in zip(TARGETS, measured, strict=True)]

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "replies": self.items,
            "right": self.right,
            "accuracy": self.rate(self.right, self.items),
            "languages": {
                g: {"replies": n, "right": r, "accuracy": self.rate(r, n)} for g, (n, r) in self.groups.items()
            },
            "kinds": {k: {"replies": n, "right": r} for k, (n, r) in self.kinds.items()},
            "shapes": {k: {"replies": n, "right": r} for k, (n, r) in self.shapes.items()},
            "requests": self.requests,
            "neutral": self.neutral,
            "missed": self.missed,
            "requests_uncertain": self.requests_uncertain,
            "erasure_read_as_opt_out": self.erasure_as_opt_out,
            "false_opt_outs": self.false_opt_outs,
            "neutral_uncertain": self.neutral_uncertain,
            "other_wrong": self.other_wrong,
            "confusion": {f"{e} -> {a}": n for (e, a), n in sorted(self.confusion.items())},
            "sent_to_review_by_model": self.by_model,
            "replies_per_second": round(self.per_second, 1),
            "targets": [{"target": t, "wanted": w, "measured": m, "ok": ok} for t, w, m, ok in self.targets()],
            "problems": self.problems,
        }


def corpus_items(part: str) -> list[Item]:
    return [Item(c.id, c.language, c.expect, c.kind, c.shape, c.raw) for c in build.iter_corpus(part)]


def public_items(cache: Path | None, repos: dict[str, Path]) -> tuple[list[Item], list[str]]:
    corpus = public.load_public(cache, repos)
    items = [
        Item(c.id, c.source, c.expect, "public", PurePosixPath(c.id).suffix or "bare", c.raw) for c in corpus.cases
    ]
    return items, corpus.problems


def verdict_of(answer: Any) -> str:
    return str(getattr(answer, "verdict", answer))


def score(title: str, items: Sequence[Item], classify: Callable[[bytes], Any]) -> Result:
    result = Result(title)
    started = time.process_time()
    full = [classify(item.raw) for item in items]
    answers = [verdict_of(answer) for answer in full]
    rounds, cpu = 1, time.process_time() - started
    while items and cpu < MIN_CPU_SECONDS:
        for item in items:
            classify(item.raw)
        rounds, cpu = rounds + 1, time.process_time() - started
    result.cpu_seconds = cpu
    result.per_second = len(items) * rounds / cpu if cpu > 0 else 0.0
    for item, answer, whole in zip(items, answers, full, strict=True):
        if "(model " in str(getattr(whole, "reason", "")):
            result.by_model.append(f"{item.id} {item.expect}->{answer}")
        ok = answer in RIGHT[item.expect]
        result.items += 1
        result.right += ok
        for table, key in ((result.groups, item.group), (result.kinds, item.kind), (result.shapes, item.shape)):
            table[key][0] += 1
            table[key][1] += ok
        result.confusion[(item.expect, answer)] += 1
        label = f"{item.id} {item.expect}->{answer}"
        if item.expect in REQUESTS:
            result.requests += 1
            if answer in MISSED:
                result.missed.append(label)
            elif answer == "uncertain":
                result.requests_uncertain.append(label)
            elif item.expect == "erasure" and answer == "opt-out":
                result.erasure_as_opt_out.append(label)
            elif not ok:
                result.other_wrong.append(label)
            continue
        if item.expect in NEUTRAL:
            result.neutral += 1
            if answer == "uncertain":
                result.neutral_uncertain.append(label)
                continue
        if answer in REQUESTS and item.expect != "uncertain":
            result.false_opt_outs.append(label)
        elif not ok:
            result.other_wrong.append(label)
    return result


def _table(rows: Iterable[tuple[str, list[int]]], head: str) -> list[str]:
    lines = [f"  {head:<28} {'replies':>7} {'right':>6} {'accuracy':>9}"]
    for key, (n, r) in sorted(rows):
        lines.append(f"  {key:<28} {n:>7} {r:>6} {r / n if n else 0:>9.1%}")
    return lines


def _ids(title: str, labels: Sequence[str], total: int | None = None) -> list[str]:
    share = f" of {total} ({len(labels) / total:.1%})" if total else ""
    lines = [f"{title}: {len(labels)}{share}"]
    line = ""
    for label in labels:  # several to a line, never one split over two
        if line and len(line) + len(label) > 116:
            lines.append(f"  {line.rstrip(', ')},")
            line = ""
        line += f"{label}, " if label != labels[-1] else label
    if line:
        lines.append(f"  {line}")
    return lines


def report(result: Result) -> str:
    lines = [
        f"{result.title}: {result.items} replies, {result.right} right ({result.rate(result.right, result.items):.1%})"
    ]
    lines += [f"  not available: {p}" for p in result.problems]
    lines += ["", "Per language (or source):", *_table(result.groups.items(), "language")]
    lines += ["", "Per kind:", *_table(result.kinds.items(), "kind")]
    lines += ["", "Per client shape:", *_table(result.shapes.items(), "shape")]
    lines += ["", "Expected -> answered:"]
    lines += [f"  {e:<12} -> {a:<11} {n:>6}" for (e, a), n in sorted(result.confusion.items())]
    lines += [""]
    lines += _ids("Missed opt-outs/erasures (answered none/auto-reply/bounce)", result.missed, result.requests)
    lines += _ids("Requests left uncertain", result.requests_uncertain, result.requests)
    lines += _ids("Erasure read as opt-out (counted wrong, not missed)", result.erasure_as_opt_out, result.requests)
    lines += _ids("False opt-outs (non-requests answered opt-out/erasure)", result.false_opt_outs)
    lines += _ids("Neutral/positive sent to uncertain", result.neutral_uncertain, result.neutral)
    lines += _ids("Other wrong verdicts", result.other_wrong)
    lines += _ids("Sent to review by the reply model (second signal; included above)", result.by_model)
    lines += ["", f"Speed: {result.per_second:,.0f} replies/s on one core ({result.cpu_seconds:.2f} s CPU)", ""]
    lines += ["Targets:"]
    for name, wanted, measured, ok in result.targets():
        lines.append(f"  {'ok    ' if ok else 'MISSED'}  {name:<36} {wanted:<18} {measured}")
    return "\n".join(lines)


def show(case_id: str, items: Sequence[Item], classify: Callable[[bytes], Any]) -> str:
    found = [i for i in items if i.id == case_id or i.id.startswith(case_id + ".")]
    if not found:
        return f"no case {case_id!r} (ids look like de-004.gmail; a text id shows all its renderings)"
    out: list[str] = []
    for item in found:
        answer = classify(item.raw)
        fields = answer.as_json() if hasattr(answer, "as_json") else dict(vars(answer))
        out += [f"=== {item.id}  expect {item.expect}  kind {item.kind}  shape {item.shape}", ""]
        out += [item.raw.decode("utf-8", "replace"), "", "verdict:", json.dumps(fields, ensure_ascii=False, indent=2)]
        out += [f"right: {verdict_of(answer) in RIGHT[item.expect]}", ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=[*build.PARTS, "all"], default="evaluation", help="default: evaluation")
    parser.add_argument("--public", action="store_true", help="the public fixtures instead of the corpus")
    public.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--show", metavar="ID", help="print one case's message and the verdict with its evidence")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    classify = make_classifier()
    problems: list[str] = []
    if args.public:
        items, problems = public_items(args.cache, public.parse_repos(args.repo))
        title = "Public reply fixtures (talon, mail-parser-reply, email-reply-parser)"
    else:
        items = corpus_items("all" if args.show else args.part)
        title = f"Reply corpus, {args.part} part"
    if args.show:
        print(show(args.show, items, classify))
        return 0
    result = score(title, items, classify)
    result.problems = problems
    print(json.dumps(result.as_json(), ensure_ascii=False, indent=2) if args.json else report(result))
    if not items:
        print("nothing to measure", file=sys.stderr)
        return 1
    return 1 if args.check and not all(ok for *_, ok in result.targets()) else 0


if __name__ == "__main__":
    sys.exit(main())
