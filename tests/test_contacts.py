"""Contact import (CSV), contact display and consent history, through the real CLI."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import proxy.cli.commands
from proxy.cli.rights import add_commands
from proxy.store import Store
from tests.harness import upstream_settings, write_config

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"
HEADER = "address,name,company,role,language,country,source,reason,tracking_consent,marketing_consent\n"


@pytest.fixture(autouse=True)
def rights_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI with this feature's commands, whether or not cli.py wires them in already."""
    original = proxy.cli.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "forget" not in sub.choices:
            add_commands(sub)
        return parser

    monkeypatch.setattr(proxy.cli, "build_parser", build)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, upstream_settings(1))


def gdpr(config: Path, *args: str) -> int:
    return proxy.cli.main(["-c", str(config), *args])


@contextmanager
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the test's store, closed after use (autocommit)."""
    conn = sqlite3.connect(tmp_path / "data" / "store.sqlite3", isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def contact_count(tmp_path: Path) -> int:
    with db(tmp_path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])


def generated(count: int, bad: dict[int, str] | None = None) -> str:
    """``count`` contact rows; ``bad`` replaces the row at a 0-based index."""
    rows = []
    for i in range(count):
        rows.append(
            f"person{i}@company{i % 37}.example,Person {i},Company {i % 37},Buyer,de,DE,"
            f'"company website, contact page",your role as buyer,unknown,unknown\n'
        )
    for index, row in (bad or {}).items():
        rows[index] = row
    return HEADER + "".join(rows)


def test_thousand_rows_with_three_bad_ones_import_nothing_then_all(tmp_path, config, capsys):
    bad = {
        10: "not-an-address,X,Y,Z,de,DE,web,r,unknown,unknown\n",
        500: "ok500@company.example,X,Y,Z,deu,DE,web,r,unknown,unknown\n",
        998: "ok998@company.example,X,Y,Z,de,DE,web,r,yes,unknown\n",
    }
    path = tmp_path / "contacts.csv"
    path.write_text(generated(1000, bad), encoding="utf-8")
    assert gdpr(config, "contacts", "import", str(path)) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err
    # line = index + 2 (header is line 1)
    assert f"{path}:12: address: not an e-mail address" in err
    assert f"{path}:502: language: 'deu' is not a two-letter language code" in err
    assert f"{path}:1000: tracking_consent: 'yes' is not one of unknown, granted, denied" in err
    assert err.count(f"{path}:") == 3
    assert contact_count(tmp_path) == 0

    path.write_text(generated(1000), encoding="utf-8")
    started = time.monotonic()
    assert gdpr(config, "contacts", "import", str(path)) == 0
    assert time.monotonic() - started < 10
    assert "1000 new contact(s), 0 updated" in capsys.readouterr().out
    assert contact_count(tmp_path) == 1000


async def deliver(tmp_path: Path, address: str) -> dict[str, Any] | None:
    """What the relay records once upstream accepted a message."""
    store = await Store.open(tmp_path / "data" / "store.sqlite3")
    try:
        await store.record_delivery("<m1@nordlicht.example>", [address])
        return await store.contact(address)
    finally:
        await store.close()


def test_reimport_updates_without_duplicating_or_touching_contact_dates(tmp_path, config, capsys):
    path = tmp_path / "contacts.csv"
    path.write_text(HEADER + "Jan@Kunde.example,Jan Kowalski,Kunde GmbH,Buyer,de,DE,LinkedIn profile,,,\n")
    assert gdpr(config, "contacts", "import", str(path)) == 0
    before = asyncio.run(deliver(tmp_path, "jan@kunde.example"))
    assert before is not None and before["first_contact_at"]

    # company changes, the name cell is empty (kept), role is new
    path.write_text(HEADER + "jan@kunde.example,,Kunde AG,Head of purchasing,,,,,granted,\n")
    assert gdpr(config, "contacts", "import", str(path)) == 0
    assert "0 new contact(s), 1 updated" in capsys.readouterr().out
    with db(tmp_path) as conn:
        rows = conn.execute("SELECT * FROM contacts").fetchall()
        events = conn.execute("SELECT kind, value, how FROM consent_events").fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["company"], row["role"], row["language"]) == (
        "Jan Kowalski",
        "Kunde AG",
        "Head of purchasing",
        "de",
    )
    assert row["first_contact_at"] == before["first_contact_at"]
    assert row["last_contact_at"] == before["last_contact_at"]
    assert row["tracking_consent"] == "granted"
    assert [tuple(e) for e in events] == [("tracking", "granted", "contacts import of contacts.csv")]


def test_crm_export_with_mapping_semicolons_and_bom(tmp_path, config, capsys):
    mapping = "Firma=company,Vorname Nachname=name,Position=role,Sprache=language,Land=country,Quelle=source"
    path = FIXTURES / "crm_export_de.csv"
    assert gdpr(config, "contacts", "import", str(path), "--map", mapping) == 0
    captured = capsys.readouterr()
    assert "3 new contact(s)" in captured.out
    assert "columns not imported: Telefon, Notiz" in captured.err
    with db(tmp_path) as conn:
        rows = {r["address"]: dict(r) for r in conn.execute("SELECT * FROM contacts")}
        raw = conn.execute("SELECT group_concat(coalesce(name,'') || coalesce(company,'')) FROM contacts").fetchone()
    assert set(rows) == {"jan.kowalski@kunde.example", "eva.lang@firma.example", "marc@societe.example"}
    eva = rows["eva.lang@firma.example"]
    assert eva["company"] == "Firma AG; Niederlassung Süd"  # quoted delimiter kept
    assert (eva["country"], eva["source"], eva["role"]) == ("AT", "Messeliste 2026", "Geschäftsführerin")
    assert rows["marc@societe.example"]["source"] == "site web de l'entreprise, page contact"
    assert "+49" not in raw[0]  # unmapped columns are never stored


def test_semicolon_file_with_standard_header(tmp_path, config):
    assert gdpr(config, "contacts", "import", str(FIXTURES / "contacts_fr_semicolon.csv")) == 0
    with db(tmp_path) as conn:
        pierre = dict(conn.execute("SELECT * FROM contacts WHERE address = 'pierre@entreprise.example'").fetchone())
        claire = dict(
            conn.execute("SELECT * FROM contacts WHERE address = 'claire.martin@entreprise.example'").fetchone()
        )
    assert (pierre["language"], pierre["country"], pierre["tracking_consent"]) == ("fr", "FR", "denied")
    assert claire["source"] == "site web de l'entreprise, page contact"
    assert claire["reason"] == "votre fonction de responsable achats"


def test_mapping_errors_and_missing_address_column(tmp_path, config, capsys):
    path = FIXTURES / "crm_export_de.csv"
    assert gdpr(config, "contacts", "import", str(path), "--map", "Firma=firm") == 1
    assert "'firm' is not one of address, name" in capsys.readouterr().err
    other = tmp_path / "noaddress.csv"
    other.write_text("name,company\nJan,Kunde\n")
    assert gdpr(config, "contacts", "import", str(other)) == 1
    assert f"{other}:1: the header needs an 'address' column" in capsys.readouterr().err


def test_other_encoding_is_a_clear_error(tmp_path, config, capsys):
    assert gdpr(config, "contacts", "import", str(FIXTURES / "contacts_latin1.csv")) == 1
    err = capsys.readouterr().err
    assert "contacts_latin1.csv:2: not UTF-8 text" in err and "CSV UTF-8" in err
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("address\r\njan@kunde.example\r\n".encode("utf-16"))
    assert gdpr(config, "contacts", "import", str(utf16)) == 1
    assert "UTF-16" in capsys.readouterr().err
    assert not (tmp_path / "data" / "store.sqlite3").exists()  # refused before the store was opened


def test_row_problems_are_all_reported(tmp_path, config, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "a@x.example,A,,,de,France,,,,\n"
        + "b@x.example,B,,,,,,,,maybe\n"
        + "A@X.example,A again,,,,,,,,\n"
        + ",nobody,,,,,,,,\n"
        + "c@x.example,C,,,,,,,,,extra\n"
    )
    assert gdpr(config, "contacts", "import", str(path)) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: country: 'France' is not a two-letter country code" in err
    assert f"{path}:3: marketing_consent: 'maybe' is not one of" in err
    assert f"{path}:4: address: same address as line 2" in err
    assert f"{path}:5: address: empty" in err
    assert f"{path}:6: (row): 11 fields but the header has 10" in err
    assert contact_count(tmp_path) == 0


def test_dry_run_imports_nothing(tmp_path, config, capsys):
    path = tmp_path / "ok.csv"
    path.write_text(generated(5))
    assert gdpr(config, "contacts", "import", str(path), "--dry-run") == 0
    assert "5 row(s) valid; nothing imported" in capsys.readouterr().out
    assert contact_count(tmp_path) == 0


def test_consent_changes_are_recorded_with_history(tmp_path, config, capsys):
    address = "Jan@Kunde.example"
    assert gdpr(config, "consent", address, "--tracking", "granted", "--how", "phone call of 2026-11-20") == 0
    assert gdpr(config, "consent", address, "--marketing", "denied") == 0
    assert gdpr(config, "consent", address, "--tracking", "denied", "--how", "reply of 2026-11-22") == 0
    assert gdpr(config, "consent", address) == 1  # nothing to record
    with db(tmp_path) as conn:
        contact = conn.execute("SELECT * FROM contacts WHERE address = 'jan@kunde.example'").fetchone()
        events = conn.execute("SELECT kind, value, how, at FROM consent_events ORDER BY id").fetchall()
    assert (contact["tracking_consent"], contact["marketing_consent"]) == ("denied", "denied")
    assert [(e["kind"], e["value"], e["how"]) for e in events] == [
        ("tracking", "granted", "phone call of 2026-11-20"),
        ("marketing", "denied", "recorded with gdpr-proxy consent"),
        ("tracking", "denied", "reply of 2026-11-22"),
    ]
    assert all(e["at"][:4].isdigit() for e in events)
    capsys.readouterr()
    assert gdpr(config, "contacts", "show", address) == 0
    out = capsys.readouterr().out
    assert "tracking consent:  denied (" in out and "reply of 2026-11-22)" in out
    assert "consent history:   3 decision(s)" in out


def test_show_unknown_address(tmp_path, config, capsys):
    assert gdpr(config, "contacts", "show", "nobody@x.example") == 0
    assert "no contact record" in capsys.readouterr().out
    assert gdpr(config, "contacts", "show", "not an address") == 1
