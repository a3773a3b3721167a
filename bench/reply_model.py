"""Train the reply model (proxy/classify/model.py) on the training part of the reply corpus.

    .venv/bin/python bench/reply_model.py            cross-validate on the training part and print the figures
    .venv/bin/python bench/reply_model.py --write    ... and rebuild proxy/classify/data/reply_model.json
    .venv/bin/python bench/reply_model.py --check    exit 1 when the shipped file is not what --write would build

Only texts of the training part are read (``build.part_of``): the evaluation part stays a
measure of whether the model generalises.  A text is a request when a careful reader would
stop writing (expect opt-out, erasure, or uncertain: a refusal beside a question); plain
replies and absence notices are not.  Logistic regression with per-feature step sizes
(AdaGrad) and a small L2 penalty, in plain Python; the same texts in the same order give the
same file on every machine.

The two review thresholds come from five-fold cross-validation on the training part: each
text is scored by a model that did not see it, then ``review_none_above`` is the lowest score
that at most ``--plain-share`` of plain replies reach, and ``review_request_below`` the highest
that at most ``--request-share`` of requests stay under.  The cross-validated figures are
optimistic: the word lists the features come from were written while reading this same part,
so the plain share is kept at half a per cent.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from proxy.classify.model import MODEL_FILE, ReplyModel, features, model_from_json  # noqa: E402
from proxy.rules.ruleset import load_rules  # noqa: E402
from tests.corpus.replies import build  # noqa: E402

REQUEST = frozenset({"opt-out", "erasure", "uncertain"})
EPOCHS = 10
L2 = 1e-2
STEP = 0.1
MIN_TEXTS = 2  # a feature seen in fewer training texts says nothing general
FOLDS = 5
ROUND = 4  # decimals kept in the file: small and diff-friendly


Row = tuple[str, frozenset[str], int]  # text id, its features, 1 for a request


def training_rows() -> list[Row]:
    """Every training text with its features (read with the shipped word lists), in id order."""
    rules = load_rules().reply_rules  # the shipped rules only: a user's edits are not the product
    rows = []
    for text_file in build.load_text_files():
        for reply in text_file.replies:
            if build.part_of(reply.id) == "train":
                label = 1 if reply.expect in REQUEST else 0
                rows.append((reply.id, frozenset(features(reply.text, rules)), label))
    return sorted(rows, key=lambda row: row[0])


def train(rows: Sequence[Row]) -> ReplyModel:
    feats = [fs for _, fs, _ in rows]
    counts = Counter(f for fs in feats for f in fs)
    kept = [[f for f in fs if counts[f] >= MIN_TEXTS] for fs in feats]
    labels = [label for _, _, label in rows]
    weights: dict[str, float] = {}
    squares: dict[str, float] = {}
    bias, bias_square = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(17)
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for i in order:
            fs = kept[i]
            total = bias + sum(weights.get(f, 0.0) for f in fs)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, total))))
            g = p - labels[i]
            bias_square += g * g
            bias -= STEP * g / math.sqrt(bias_square)
            for f in fs:
                w = weights.get(f, 0.0)
                grad = g + L2 * w
                sq = squares.get(f, 1e-8) + grad * grad
                squares[f] = sq
                weights[f] = w - STEP * grad / math.sqrt(sq)
    small = 10**-ROUND
    rounded = {f: round(w, ROUND) for f, w in weights.items() if abs(w) >= small}
    return ReplyModel(rounded, round(bias, ROUND), 1.0, 0.0)


def cross_validated(rows: Sequence[Row]) -> list[float]:
    """Each text's score from a model trained without its fold (folds by id, so stable)."""
    scores = [0.0] * len(rows)
    for fold in range(FOLDS):
        inside = [i for i in range(len(rows)) if build._hash(rows[i][0]) % FOLDS == fold]
        held = set(inside)
        model = train([r for i, r in enumerate(rows) if i not in held])
        for i in inside:
            scores[i] = model.probability(rows[i][1])
    return scores


def thresholds(
    scores: Sequence[float], labels: Sequence[int], plain_share: float, request_share: float
) -> tuple[float, float]:
    plain = sorted(s for s, y in zip(scores, labels, strict=True) if y == 0)
    requests = sorted(s for s, y in zip(scores, labels, strict=True) if y == 1)
    above = plain[min(len(plain) - 1, math.ceil(len(plain) * (1 - plain_share)))]
    below = requests[max(0, math.floor(len(requests) * request_share) - 1)]
    return round(max(above, 0.5) + 10**-ROUND, ROUND), round(min(below, 0.5) - 10**-ROUND, ROUND)


def report(scores: Sequence[float], labels: Sequence[int], up: float, down: float) -> str:
    pairs = list(zip(scores, labels, strict=True))
    plain = [s for s, y in pairs if y == 0]
    requests = [s for s, y in pairs if y == 1]
    right = sum((s >= 0.5) == (y == 1) for s, y in pairs)
    return "\n".join(
        [
            f"training texts: {len(pairs)} ({len(requests)} requests, {len(plain)} plain)",
            f"cross-validated accuracy at 0.5: {right / len(pairs):.1%}",
            f"review when the grammar found nothing and the model >= {up}: "
            f"{sum(s >= up for s in plain) / len(plain):.1%} of plain replies, "
            f"{sum(s >= up for s in requests) / len(requests):.1%} of requests",
            f"review when the grammar found a request and the model <= {down}: "
            f"{sum(s <= down for s in requests) / len(requests):.1%} of requests, "
            f"{sum(s <= down for s in plain) / len(plain):.1%} of plain replies",
        ]
    )


def build_model(plain_share: float, request_share: float) -> tuple[ReplyModel, str]:
    rows = training_rows()
    labels = [label for _, _, label in rows]
    scores = cross_validated(rows)
    up, down = thresholds(scores, labels, plain_share, request_share)
    model = train(rows)
    model = ReplyModel(model.weights, model.bias, up, down)
    return model, report(scores, labels, up, down)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rebuild {MODEL_FILE.relative_to(REPO)}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the shipped file is stale")
    parser.add_argument("--plain-share", type=float, default=0.005, help="plain replies sent to review (default 0.005)")
    parser.add_argument("--request-share", type=float, default=0.01, help="requests sent to review (default 0.01)")
    args = parser.parse_args(argv)
    model, text = build_model(args.plain_share, args.request_share)
    print(text)
    data = json.dumps(model.as_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
    print(f"features: {len(model.weights)}, file {len(data.encode()) / 1e6:.1f} MB")
    if args.check:
        shipped = MODEL_FILE.read_text(encoding="utf-8") if MODEL_FILE.exists() else ""
        if shipped != data:
            print(f"{MODEL_FILE} is not what the corpus builds: run bench/reply_model.py --write")
            return 1
        model_from_json(json.loads(shipped))
        print("the shipped model is up to date")
    if args.write:
        MODEL_FILE.parent.mkdir(exist_ok=True)
        MODEL_FILE.write_text(data, encoding="utf-8")
        print(f"wrote {MODEL_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
