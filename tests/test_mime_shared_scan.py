"""One structure scan shared by the edits of a message: the tree derived after an edit is
exactly what a fresh scan of the result gives, for real messages and for random malformed
ones, and nothing stays remembered once the pipeline is done."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bench.messages import MESSAGES
from proxy.mime import MimeError, insert_footer, strip_trackers, structure
from proxy.mime.structure import Part, scan, shared_scan
from tests.test_mime_fuzz import HTML_FOOTER, RULES, TEXT_FOOTER, message

FIXTURES = Path(__file__).parent / "fixtures"
REAL = sorted([*FIXTURES.glob("messages/*.eml"), *FIXTURES.glob("torture/*.eml")])


def same(a: Part, b: Part) -> None:
    assert (a.start, a.header_end, a.body_start, a.end, a.depth) == (
        b.start,
        b.header_end,
        b.body_start,
        b.end,
        b.depth,
    )
    assert [(h.name, h.value, h.start, h.end) for h in a.headers] == [
        (h.name, h.value, h.start, h.end) for h in b.headers
    ]
    assert (a.content_type, a.params, a.outer_boundaries) == (b.content_type, b.params, b.outer_boundaries)
    assert len(a.children) == len(b.children)
    for x, y in zip(a.children, b.children, strict=True):
        same(x, y)


def check_derived(raw: bytes) -> int:
    """Footer, then tracker removal, as the pipeline runs them; every derived tree checked."""
    structure.forget()
    derived = 0
    try:
        out = insert_footer(raw, TEXT_FOOTER, HTML_FOOTER).raw
        if out is not raw:
            same(shared_scan(out), scan(out))
            derived += 1
        stripped = strip_trackers(out, RULES, "acme.example", unwrap_links=True).raw
        if stripped is not out:
            same(shared_scan(stripped), scan(stripped))
            derived += 1
    except MimeError:
        pass
    finally:
        structure.forget()
    return derived


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_derived_tree_is_the_scanned_tree_for_real_messages(path: Path) -> None:
    check_derived(path.read_bytes())


def test_benchmark_messages_share_their_scans() -> None:
    for make in MESSAGES.values():
        raw = make() if make is not MESSAGES["25m"] else make(size=300_000)
        assert check_derived(raw) >= 1


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(message)
def test_derived_tree_is_the_scanned_tree_for_malformed_messages(raw: bytes) -> None:
    check_derived(raw)


def test_the_edit_remembers_and_the_scan_answers_from_it() -> None:
    structure.forget()
    raw = MESSAGES["50k"]()
    out = insert_footer(raw, TEXT_FOOTER, HTML_FOOTER).raw
    remembered = structure._remembered[id(out)][1]
    assert shared_scan(out) is remembered  # the tracker step reads the footer's tree, no new scan
    assert shared_scan(bytes(bytearray(out))) is not remembered  # equal bytes, another object: scanned
    structure.forget()
    assert not structure._remembered
