"""Tracker removal per HTML shape, for a sample of listed vendors, with legitimate images kept."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
import yaml

from proxy.mime import TrackerRules, strip_trackers
from proxy.schema import SchemaError, load_file, load_text

ROOT = Path(__file__).parent.parent
RULES = load_file(ROOT / "rules" / "trackers.yaml", TrackerRules)
FIXTURES = Path(__file__).parent / "fixtures" / "trackers"
SAMPLES = yaml.safe_load((FIXTURES / "samples.yaml").read_text())
LEGIT = yaml.safe_load((FIXTURES / "legitimate.yaml").read_text())
SENDER = "acme-analytics.eu"
UNKNOWN = "https://t.unlisted-tracker.example/o/5f2c8e1a9b3d.gif"
CONTENT = "https://images.northwind-outdoor.com/spring/hero.jpg"


def message(fragment: str) -> bytes:
    return (
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body><p>Hi</p>{fragment}<p>Bye</p></body></html>\r\n"
    ).encode()


def body(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[1].decode()


def sample(list_name: str, every: int) -> list[tuple[str, str]]:
    entries = next(lst for lst in SAMPLES["lists"] if lst["name"] == list_name)["entries"]
    return [(e["vendor"], e["url"]) for e in entries[::every]]


VENDOR_SAMPLE = sample("MailTrackerBlocker", 23) + sample("Sales engagement tools", 3) + sample("EasyPrivacy", 40)


@pytest.mark.parametrize(("vendor", "url"), VENDOR_SAMPLE)
def test_listed_vendor_removed_as_plain_image_without_size(vendor: str, url: str) -> None:
    escaped = html.escape(url, quote=True)
    out = strip_trackers(message(f'<img src="{escaped}">'), RULES, SENDER)
    assert body(out.raw) == "<html><body><p>Hi</p><p>Bye</p></body></html>\r\n", vendor
    assert len(out.removed) == 1


# (fragment with {u}, expected body after removal)
SHAPES = [
    ('<img srcset="{u} 1x, {u} 2x" alt="">', ""),
    (f'<img src="{CONTENT}" srcset="{{u}} 2x" width="600">', f'<img src="{CONTENT}" width="600">'),
    (
        f'<img src="{CONTENT}" srcset="{CONTENT} 1x, {{u}} 2x" width="600">',
        f'<img src="{CONTENT}" srcset="{CONTENT} 1x" width="600">',
    ),
    (
        '<table><tr><td background="{u}" bgcolor="#fff">x</td></tr></table>',
        '<table><tr><td bgcolor="#fff">x</td></tr></table>',
    ),
    ('<table background="{u}"><tr><td>x</td></tr></table>', "<table><tr><td>x</td></tr></table>"),
    ('<div style="background:#fff url({u}) no-repeat">x</div>', '<div style="background:#fff none no-repeat">x</div>'),
    ("<div style=\"color:red;background-image:url('{u}');\">x</div>", '<div style="color:red;">x</div>'),
    ('<span style="content:url({u})"></span>', '<span style=""></span>'),
    ("<style>.a{{background-image:url('{u}')}}</style>", "<style>.a{}</style>"),
    ('<style>.a::after{{content:url("{u}")}} .b{{color:red}}</style>', "<style>.a::after{} .b{color:red}</style>"),
    ('<style>@import url("{u}");p{{margin:0}}</style>', "<style>p{margin:0}</style>"),
    (f'<picture><source srcset="{{u}}" type="image/gif"><img src="{CONTENT}" width="600"></picture>',
     f'<picture><img src="{CONTENT}" width="600"></picture>'),
    ('<!--[if mso]><v:rect><v:fill type="frame" src="{u}" color="#fff" /></v:rect><![endif]-->',
     '<!--[if mso]><v:rect><v:fill type="frame" color="#fff" /></v:rect><![endif]-->'),
]


@pytest.mark.parametrize(("fragment", "expected"), SHAPES)
def test_every_shape_of_a_listed_tracker_is_removed_surgically(fragment: str, expected: str) -> None:
    for _, url in sample("MailTrackerBlocker", 97) + sample("Sales engagement tools", 11):
        u = html.escape(url, quote=True)
        out = strip_trackers(message(fragment.format(u=u)), RULES, SENDER)
        assert body(out.raw) == f"<html><body><p>Hi</p>{expected}<p>Bye</p></body></html>\r\n", url
        assert out.removed


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ('<img src="{u}" width="1" height="1" style="width:.0104in;height:.0104in">', "1px image"),
        ('<img src="{u}" style="width:.02cm;height:.02cm">', "1px image"),
        ('<img src="{u}" style="width:.25mm;height:.25mm">', "1px image"),
        ('<img src="{u}" style="width:.75pt;height:.75pt">', "1px image"),
        ('<img src="{u}" style="width:.0625pc;height:.0625pc">', "1px image"),
        ('<img src="{u}" style="width:.0625em;height:.0625rem">', "1px image"),
        ('<img src="{u}" style="width:0%;height:0%">', "0px image"),
        ('<img src="{u}" style="max-height:0;max-width:0">', "0px image"),
        ('<img src="{u}" style="width:0;height:0">', "0px image"),
        ('<img src="{u}" style="visibility:hidden">', "visibility:hidden"),
        ('<img src="{u}" style="opacity:0">', "opacity:0"),
        ('<img src="{u}" style="position:absolute;left:-9999px">', "off-screen"),
    ],
)
def test_beacon_shapes_on_an_unlisted_host(tag: str, reason: str) -> None:
    out = strip_trackers(message(tag.format(u=UNKNOWN)), RULES, SENDER)
    assert [r.rule for r in out.removed] == [reason]
    assert body(out.raw) == "<html><body><p>Hi</p><p>Bye</p></body></html>\r\n"


@pytest.mark.parametrize(
    ("box", "why"),
    [
        ('<div style="width:0;height:0;overflow:hidden">{img}</div>', "inside overflow:hidden width:0 box"),
        ('<div style="display:none"><div>{img}</div></div>', "inside display:none box"),
        ('<span style="position:absolute;top:-2000px">{img}</span>', "inside off-screen box"),
    ],
)
def test_unsized_image_in_a_hidden_box_is_removed_and_the_box_kept(box: str, why: str) -> None:
    raw = message(box.format(img=f'<img src="{UNKNOWN}">'))
    out = strip_trackers(raw, RULES, SENDER)
    assert [r.rule for r in out.removed] == [why]
    assert UNKNOWN not in body(out.raw) and box.format(img="") in body(out.raw)


@pytest.mark.parametrize("item", LEGIT["images"], ids=lambda i: i["kind"])
def test_legitimate_images_are_kept_byte_for_byte(item: dict[str, str]) -> None:
    raw = message(item["html"])
    out = strip_trackers(raw, RULES, LEGIT["sender_domain"], unwrap_links=True)
    assert out.raw == raw and out.removed == []


def test_host_wide_rule_keeps_an_image_that_declares_a_content_size() -> None:
    url = "https://cdn.mcauto-images-production.sendgrid.net/954c/8f3c/header.png"  # sendgrid.net: Disconnect's list
    assert strip_trackers(message(f'<img src="{url}">'), RULES, SENDER).removed
    raw = message(f'<img src="{url}" width="600">')
    assert strip_trackers(raw, RULES, SENDER).raw == raw


@pytest.mark.parametrize("link", SAMPLES["links"], ids=lambda link: link["vendor"])
def test_click_tracking_unwrapped_only_when_the_target_is_recoverable(link: dict[str, str | None]) -> None:
    href = html.escape(str(link["url"]), quote=True)
    out = strip_trackers(message(f'<a href="{href}">read</a>'), RULES, SENDER, unwrap_links=True)
    target = link["target"] or link["url"]
    assert f'<a href="{html.escape(str(target), quote=True)}">read</a>' in body(out.raw)
    assert out.links_unwrapped == (1 if link["target"] else 0)


def test_link_rule_examples_must_carry_a_recoverable_target() -> None:
    text = r"""
vendors:
  - name: X
    pixels:
      - pattern: '^https://x\.example/o/'
        example: 'https://x.example/o/1.gif'
    links:
      - pattern: '^https://x\.example/c/(?P<target>[\w=-]+)'
        example: 'https://x.example/c/bm90IGEgd2ViIGFkZHJlc3M'
        target_encoding: base64
      - pattern: '^https://x\.example/j/'
        example: 'https://x.example/j/eyJ1cmwiOiJodHRwczovL2EuZXhhbXBsZS8ifQ'
        target_encoding: base64-json
"""
    with pytest.raises(SchemaError) as exc:
        load_text(text, "trackers.yaml", TrackerRules)
    message_text = str(exc.value)
    assert "trackers.yaml:9: vendors[0].links[0].example: carries no recoverable http(s) target" in message_text
    assert "vendors[0].links[1].target_key: required with target_encoding 'base64-json'" in message_text
