"""Tracker-removal benchmark: every public list's trackers in every HTML shape, legitimate images, speed."""

from __future__ import annotations

import argparse
import html
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

from proxy.mime import TrackerRules, strip_trackers
from proxy.schema import load_file

ROOT = Path(__file__).resolve().parent.parent
RULES_FILE = ROOT / "rules" / "trackers.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "trackers"
SENDER = "acme-analytics.eu"
UNKNOWN = "https://t.unlisted-tracker.example/o/5f2c8e1a9b3d.gif"  # no rule knows this host
CONTENT = "https://images.northwind-outdoor.com/spring/hero.jpg"

# Each shape: a function of the (HTML-escaped) tracker URL giving the body fragment.
SHAPES: dict[str, Callable[[str], str]] = {
    "plain <img>, no size": lambda u: f'<img src="{u}">',
    "1x1 attributes": lambda u: f'<img src="{u}" width="1" height="1" alt="">',
    "Outlook .0104in": lambda u: f'<img src="{u}" width="1" height="1" style="width:.0104in;height:.0104in">',
    "width/height 0": lambda u: f'<img src="{u}" width="0" height="0">',
    "cm": lambda u: f'<img src="{u}" style="width:0.02cm;height:0.02cm">',
    "mm": lambda u: f'<img src="{u}" style="width:.25mm;height:.25mm">',
    "pt": lambda u: f'<img src="{u}" style="width:.75pt;height:.75pt">',
    "pc": lambda u: f'<img src="{u}" style="width:.0625pc;height:.0625pc">',
    "em": lambda u: f'<img src="{u}" style="width:.0625em;height:.0625em">',
    "rem": lambda u: f'<img src="{u}" style="width:.0625rem;height:.0625rem">',
    "%": lambda u: f'<img src="{u}" style="width:0%;height:0%">',
    "srcset": lambda u: f'<img srcset="{u} 1x, {u} 2x" alt="">',
    "srcset beside content": lambda u: f'<img src="{CONTENT}" srcset="{u} 2x" width="600" alt="">',
    "<td background>": lambda u: f'<table><tr><td background="{u}">Hi</td></tr></table>',
    "<table background>": lambda u: f'<table background="{u}"><tr><td>Hi</td></tr></table>',
    "<body background>": lambda u: f'<body background="{u}"><p>Hi</p></body>',
    "style background": lambda u: f'<div style="background:#fff url({u}) no-repeat">Hi</div>',
    "style background-image": lambda u: f"<div style=\"background-image:url('{u}')\">Hi</div>",
    "style content:url()": lambda u: f'<span style="content:url({u})"></span>',
    "<style> background-image": lambda u: f"<style>.a{{background-image:url('{u}')}}</style><div class=a>Hi</div>",
    "<style> background": lambda u: f"<style>.a{{background:#eee url({u}) repeat-x}}</style><div class=a>Hi</div>",
    "<style> content:url()": lambda u: f'<style>.a::after{{content:url("{u}")}}</style><p class=a>Hi</p>',
    "<picture><source srcset>": lambda u: (
        f'<picture><source srcset="{u}" type="image/gif"><img src="{CONTENT}" width="600" alt=""></picture>'
    ),
    "display:none": lambda u: f'<img src="{u}" style="display:none">',
    "visibility:hidden": lambda u: f'<img src="{u}" style="visibility:hidden">',
    "opacity:0": lambda u: f'<img src="{u}" style="opacity:0">',
    "max-height:0": lambda u: f'<img src="{u}" style="max-height:0;max-width:0">',
    "width:0 style": lambda u: f'<img src="{u}" style="width:0;height:0">',
    "off-screen": lambda u: f'<img src="{u}" style="position:absolute;left:-9999px">',
    "overflow:hidden 0-size box": lambda u: f'<div style="width:0;height:0;overflow:hidden"><img src="{u}"></div>',
    "display:none box": lambda u: f'<div style="display:none"><img src="{u}"></div>',
}
# Shapes that betray a beacon whatever its host (tried with a host no list knows).
BEACON_SHAPES = [
    "1x1 attributes", "Outlook .0104in", "width/height 0", "cm", "mm", "pt", "pc", "em", "rem", "%",
    "display:none", "visibility:hidden", "opacity:0", "max-height:0", "width:0 style", "off-screen",
    "overflow:hidden 0-size box", "display:none box",
]


def message(fragment: str) -> bytes:
    body = fragment if "<body" in fragment else f"<body><p>Hello Ana,</p>{fragment}<p>Best, Jan</p></body>"
    return (
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"<html>{body}</html>\r\n"
    ).encode()


def removed(rules: TrackerRules, url: str, shape: str) -> bool:
    """Whether the tracker URL is gone from the message after removal."""
    escaped = html.escape(url, quote=True)
    out = strip_trackers(message(SHAPES[shape](escaped)), rules, SENDER).raw
    return escaped.encode() not in out and url.encode() not in out


def load_samples() -> dict:
    return yaml.safe_load((FIXTURES / "samples.yaml").read_text())


def mtb_patterns(path: Path) -> list[tuple[str, str]]:
    """(vendor, pattern) of MailTrackerBlocker's tracker dictionary, read from its source."""
    src = path.read_text()
    body = src[src.index("getTrackerDict") :]
    body = body[body.index("@{") + 2 :]
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if body.startswith("//", i):
            i = body.find("\n", i)
            i = len(body) if i < 0 else i
            continue
        if body.startswith('@"', i):
            j, value = i + 2, ""
            while body[j] != '"':
                step = 2 if body[j] == "\\" else 1
                value += body[j : j + step]
                j += step
            tokens.append(("s", value.replace("\\\\", "\\")))
            i = j + 1
            continue
        if body[i] in "[]:}":
            tokens.append(("p", body[i]))
            if body[i] == "}":
                break
        i += 1
    pairs: list[tuple[str, str]] = []
    vendor = ""
    depth = 0
    for k, (kind, value) in enumerate(tokens):
        if kind == "p":
            depth += {"[": 1, "]": -1}.get(value, 0)
        elif depth == 0 and k + 1 < len(tokens) and tokens[k + 1] == ("p", ":"):
            vendor = value
        elif depth == 1:
            pairs.append((vendor, value))
    return pairs


def check_against_mtb(samples: dict, path: Path) -> None:
    pairs = mtb_patterns(path)
    entries = next(lst for lst in samples["lists"] if lst["name"] == "MailTrackerBlocker")["entries"]
    urls: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        urls[e["vendor"]].append(e["url"])
    missing = [
        (v, p) for v, p in pairs if not any(re.search(p, f'<img src="{u}">', re.I) for u in urls.get(v, []))
    ]
    vendors = {v for v, _ in pairs}
    print(f"MailTrackerBlocker source: {len(pairs)} patterns of {len(vendors)} vendors; "
          f"{len(pairs) - len(missing)} have a sample URL here")
    for v, p in missing:
        print(f"  no sample for {v}: {p}")


def bench(rules: TrackerRules, samples: dict, legit: dict, quick: bool) -> None:
    lists = samples["lists"]
    print("== By pattern alone (a plain <img> with no size hint)")
    for lst in lists:
        entries = lst["entries"]
        ok = [removed(rules, e["url"], "plain <img>, no size") for e in entries]
        by_vendor: dict[str, bool] = defaultdict(lambda: True)
        for e, hit in zip(entries, ok, strict=True):
            by_vendor[e["vendor"]] &= hit
        print(f"  {lst['name']:<28} entries {sum(ok):>4}/{len(entries):<4} "
              f"vendors {sum(by_vendor.values()):>4}/{len(by_vendor)}")
        for e, hit in zip(entries, ok, strict=True):
            if not hit and not quick:
                print(f"      kept: {e['vendor']}: {e['url']}")

    print("== Per shape, every list's trackers (vendors with every entry removed)")
    every = [e for lst in lists for e in lst["entries"]]
    mtb = next(lst for lst in lists if lst["name"] == "MailTrackerBlocker")["entries"]
    for shape in SHAPES:
        for label, entries in (("MailTrackerBlocker", mtb), ("all lists", every)):
            ok = [removed(rules, e["url"], shape) for e in entries]
            by_vendor: dict[str, bool] = defaultdict(lambda: True)
            for e, hit in zip(entries, ok, strict=True):
                by_vendor[(label, e["vendor"])] &= hit  # type: ignore[index]
            print(f"  {shape:<28} {label:<18} entries {sum(ok):>4}/{len(entries):<4} "
                  f"vendors {sum(by_vendor.values()):>4}/{len(by_vendor)}")

    print("== Shape alone (a host no list knows)")
    caught = [s for s in BEACON_SHAPES if removed(rules, UNKNOWN, s)]
    print(f"  {len(caught)}/{len(BEACON_SHAPES)} beacon shapes removed"
          + "".join(f"\n      missed: {s}" for s in BEACON_SHAPES if s not in caught))

    print("== Click-tracking links")
    links = samples["links"]
    right = wrong = 0
    recoverable = sum(1 for link in links if link["target"])
    for link in links:
        fragment = f'<a href="{html.escape(link["url"], quote=True)}">link</a>'
        out = strip_trackers(message(fragment), rules, SENDER, unwrap_links=True)
        got = re.search(rb'href="([^"]*)"', out.raw)
        href = html.unescape(got.group(1).decode()) if got else ""
        expected = link["target"] or link["url"]
        if href == expected:
            right += link["target"] is not None
        else:
            wrong += 1
            print(f"      {link['vendor']}: got {href[:90]}")
    print(f"  unwrapped to the right target {right}/{recoverable}; wrong or broken {wrong}/{len(links)}")

    print("== Legitimate images")
    lost = []
    for item in legit["images"]:
        raw = message(item["html"])
        out = strip_trackers(raw, rules, legit["sender_domain"], unwrap_links=True)
        if out.raw != raw:
            lost.append((item["kind"], item["html"], [r.rule for r in out.removed]))
    print(f"  removed or changed {len(lost)} of {len(legit['images'])}")
    for kind, fragment, why in lost:
        print(f"      {kind}: {fragment[:100]} ({', '.join(why)})")

    print("== Speed")
    newsletter = "".join(item["html"] for item in legit["images"]) * 4 + SHAPES["1x1 attributes"](mtb[0]["url"])
    raw = message("<p>" + "Lorem ipsum dolor sit amet. " * 400 + "</p>" + newsletter)
    n = 20 if quick else 100
    start = time.perf_counter()
    for _ in range(n):
        strip_trackers(raw, rules, SENDER, unwrap_links=True)
    per_message = (time.perf_counter() - start) / n
    images = newsletter.count("<img")
    print(f"  {len(raw) // 1024} KB HTML with {images} images: {per_message * 1000:.2f} ms per message")
    urls = [e["url"] for e in every]
    start = time.perf_counter()
    for _ in range(2 if quick else 5):
        for url in urls:
            strip_trackers(message(f'<img src="{url}">'), rules, SENDER)
    elapsed = time.perf_counter() - start
    print(f"  one-image messages: {(2 if quick else 5) * len(urls) / elapsed:,.0f} per second")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=Path, default=RULES_FILE, help="tracker rules (default: the shipped ones)")
    parser.add_argument("--mtb", type=Path, help="MailTrackerBlocker's Source/MTBBlockedMessage.m, to check "
                        "that every one of its patterns has a sample URL here")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no list of misses")
    args = parser.parse_args(argv)
    samples = load_samples()
    legit = yaml.safe_load((FIXTURES / "legitimate.yaml").read_text())
    if args.mtb:
        if not args.mtb.is_file():
            print(f"{args.mtb}: not found; the MailTrackerBlocker check is skipped", file=sys.stderr)
        else:
            check_against_mtb(samples, args.mtb)
    rules = load_file(args.rules, TrackerRules)
    bench(rules, samples, legit, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
