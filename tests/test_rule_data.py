"""Checks on the shipped rule data: rules/trackers.yaml, rules/regions.yaml, rules/freemail.yaml.

These test the data itself (every regex compiles and matches its example, no tracker pattern
eats ordinary images, regions are consistent, domains look like domains), independently of
the loader that turns the files into dataclasses.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

RULES = Path(__file__).resolve().parent.parent / "rules"


def _load(name: str):
    with (RULES / name).open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


TRACKERS = _load("trackers.yaml")
REGIONS = _load("regions.yaml")
FREEMAIL = _load("freemail.yaml")


def _rules(kind: str) -> list[tuple[str, dict]]:
    return [(vendor["name"], rule) for vendor in TRACKERS["vendors"] for rule in vendor.get(kind) or []]


PIXEL_RULES = _rules("pixels")
LINK_RULES = _rules("links")
ALL_RULES = [("pixels", *r) for r in PIXEL_RULES] + [("links", *r) for r in LINK_RULES]


def _rule_id(entry: tuple[str, str, dict]) -> str:
    kind, name, rule = entry
    return f"{name}:{kind}:{rule['pattern']}"


# --------------------------------------------------------------------------- trackers.yaml


def test_trackers_top_level_keys():
    assert set(TRACKERS) == {"shape", "vendors"}
    assert set(TRACKERS["shape"]) == {"max_pixel_size"}
    size = TRACKERS["shape"]["max_pixel_size"]
    assert isinstance(size, int) and not isinstance(size, bool) and size >= 1


def test_vendor_entries_have_exact_keys():
    for vendor in TRACKERS["vendors"]:
        assert set(vendor) <= {"name", "pixels", "links"}, vendor
        assert isinstance(vendor["name"], str) and vendor["name"].strip() == vendor["name"] != ""
        assert vendor.get("pixels"), f"{vendor['name']}: no pixel patterns"
        for kind in ("pixels", "links"):
            for rule in vendor.get(kind) or []:
                allowed = {"pattern", "example"} | (
                    {"target_param", "target_encoding", "target_key"} if kind == "links" else {"sized_is_content"}
                )
                assert {"pattern", "example"} <= set(rule) <= allowed, (vendor["name"], rule)
                assert isinstance(rule["pattern"], str) and isinstance(rule["example"], str)


def test_vendor_names_unique():
    names = [v["name"] for v in TRACKERS["vendors"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, dupes
    lowered = [n.casefold() for n in names]
    assert len(set(lowered)) == len(lowered), "names differing only in case"


def test_at_least_150_vendors():
    assert len(TRACKERS["vendors"]) >= 150


def test_patterns_unique():
    for kind in ("pixels", "links"):
        patterns = [rule["pattern"] for _, rule in _rules(kind)]
        dupes = sorted({p for p in patterns if patterns.count(p) > 1})
        assert not dupes, (kind, dupes)


@pytest.mark.parametrize("entry", ALL_RULES, ids=_rule_id)
def test_pattern_compiles_and_matches_example(entry):
    _kind, _name, rule = entry
    regex = re.compile(rule["pattern"], re.IGNORECASE)
    assert regex.search(rule["example"]), f"{rule['pattern']!r} does not match {rule['example']!r}"


@pytest.mark.parametrize("entry", ALL_RULES, ids=_rule_id)
def test_pattern_is_anchored_and_example_is_a_url(entry):
    _kind, _name, rule = entry
    # Anchoring at the scheme keeps a pattern from matching a tracker URL that merely appears
    # inside another URL (a Gmail image-proxy link, a query parameter) and speeds up misses.
    assert rule["pattern"].startswith("^https?://"), rule["pattern"]
    parts = urlsplit(rule["example"])
    assert parts.scheme in {"http", "https"} and parts.netloc, rule["example"]
    assert not re.search(r"\s", rule["example"])


@pytest.mark.parametrize("entry", [e for e in ALL_RULES if e[0] == "links"], ids=_rule_id)
def test_target_param_present_in_example(entry):
    _kind, _name, rule = entry
    param = rule.get("target_param")
    if param is None:
        return
    assert isinstance(param, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", param)
    values = parse_qs(urlsplit(rule["example"]).query).get(param)
    assert values, f"{param!r} missing from {rule['example']!r}"
    assert values[0].startswith(("http://", "https://")), values


# Ordinary, non-tracking images that mail really contains. Several of them sit on the same
# hosts as trackers (mailtrack.io, HubSpot, Mailchimp, Campaign Monitor, Salesforce, Klaviyo,
# Intercom, SendGrid ...) so that host-only or loose patterns are caught.
NON_TRACKING_URLS = [
    "https://cdn.example.com/logo.png",
    "https://www.example.com/images/header.jpg",
    "https://example.com/o/logo.png",
    "https://example.com/t/o.png",
    "https://example.com/track/open-house.jpg",
    "https://example.com/open/banner.gif",
    "https://www.example.de/newsletter/2024/01/teaser.png?w=600",
    "https://www.gstatic.com/images/branding/product/2x/gmail_2020q4_48dp.png",
    "https://www.gstatic.com/images/icons/material/system/1x/email_black_20dp.png",
    "https://ci3.googleusercontent.com/meips/ADKq_NbQ1xYz0aBcD=s0-d-e1-ft#https://cdn.example.com/logo.png",
    "https://ci4.googleusercontent.com/proxy/AbCdEf123=s0-d-e1-ft#https://www.example.com/img/signature.png",
    "https://lh3.googleusercontent.com/a/ACg8ocK1a2b3c4d5e6f=s96-c",
    "https://mailtrack.io/images/logo-mailtrack.png",
    "https://mailsuite.com/static/img/mailsuite-logo.svg",
    "https://static.hsappstatic.net/ui-images/static-2.345/optimized/logo.png",
    "https://f.hubspotusercontent40.net/hubfs/1234567/Logos/company-logo.png",
    "https://cdn2.hubspot.net/hubfs/1234567/email/header.png",
    "https://www.hubspot.com/hubfs/assets/hubspot.com/style-guide/brand-guidelines/guidelines_the-logo.svg",
    "https://mcusercontent.com/5d2f1a0b3c4e5f6a7b8c9d0e1/images/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d.png",
    "https://gallery.mailchimp.com/5d2f1a0b3c4e5f6a7b8c9d0e1/images/header.jpg",
    "https://cdn-images.mailchimp.com/icons/social-block-v2/color-linkedin-48.png",
    "https://i1.createsend1.com/ei/d/AB/CDEF0123456789/img/header.png",
    "https://img.createsend1.com/img/templatebuilder/spacer.png",
    "https://d3k81ch9hvuctc.cloudfront.net/company/AbCdEf/images/logo.png",
    "https://downloads.intercomcdn.com/i/o/123456789/abcdef0123456789/logo.png",
    "https://static.intercomassets.com/avatars/1234567/square_128/photo.jpg",
    "https://marketing-image-production.s3.amazonaws.com/uploads/1a2b3c4d5e6f.png",
    "https://cdn.sendgrid.com/brand/logo.png",
    "https://mc.sendgrid.com/assets/images/logo.png",
    "https://eu12.salesforce.com/servlet/servlet.ImageServer?id=0150X000001AbCd&oid=00D0X000000AbCd&lastMod=1700000000000",
    "https://image.s10.sfmc-content.com/lib/fe3c15717564047d7c1d73/m/1/header.png",
    "https://image.e.example.com/lib/fe3c15717564047d7c1d73/m/1/logo.png",
    "https://img.en25.com/EloquaImages/clients/ExampleCorp/{1a2b3c4d}_logo.png",
    "https://files.constantcontact.com/1a2b3c4d501/5e6f7a8b-9c0d.png",
    "https://imgssl.constantcontact.com/letters/images/sys/S.gif",
    "https://img.mailinblue.com/1234567/images/content_library/original/logo.png",
    "https://storage.mlcdn.com/account_image/123456/logo.png",
    "https://assets.mlcdn.com/ml/images/icons/default/round/black/facebook.png",
    "https://embed.filekitcdn.com/e/abcdef123456/logo.png",
    "https://i.movableink.com/p/rp/1a2b3c4d5e6f7a8b.png",
    "https://static.klaviyo.com/onsite/images/logo.png",
    "https://cdn.braze.eu/appboy/communication/assets/image_assets/images/1a2b3c/original.png",
    "https://res.cloudinary.com/example/image/upload/v1/email/logo.png",
    "https://images.ctfassets.net/abc123/def456/logo.png",
    "https://media.licdn.com/dms/image/C4E0BAQ/company-logo_200_200/0/1600000000000?e=2147483647",
    "https://static.licdn.com/aero-v1/sc/h/1a2b3c4d5e6f",
    "https://pbs.twimg.com/profile_images/123456789/logo_400x400.png",
    "https://github.githubassets.com/images/modules/logos_page/GitHub-Mark.png",
    "https://avatars.githubusercontent.com/u/123456?s=64&v=4",
    "https://www.facebook.com/images/fb_icon_325x325.png",
    "https://www.linkedin.com/company/example/logo.png",
    "https://www.amazon.de/images/G/03/logo.png",
    "https://m.media-amazon.com/images/G/01/email/logo.png",
    "https://www.paypalobjects.com/digitalassets/c/website/logo/full-text/pp_fc_hl.svg",
    "https://www.grammarly.com/opensource/logo.png",
    "https://cdn.shopify.com/s/files/1/0123/4567/files/logo.png?v=1700000000",
    "https://substackcdn.com/image/fetch/w_96,c_limit/logo.png",
    "https://www.dropbox.com/static/images/logo.png",
    "https://outlook.office365.com/owa/service.svc/s/GetPersonaPhoto?email=jane%40example.com",
    "https://attachments.office.net/owa/jane%40example.com/service.svc/s/GetAttachmentThumbnail?id=AAMk",
    "https://www.dynamics.com/content/dam/logo.png",
    "https://www.zoho.com/sites/default/files/zoho_general_pages/zoho-logo.png",
    "https://www.activecampaign.com/wp-content/uploads/logo.png",
    "https://app.pipedrive.com/static/img/logo.png",
    "https://www.outreach.io/hubfs/logo.png",
    "https://salesloft.com/wp-content/uploads/logo.png",
    "https://yesware.com/wp-content/themes/yesware/images/logo.png",
    "https://www.mixmax.com/images/logo.png",
    "https://www.streak.com/images/logo.png",
    "https://www.google-analytics.com/analytics.js",
    "https://www.mailjet.com/images/email/transac/logo_header.png",
    "https://www.mailgun.com/images/logo.png",
    "https://www.postmarkapp.com/images/logo.png",
    "https://lists.example.org/lists/images/logo.png",
]


@pytest.mark.parametrize("url", NON_TRACKING_URLS)
def test_no_pixel_pattern_matches_ordinary_image(url):
    hits = [
        (name, rule["pattern"])
        for name, rule in PIXEL_RULES
        if re.search(rule["pattern"], url, re.IGNORECASE)
    ]
    assert not hits, f"{url} would be stripped by {hits}"


@pytest.mark.parametrize("url", NON_TRACKING_URLS)
def test_no_link_pattern_matches_ordinary_url(url):
    hits = [
        (name, rule["pattern"]) for name, rule in LINK_RULES if re.search(rule["pattern"], url, re.IGNORECASE)
    ]
    assert not hits, f"{url} would be treated as a tracking link by {hits}"


# --------------------------------------------------------------------------- regions.yaml


TLD_RE = re.compile(r"[a-z]{2}")


def test_regions_top_level_keys():
    assert set(REGIONS) == {"default_region", "regions", "no_tracking_without_consent", "languages"}


def test_every_tld_in_one_region_only():
    seen: dict[str, str] = {}
    for region, tlds in REGIONS["regions"].items():
        assert isinstance(tlds, list) and tlds, region
        for tld in tlds:
            assert isinstance(tld, str), (region, tld)  # a bare `no` would load as False
            assert TLD_RE.fullmatch(tld), (region, tld)
            assert tld not in seen, f".{tld} is in both {seen[tld]} and {region}"
            seen[tld] = region


def test_default_region_exists_and_is_cautious():
    assert REGIONS["default_region"] in REGIONS["regions"]
    assert REGIONS["default_region"] in REGIONS["no_tracking_without_consent"]


def test_no_tracking_regions_exist():
    names = REGIONS["no_tracking_without_consent"]
    assert names and len(set(names)) == len(names)
    for name in names:
        assert name in REGIONS["regions"], name
    assert {"eu", "uk", "ch"} <= set(names)


EU_MEMBERS = {
    "at", "be", "bg", "cy", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr", "hr", "hu",
    "ie", "it", "lt", "lu", "lv", "mt", "nl", "pl", "pt", "ro", "se", "si", "sk",
}  # fmt: skip


def test_eu_region_covers_eu_and_eea():
    eu = set(REGIONS["regions"]["eu"])
    assert EU_MEMBERS | {"is", "li", "no", "eu"} <= eu
    assert REGIONS["regions"]["uk"] == ["uk"] or "uk" in REGIONS["regions"]["uk"]
    assert "ch" in REGIONS["regions"]["ch"]
    assert {"us", "ca", "au", "jp", "br", "in"} <= set(REGIONS["regions"]["other"])


def test_language_codes():
    langs = REGIONS["languages"]
    assert langs
    for tld, lang in langs.items():
        assert isinstance(tld, str) and TLD_RE.fullmatch(tld), tld
        assert isinstance(lang, str) and re.fullmatch(r"[a-z]{2}", lang), (tld, lang)


def test_languages_for_footer_languages():
    langs = REGIONS["languages"]
    expected = {
        "de": "de", "at": "de", "fr": "fr", "pl": "pl", "it": "it", "es": "es",
        "mx": "es", "ma": "ar", "dz": "ar", "tn": "ar", "eg": "ar", "sa": "ar", "ae": "ar",
        "us": "en", "uk": "en", "ie": "en",
    }  # fmt: skip
    for tld, lang in expected.items():
        assert langs.get(tld) == lang, tld


# --------------------------------------------------------------------------- freemail.yaml

DOMAIN_RE = re.compile(r"(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def test_freemail_top_level_keys():
    assert set(FREEMAIL) == {"consumer_domains"}


def test_freemail_domains_plausible_unique_lowercase():
    domains = FREEMAIL["consumer_domains"]
    assert len(domains) >= 300
    for domain in domains:
        assert isinstance(domain, str), domain
        assert domain == domain.strip().lower(), domain
        assert DOMAIN_RE.fullmatch(domain), domain
    dupes = sorted({d for d in domains if domains.count(d) > 1})
    assert not dupes, dupes


def test_freemail_has_the_big_providers():
    domains = set(FREEMAIL["consumer_domains"])
    assert {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "gmx.de",
        "gmx.net", "web.de", "t-online.de", "orange.fr", "free.fr", "laposte.net", "wp.pl",
        "libero.it", "proton.me", "protonmail.com", "mail.ru", "seznam.cz", "bluewin.ch",
    } <= domains  # fmt: skip


def test_freemail_has_no_business_mail_hosts():
    # Hosts whose addresses belong to companies (or that are mail infrastructure) must never
    # be listed: listing them would block legitimate B2B mail.
    domains = set(FREEMAIL["consumer_domains"])
    business = {
        "google.com", "microsoft.com", "office365.com", "onmicrosoft.com", "outlook.office365.com",
        "btconnect.com", "amazonses.com", "sendgrid.net", "mailgun.org", "example.com", "pec.it",
    }  # fmt: skip
    assert not (domains & business)


def test_freemail_sorted_within_groups():
    # Groups are separated by comment lines in the file; within a group entries are sorted.
    groups: list[list[str]] = [[]]
    for line in (RULES / "freemail.yaml").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            groups.append([])
        elif stripped.startswith("- "):
            groups[-1].append(stripped[2:].strip())
    for group in groups:
        assert group == sorted(group), group
