"""Bounce benchmark: how the watcher would act on public bounce corpora, against the product's targets.

    .venv/bin/python bench/bounces.py                      set-of-emails (maildir/bsd, not, err) and flufl.bounce
    .venv/bin/python bench/bounces.py --corpus DIR_OR_GIT  another copy of set-of-emails (a checkout or a bare git dir)
    .venv/bin/python bench/bounces.py --sisimai DIR_OR_GIT p5-sisimai, which labels the corpus (needs perl with JSON
                                       and Class::Accessor::Lite: apt-get install libclass-accessor-lite-perl)
    .venv/bin/python bench/bounces.py --flufl SDIST_OR_DIR flufl.bounce 6.0.0's sdist (default: pip download, cached)
    .venv/bin/python bench/bounces.py --other NAME=DIR_OR_GIT another corpus, labelled by Sisimai (default: the
                                       copies of cfortune/PHP-Bounce-Handler and mitio/bounce_email beside it)
    .venv/bin/python bench/bounces.py --show FILE           one message: what the reader found
    .venv/bin/python bench/bounces.py --check               exit 1 when a target is missed

Nothing is copied into the repository: the corpora are read where they are, Sisimai's own verdicts
(reason and address per message) are computed by running Sisimai on them, cached in
~/.cache/gdpr-proxy-bench/.  What our relay would know is emulated: the recipients of each
returned message (the relayed-message record) are taken from the quoted original's To/Cc, for
notices that name no recipient themselves.

Counted per recipient Sisimai reports: hard failures (userunknown, hostunknown, hasmoved, suspend,
notaccept that Sisimai calls hard) are right when that address (or Sisimai's alias for it, the
Original-Recipient) is suppressed; temporary and sender-side failures (mailboxfull, expired,
toomanyconn, speeding, networkerror, systemerror, systemfull, authfailure, requireptr,
badreputation, blocked, norelaying, securityerror, notcompliantrfc) are wrong when it is; ARF
complaints (feedback except auth-failure) are right when the complainer is suppressed; every
message is also given to the whole classifier, which must never answer opt-out or erasure.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from proxy.classify import mimeparse  # noqa: E402
from proxy.classify.bounce import parse_bounce, we_wrote_to  # noqa: E402
from proxy.classify.classifier import classify  # noqa: E402
from proxy.classify.complaints import NOT_COMPLAINTS, parse_complaint  # noqa: E402
from proxy.rules.ruleset import load_rules  # noqa: E402

MIRRORS = Path("/work/.mirror")
DEFAULT_CORPUS = MIRRORS / "sisimai+set-of-emails" / "repo"
DEFAULT_SISIMAI = MIRRORS / "sisimai+p5-sisimai" / "repo"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gdpr-proxy-bench"
FOLDERS = ("maildir/bsd", "maildir/not", "maildir/err")
HARD = {"userunknown", "hostunknown", "hasmoved", "suspend", "notaccept"}
TEMPORARY = {"mailboxfull", "expired", "toomanyconn", "speeding", "networkerror", "systemerror", "systemfull"}
SENDER_SIDE = {
    "authfailure",
    "requireptr",
    "badreputation",
    "blocked",
    "norelaying",
    "securityerror",
    "notcompliantrfc",
}
HIDDEN = ("undisclosed-recipient", "redacted", "hashed")
TARGETS = {"hard_right_pct": 98.0, "soft_suppressing": 0, "opt_outs": 0}

# Sisimai run on each file: recipient, alias (Original-Recipient), reason, status, feedback type.
LABEL_SCRIPT = r"""
use strict; use warnings; use Sisimai; use JSON;
my $out = {};
for my $f (@ARGV) {
  my $v = Sisimai->rise($f, 'delivered' => 1, 'vacation' => 1) || [];
  my @r = map { { recipient => $_->recipient->address, alias => ($_->alias // ''), reason => $_->reason,
                  status => $_->deliverystatus, hard => $_->hardbounce, feedbacktype => $_->feedbacktype } } @$v;
  $out->{$f} = \@r;
}
print JSON->new->canonical->ascii->encode($out);
"""


@dataclass
class Figures:
    files: int = 0
    hard: int = 0
    hard_right: int = 0
    soft: int = 0
    soft_suppressing: int = 0
    other_suppressing: int = 0
    other: int = 0
    complaints: int = 0
    complaints_right: int = 0
    complaints_hidden: int = 0
    auth_reports: int = 0
    auth_reports_suppressing: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


# --- reading the corpora -------------------------------------------------------------------


def _git(gitdir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True).stdout


def checkout(source: Path, subdirs: tuple[str, ...]) -> Path | None:
    """A directory with the corpus files: the source itself, or a bare git dir extracted into the cache."""
    if not source.exists():
        return None
    if (source / subdirs[0]).is_dir():
        return source
    if not (source / "HEAD").is_file():
        return None
    head = _git(source, "rev-parse", "HEAD").decode().strip()
    part = hashlib.sha256(" ".join(subdirs).encode()).hexdigest()[:8]
    target = CACHE / f"{source.parent.name}-{head[:12]}-{part}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = _git(source, "archive", "--format=tar", "HEAD", *subdirs)
        with tempfile.TemporaryFile() as tmp:
            tmp.write(archive)
            tmp.seek(0)
            with tarfile.open(fileobj=tmp) as tar:
                tar.extractall(target, filter="data")
        (target / ".complete").touch()
    return target


def sisimai_labels(files: list[Path], sisimai: Path) -> dict[str, list[dict[str, Any]]] | None:
    """Sisimai's verdicts on the files, computed once and cached; None when Sisimai cannot run."""
    tree = checkout(sisimai, ("lib",))
    if tree is None or shutil.which("perl") is None:
        return None
    key = hashlib.sha256("\n".join(str(f) for f in files).encode() + str(tree).encode()).hexdigest()[:16]
    cached = CACHE / f"sisimai-labels-{key}.json"
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    run = subprocess.run(
        ["perl", f"-I{tree / 'lib'}", "-e", LABEL_SCRIPT, *map(str, files)], capture_output=True, text=True
    )
    if run.returncode != 0:
        print(f"Sisimai could not run ({run.stderr.strip().splitlines()[-1:]}): no labels", file=sys.stderr)
        return None
    cached.write_text(run.stdout)
    return dict(json.loads(run.stdout))


def flufl_data(given: Path | None) -> tuple[Path, list[tuple[str, set[str], bool]]] | None:
    """flufl.bounce's test messages and, from its tests, the addresses each one reports."""
    source = given
    if source is None:
        sdists = sorted((CACHE / "flufl").glob("flufl_bounce-6.0.0.tar.gz"))
        if not sdists:
            (CACHE / "flufl").mkdir(parents=True, exist_ok=True)
            pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
            subprocess.run([*pip, "flufl.bounce==6.0.0", "-d", str(CACHE / "flufl")], capture_output=True)
            sdists = sorted((CACHE / "flufl").glob("flufl_bounce-6.0.0.tar.gz"))
        if not sdists:
            return None
        source = sdists[0]
    if source.is_file():
        target = CACHE / "flufl" / "src"
        if not (target / ".complete").exists():
            with tarfile.open(source) as tar:
                tar.extractall(target, filter="data")
            (target / ".complete").touch()
        source = next(target.glob("flufl_bounce-*"), target)
    tests = source / "tests"
    if not (tests / "test_detectors.py").is_file():
        return None
    found: dict[str, tuple[set[str], bool]] = {}
    for node in ast.walk(ast.parse((tests / "test_detectors.py").read_text())):
        if isinstance(node, ast.Tuple) and len(node.elts) == 4 and isinstance(node.elts[1], ast.Constant):
            name = node.elts[1].value
            if not (isinstance(name, str) and name.endswith(".txt")):
                continue
            try:
                addresses = {a.decode().lower() for a in ast.literal_eval(node.elts[2])}
                temporary = bool(ast.literal_eval(node.elts[3]))
            except ValueError:
                continue
            seen, _ = found.get(name, (set(), temporary))
            found[name] = (seen | addresses, temporary)
    return tests / "data", [(n, a, t) for n, (a, t) in sorted(found.items())]


# --- what the watcher would do ---------------------------------------------------------------


def relayed_record(raw: bytes) -> list[str]:
    """What our relay would have recorded for the returned message: its To and Cc."""
    msg = mimeparse.parse(raw)
    for part in msg.walk():
        ctype = part.get_content_type()
        inner = None
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            inner = mimeparse.parse(mimeparse.part_text(part).encode("utf-8", "replace"))
        if inner is not None:
            text = mimeparse.header(inner, "To") + "," + mimeparse.header(inner, "Cc")
            return sorted({a.lower() for a in re.findall(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", text)})
    return []


@dataclass
class Outcome:
    suppressed: set[str]
    categories: dict[str, str]
    complaint: tuple[str, ...] | None
    verdict: str


def watcher_outcome(raw: bytes, classifier: Any, rules: Any) -> Outcome:
    verdict = classifier(raw)
    msg = mimeparse.parse(raw)
    complaint = parse_complaint(msg)
    relayed = relayed_record(raw)
    if complaint is not None:
        people = set(complaint.recipients) if complaint.suppresses else set()
        if complaint.suppresses and not people and len(relayed) == 1:
            people = set(relayed)
        return Outcome(people, {}, complaint.recipients, verdict.verdict)
    bounce = parse_bounce(msg, rules)
    suppressed: set[str] = set()
    categories: dict[str, str] = {}
    if bounce is not None:
        for failure in bounce.failures:
            # The quoted To/Cc stands in for the relay's record only where the notice names nobody:
            # the corpora's headers were anonymised apart from their reports.
            named = failure.original_recipient or failure.final_recipient or failure.address
            address = we_wrote_to(failure, [] if named else relayed, bounce)
            for name in {address, failure.final_recipient, failure.address} - {""}:
                categories.setdefault(name, failure.category)
            if address and failure.reason.suppresses:
                suppressed.add(address)
    return Outcome(suppressed, categories, None, verdict.verdict)


def _plain(address: str) -> str:
    return address.lower().replace('"', "")


def score_sisimai(
    files: list[Path], labels: dict[str, list[dict[str, Any]]] | None, classifier: Any, rules: Any
) -> Figures:
    fig = Figures()
    for path in files:
        raw = path.read_bytes()
        started = time.process_time()
        outcome = watcher_outcome(raw, classifier, rules)
        fig.seconds += time.process_time() - started
        fig.files += 1
        fig.verdicts[outcome.verdict] += 1
        suppressed = {_plain(a) for a in outcome.suppressed}
        for label in (labels or {}).get(str(path), []):
            reason, who = label["reason"], {_plain(label["recipient"]), _plain(label.get("alias") or "")} - {""}
            hit = bool(who & suppressed)
            if reason in HARD and (reason != "notaccept" or str(label.get("hard")) == "1"):
                fig.hard += 1
                fig.hard_right += hit
                if not hit:
                    fig.misses.append(f"{path.name}: {reason} {label['recipient']} ({label['status']})")
            elif reason in TEMPORARY or reason in SENDER_SIDE:
                fig.soft += 1
                if hit:
                    fig.soft_suppressing += 1
                    fig.wrong.append(f"{path.name}: {reason} {label['recipient']} ({label['status']}) suppressed")
            elif reason == "feedback":
                if label.get("feedbacktype") in NOT_COMPLAINTS:
                    fig.auth_reports += 1
                    fig.auth_reports_suppressing += bool(suppressed)
                    continue
                fig.complaints += 1
                if any(h in label["recipient"] for h in HIDDEN):
                    fig.complaints_hidden += 1
                    # right when only an address the report itself names is suppressed (Removal-Recipient)
                    fig.complaints_right += not (suppressed - who - {_plain(a) for a in outcome.complaint or ()})
                elif hit:
                    fig.complaints_right += 1
                else:
                    fig.misses.append(f"{path.name}: complaint by {label['recipient']} not suppressed")
            elif reason not in ("delivered", "vacation"):
                fig.other += 1
                fig.other_suppressing += hit
    return fig


def score_flufl(data: Path, cases: list[tuple[str, set[str], bool]], classifier: Any, rules: Any) -> dict[str, Any]:
    result = Counter[str]()
    verdicts = Counter[str]()
    misses = []
    for name, addresses, temporary in cases:
        raw = (data / name).read_bytes()
        outcome = watcher_outcome(raw, classifier, rules)
        verdicts[outcome.verdict] += 1
        if not addresses:
            continue
        found = {a for a in outcome.categories if a.lower() in addresses}
        if temporary:
            result["temporary"] += 1
            result["temporary_suppressing"] += bool({a.lower() for a in outcome.suppressed} & addresses)
        else:
            result["permanent"] += 1
            result["permanent_found"] += bool(found)
            result["permanent_suppressed"] += bool({a.lower() for a in outcome.suppressed} & addresses)
            if not found:
                misses.append(f"{name}: {sorted(addresses)} not found")
    return {"counts": dict(result), "verdicts": dict(verdicts), "misses": misses}


# Other public bounce corpora (repository name -> folders holding messages), labelled by Sisimai
# like set-of-emails: github cfortune/PHP-Bounce-Handler and mitio/bounce_email.
OTHER_CORPORA = {
    "cfortune+PHP-Bounce-Handler": ("eml",),
    "mitio+bounce_email": ("test/bounces", "test/non_bounces"),
}


def other_corpora(given: list[str]) -> list[tuple[str, Path]]:
    """NAME=PATH pairs given on the command line, else the known corpora found beside set-of-emails."""
    if given:
        return [(g.split("=", 1)[0], Path(g.split("=", 1)[1])) for g in given]
    return [(name, MIRRORS / name / "repo") for name in OTHER_CORPORA if (MIRRORS / name / "repo").exists()]


def print_figures(title: str, fig: Figures, misses: bool) -> tuple[float, int]:
    pct = 100.0 * fig.hard_right / fig.hard if fig.hard else 100.0
    opt_outs = fig.verdicts["opt-out"] + fig.verdicts["erasure"]
    print(f"\n{title}: {fig.files} messages, {fig.files / max(fig.seconds, 1e-9):.0f} per CPU second")
    right = f"{fig.hard_right}/{fig.hard} = {pct:.1f}%"
    print(f"  hard failures suppressed with the right address: {right} (target ≥98%)")
    soft = f"{fig.soft_suppressing} of {fig.soft}"
    print(f"  temporary or sender-side failures suppressing the recipient: {soft} (target 0)")
    other = f"{fig.other_suppressing} of {fig.other}"
    print(f"  other failures (recipient policy, content, mailer errors) suppressing: {other}")
    print(
        f"  ARF complaints suppressing the right recipient: {fig.complaints_right}/{fig.complaints} "
        f"({fig.complaints_hidden} with the address hidden by the provider: right when nobody else is)"
    )
    auth = f"{fig.auth_reports_suppressing} of {fig.auth_reports}"
    print(f"  authentication-failure reports (DMARC, SPF) suppressing anyone: {auth}")
    print(f"  verdicts: {dict(sorted(fig.verdicts.items()))}; opt-out or erasure: {opt_outs} (target 0)")
    if misses:
        for line in fig.misses + fig.wrong:
            print(f"    {line}")
    return pct, opt_outs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--sisimai", type=Path, default=DEFAULT_SISIMAI)
    ap.add_argument("--flufl", type=Path, default=None)
    ap.add_argument("--other", action="append", default=[], metavar="NAME=DIR_OR_GIT", help="another corpus")
    ap.add_argument("--show", type=Path)
    ap.add_argument("--misses", action="store_true", help="list every miss and wrong suppression")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rules = load_rules()
    bounce_rules = rules.bounce_rules

    def classifier(raw: bytes) -> Any:
        return classify(raw, rules.reply_rules, rules.footer_fingerprints)

    if args.show:
        raw = args.show.read_bytes()
        msg = mimeparse.parse(raw)
        print(json.dumps(classifier(raw).as_json(), indent=2, ensure_ascii=False))
        print(parse_complaint(msg) or parse_bounce(msg, bounce_rules))
        return 0
    report: dict[str, Any] = {}
    failed = False
    tree = checkout(args.corpus, FOLDERS)
    if tree is None:
        print(
            f"Sisimai's set-of-emails is absent at {args.corpus}: fetch github sisimai/set-of-emails, or give --corpus"
        )
    else:
        for folder in FOLDERS:
            files = sorted((tree / folder).glob("*.eml"))
            labels = sisimai_labels(files, args.sisimai)
            if labels is None:
                print(f"{folder}: no Sisimai labels (p5-sisimai absent at {args.sisimai} or perl cannot run it)")
            fig = score_sisimai(files, labels, classifier, bounce_rules)
            report[folder] = fig
            pct, opt_outs = print_figures(folder, fig, args.misses)
            if labels is not None and folder == "maildir/bsd":
                failed |= pct < TARGETS["hard_right_pct"] or fig.complaints_right < fig.complaints
            failed |= fig.soft_suppressing > 0 or opt_outs > 0
    for name, source in other_corpora(args.other):
        subdirs = OTHER_CORPORA.get(name, (".",))
        tree = checkout(source, subdirs)
        files = sorted(
            f for sub in subdirs if tree is not None for f in (tree / sub).rglob("*") if f.suffix in (".eml", ".txt")
        )
        if not files:
            print(f"\n{name}: no messages at {source}")
            continue
        labels = sisimai_labels(files, args.sisimai)
        fig = score_sisimai(files, labels, classifier, bounce_rules)
        report[name] = fig
        _, opt_outs = print_figures(f"{name} (labelled by Sisimai)", fig, args.misses)
        failed |= opt_outs > 0
    flufl = flufl_data(args.flufl)
    if flufl is None:
        print("\nflufl.bounce 6.0.0's test data is absent (pip download failed and no --flufl given)")
    else:
        data, cases = flufl
        result = score_flufl(data, cases, classifier, bounce_rules)
        report["flufl"] = result
        c = result["counts"]
        opt_outs = result["verdicts"].get("opt-out", 0) + result["verdicts"].get("erasure", 0)
        print(f"\nflufl.bounce 6.0.0 tests/data: {len(cases)} messages with expected addresses")
        print(
            f"  permanent failures read with the right address: {c.get('permanent_found', 0)}/{c.get('permanent', 0)}"
        )
        print(f"  ... of them suppressed (recipient gone): {c.get('permanent_suppressed', 0)}")
        temporary = f"{c.get('temporary_suppressing', 0)} of {c.get('temporary', 0)}"
        print(f"  temporary failures suppressing: {temporary} (target 0)")
        print(f"  verdicts: {dict(sorted(result['verdicts'].items()))}; opt-out or erasure: {opt_outs} (target 0)")
        if args.misses:
            for line in result["misses"]:
                print(f"    {line}")
        failed |= c.get("temporary_suppressing", 0) > 0 or opt_outs > 0
    if args.json:
        print(json.dumps({k: (v.__dict__ if isinstance(v, Figures) else v) for k, v in report.items()}, default=str))
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
