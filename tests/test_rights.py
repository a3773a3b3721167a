"""Access export, erasure (also while the relay runs), retention purge, erasure requests, register."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import smtplib
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from proxy.config.settings import RetentionConfig, load_config
from proxy.rights.subject_rights import export_personal_data, forget, handle_erasure_request, purge
from proxy.rules.answers import PLACEHOLDERS, load_answers, render_answer
from proxy.store import Store
from tests.harness import RelayThread, upstream_settings, write_config
from tests.test_contacts import HEADER, db, gdpr, rights_commands  # noqa: F401 (autouse fixture)

ADDRESS = "zofia.wisniewska-q7@kunde.example"
LOCAL_PART = ADDRESS.split("@")[0]
NAME = "Zofia Wiśniewska"
STORE_FILES = ("store.sqlite3", "store.sqlite3-wal", "store.sqlite3-shm", "store.sqlite3-journal")

MESSAGE = (
    "From: Anna Nowak <anna@nordlicht.example>\r\n"
    f"To: {NAME} <{ADDRESS}>\r\n"
    "Subject: Angebot\r\n"
    "Message-ID: <rights-test-1@nordlicht.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Guten Tag,\r\nein Angebot.\r\n"
).encode()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, upstream_settings(1))


def import_one(tmp_path: Path, config: Path, address: str = ADDRESS, language: str = "de") -> None:
    path = tmp_path / "one.csv"
    path.write_text(
        HEADER + f'{address},{NAME},Kunde GmbH,Einkauf,{language},DE,"LinkedIn profile",your role in purchasing,,\n'
    )
    assert gdpr(config, "contacts", "import", str(path)) == 0


def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "store.sqlite3"


async def with_store(tmp_path: Path, sql: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Run statements through the store's own connection (migrations applied)."""
    store = await Store.open(store_path(tmp_path))
    try:
        for statement, params in sql:
            await store._write(statement, params)
    finally:
        await store.close()


def raw_store_bytes(tmp_path: Path) -> dict[str, bytes]:
    files = {}
    for name in STORE_FILES:
        path = tmp_path / "data" / name
        if path.exists():
            files[name] = path.read_bytes()
    return files


def assert_no_trace(tmp_path: Path, *needles: str) -> None:
    files = raw_store_bytes(tmp_path)
    assert "store.sqlite3" in files
    for name, data in files.items():
        for needle in needles:
            for encoded in {needle.encode(), needle.lower().encode(), needle.upper().encode()}:
                assert encoded not in data, f"{needle!r} still in {name}"


def wait_for_delivery_record(tmp_path: Path) -> None:
    """The relay records a delivery once upstream accepted it; wait until it has."""
    deadline = time.monotonic() + 10
    while True:
        with db(tmp_path) as conn:
            sent = conn.execute("SELECT COUNT(*) FROM sent_messages WHERE address = ?", (ADDRESS,)).fetchone()[0]
            first = conn.execute("SELECT first_contact_at FROM contacts WHERE address = ?", (ADDRESS,)).fetchone()
        if sent and first and first[0]:
            return
        assert time.monotonic() < deadline, "delivery never recorded"
        time.sleep(0.05)


def send(relay: RelayThread, rcpts: list[str]) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        return client.sendmail("anna@nordlicht.example", rcpts, MESSAGE)


# -- access ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "greeting", "source_label"),
    [("de", "Guten Tag", "Herkunft der Adresse"), ("fr", "Bonjour", "Origine de l'adresse")],
)
def test_export_has_every_section_and_an_answer_in_the_contacts_language(
    tmp_path, config, capsys, language, greeting, source_label
):
    import_one(tmp_path, config, language=language)
    assert gdpr(config, "consent", ADDRESS, "--tracking", "granted", "--how", "phone call") == 0
    assert gdpr(config, "suppress", "add", "@kunde.example", "--reason", "opt-out") == 0
    stamp = "2026-11-01T10:00:00+00:00"
    asyncio.run(
        with_store(
            tmp_path,
            [
                (
                    "UPDATE contacts SET first_contact_at = ?, last_contact_at = ? WHERE address = ?",
                    (stamp, stamp, ADDRESS),
                ),
                ("INSERT INTO sent_messages VALUES (?, ?, ?)", ("<m1@nordlicht.example>", ADDRESS, stamp)),
                (
                    "INSERT INTO verdicts (address, message_id, verdict, evidence, where_found, language, status, "
                    "created_at) VALUES (?, ?, 'opt-out', 'Nein danke', 'body line 1', 'de', 'applied', ?)",
                    (ADDRESS, "<m1@nordlicht.example>", stamp),
                ),
            ],
        )
    )
    output = tmp_path / "export.json"
    assert gdpr(config, "export", ADDRESS.upper(), "--output", str(output)) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    data = json.loads(output.read_text(encoding="utf-8"))
    for section in (
        "contact",
        "suppressions",
        "consent_history",
        "first_contact",
        "last_contact",
        "relayed_messages",
        "classified_replies",
        "answer",
    ):
        assert section in data, section
    assert data["address"] == ADDRESS
    assert data["contact"]["name"] == NAME and data["contact"]["source"] == "LinkedIn profile"
    assert data["first_contact"] == stamp and data["last_contact"] == stamp
    assert [e["how"] for e in data["consent_history"]] == ["phone call"]
    assert [s["value"] for s in data["suppressions"]] == ["kunde.example"]
    assert data["relayed_messages"] == [{"message_id": "<m1@nordlicht.example>", "sent_at": stamp}]
    assert data["classified_replies"][0]["evidence"] == "Nein danke"
    answer = data["answer"]
    assert answer["language"] == language and answer["to"] == ADDRESS
    text = answer["text"]
    assert text.startswith(greeting)
    assert ADDRESS in text and NAME in text and "LinkedIn profile" in text
    assert f"{source_label}: LinkedIn profile" in text
    assert "optout@nordlicht.example" in text and "Nordlicht Software GmbH" in text
    assert "{" not in text and "2026-11-01" in text


def test_export_of_unknown_address_says_nothing_is_held(config, capsys):
    assert gdpr(config, "export", "nobody@elsewhere.example", "--language", "es") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["contact"] is None and data["relayed_messages"] == []
    assert data["answer"]["language"] == "es"
    assert "no conservamos ningún dato personal" in data["answer"]["text"]


def test_every_answer_language_renders_without_leftover_placeholders():
    rules = load_answers()
    assert {"en", "fr", "de", "pl", "it", "es", "ar"} <= set(rules.languages)
    held = {
        "address": ADDRESS,
        "contact": {"name": NAME, "tracking_consent": "granted", "first_contact_at": "2026-01-02T00:00:00"},
        "consent_history": [{"kind": "tracking", "value": "granted", "how": "call", "at": "2026-01-01"}],
        "suppressions": [{"kind": "hash", "value": "x", "created_at": "2026-02-02"}],
        "relayed_messages": [{}],
        "classified_replies": [],
    }
    values = {p: f"<{p}>" for p in PLACEHOLDERS}
    for code in rules.languages:
        answer = render_answer(rules, code, held, values)
        assert answer.language == code
        assert "<opt_out_address>" in answer.text and ADDRESS in answer.text and NAME in answer.text
        assert rules.languages[code].values.erased in answer.text
    assert render_answer(rules, "xx", held, values).language == "en"
    assert rules.languages["ar"].direction == "rtl"


# -- erasure -----------------------------------------------------------------------------


def test_forget_while_the_relay_runs_leaves_no_trace_and_blocks_the_address(tmp_path, upstream, relay_to, capsys):
    relay = relay_to(smtp={"refused_recipients": "refuse_at_rcpt"})  # the refusal shows at RCPT
    config = tmp_path / "config.yaml"
    import_one(tmp_path, config)
    assert gdpr(config, "consent", ADDRESS, "--tracking", "denied", "--how", "reply") == 0
    assert send(relay, [ADDRESS, "other@kunde.example"]) == {}
    # one copy per footer version: the contact's German one, and the default for the other
    delivered = sorted(r for m in upstream.received for r in m.rcpt_tos)
    assert delivered == sorted([ADDRESS, "other@kunde.example"])
    sent_before = len(upstream.received)
    wait_for_delivery_record(tmp_path)
    asyncio.run(
        with_store(
            tmp_path,
            [
                (
                    "INSERT INTO verdicts (address, verdict, evidence, where_found, status, created_at) "
                    "VALUES (?, 'uncertain', ?, 'body line 2', 'pending', '2026-11-02')",
                    ("colleague@kunde.example", f"please write to {ADDRESS.upper()} instead"),
                ),
                (
                    "INSERT INTO suppressions (kind, value, reason, source, created_at) "
                    "VALUES ('address', ?, 'manual', 'cli', '2026-11-02')",
                    (ADDRESS,),
                ),
            ],
        )
    )
    assert ADDRESS.encode() in b"".join(raw_store_bytes(tmp_path).values())

    capsys.readouterr()
    assert gdpr(config, "forget", ADDRESS) == 0
    assert "erased" in capsys.readouterr().out
    assert_no_trace(tmp_path, ADDRESS, LOCAL_PART, NAME)
    with db(tmp_path) as conn:
        kept = [tuple(r) for r in conn.execute("SELECT kind, reason FROM suppressions")]
        other = conn.execute("SELECT evidence FROM verdicts").fetchone()[0]
        others = conn.execute("SELECT COUNT(*) FROM sent_messages").fetchone()[0]
    assert kept == [("hash", "erasure")]
    assert other == "please write to [erased] instead"
    assert others == 1  # the other recipient's record stays

    # The running relay refuses the address at RCPT; the other recipient still gets mail.
    refused = send(relay, [ADDRESS.replace("@", "+x@"), "other@kunde.example"])
    assert set(refused) == {ADDRESS.replace("@", "+x@")}
    assert refused[ADDRESS.replace("@", "+x@")][0] == 550
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(relay, [ADDRESS])
    assert [r.rcpt_tos for r in upstream.received][sent_before:] == [["other@kunde.example"]]

    # Re-import is refused, nothing is recorded again.
    path = tmp_path / "again.csv"
    path.write_text(HEADER + f"new@kunde.example,,,,,,,,,\n{ADDRESS.title()},{NAME},,,,,,,,\n")
    assert gdpr(config, "contacts", "import", str(path)) == 1
    assert f"{path}:3: address: this person asked to be forgotten" in capsys.readouterr().err
    assert gdpr(config, "consent", ADDRESS, "--tracking", "granted") == 1
    assert gdpr(config, "contacts", "show", ADDRESS) == 0
    assert "erased on" in capsys.readouterr().out
    relay.stop()
    assert_no_trace(tmp_path, ADDRESS, LOCAL_PART, NAME)


async def test_forget_keeps_addresses_that_merely_contain_it(tmp_path):
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        await store.record_delivery("<m@x>", ["jan@kunde.example", "xjan@kunde.example", "jan@kunde.example.org"])
        report = await forget(store, "jan@kunde.example")
        assert report.removed["contacts"] == 1 and report.removed["sent_messages"] == 1
        left = await store.contacts_for(["xjan@kunde.example", "jan@kunde.example.org", "jan@kunde.example"])
        assert set(left) == {"xjan@kunde.example", "jan@kunde.example.org"}
        assert await store.find_suppression("jan@kunde.example") is not None
        assert await store.find_suppression("xjan@kunde.example") is None
    finally:
        await store.close()


async def test_erasure_request_waits_for_confirmation_then_forget(tmp_path):
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        await store.record_delivery("<m@x>", ["jan@kunde.example"])
        done = await handle_erasure_request(
            store, "Jan@Kunde.example", RetentionConfig(), "bitte löschen Sie meine Daten", message_id="<r@x>"
        )
        assert "pending confirmation" in done and "jan@" not in done
        entry = await store.find_suppression("jan@kunde.example")
        assert entry is not None and (entry.kind, entry.reason) == ("address", "erasure")
        pending = await store.pending_erasure_requests()
        assert [(p["address"], p["evidence"]) for p in pending] == [
            ("jan@kunde.example", "bitte löschen Sie meine Daten")
        ]
        assert await store.contact("jan@kunde.example") is not None  # kept until confirmed
        await forget(store, "jan@kunde.example")
        assert await store.pending_erasure_requests() == []
        entry = await store.find_suppression("jan@kunde.example")
        assert entry is not None and entry.kind == "hash"
    finally:
        await store.close()


async def test_erasure_request_automatic_forgets_at_once(tmp_path):
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        await store.record_delivery("<m@x>", ["jan@kunde.example"])
        done = await handle_erasure_request(
            store, "jan@kunde.example", RetentionConfig(erasure_requests="automatic"), "delete my data"
        )
        assert done.startswith("erasure request: erased")
        assert await store.contact("jan@kunde.example") is None
        assert await store.mentions("jan@kunde.example") == 0
        assert (await store.erased_among(["jan@kunde.example"])) == {"jan@kunde.example"}
    finally:
        await store.close()


# -- retention ---------------------------------------------------------------------------


def old_and_new_rows(now: dt.datetime) -> list[tuple[str, tuple[Any, ...]]]:
    def ago(days: int) -> str:
        return (now - dt.timedelta(days=days)).isoformat(timespec="seconds")

    contact = (
        "INSERT INTO contacts (address, last_contact_at, last_reply_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
    )
    return [
        (contact, ("stale@x.example", ago(200), None, ago(400), ago(400))),
        (contact, ("replied@x.example", ago(200), ago(190), ago(400), ago(400))),
        (contact, ("recent@x.example", ago(10), None, ago(400), ago(400))),
        (contact, ("imported-long-ago@x.example", None, None, ago(300), ago(300))),
        (contact, ("imported-lately@x.example", None, None, ago(5), ago(5))),
        (
            "INSERT INTO consent_events (address, kind, value, how, at) VALUES (?, 'tracking', 'denied', 'x', ?)",
            ("stale@x.example", ago(200)),
        ),
        (
            "INSERT INTO consent_events (address, kind, value, how, at) VALUES (?, 'tracking', 'denied', 'x', ?)",
            ("recent@x.example", ago(200)),
        ),
        ("INSERT INTO sent_messages VALUES ('<old@x>', 'recent@x.example', ?)", (ago(91),)),
        ("INSERT INTO sent_messages VALUES ('<new@x>', 'recent@x.example', ?)", (ago(89),)),
        *(
            (
                "INSERT INTO verdicts (address, verdict, evidence, where_found, status, created_at) "
                "VALUES ('recent@x.example', 'opt-out', 'stop', 'subject', ?, ?)",
                (status, ago(days)),
            )
            for status, days in (("applied", 400), ("pending", 400), ("applied", 100))
        ),
        (
            "INSERT INTO suppressions (kind, value, reason, source, created_at) "
            "VALUES ('address', 'stale@x.example', 'opt-out', 'cli', ?)",
            (ago(3000),),
        ),
        (
            "INSERT INTO suppressions (kind, value, reason, source, created_at) "
            "VALUES ('hash', 'abc123', 'erasure', 'cli', ?)",
            (ago(3000),),
        ),
    ]


def test_purge_removes_old_rows_and_keeps_suppressions(tmp_path, config, capsys):
    asyncio.run(with_store(tmp_path, old_and_new_rows(dt.datetime.now(dt.UTC))))
    assert gdpr(config, "purge", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "contacts: would delete 2" in out and "sent_messages: would delete 1" in out
    with db(tmp_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 5

    assert gdpr(config, "purge") == 0
    out = capsys.readouterr().out
    assert "contacts: deleted 2" in out and "consent_events: deleted 1" in out
    assert "sent_messages: deleted 1" in out and "verdicts: deleted 1" in out
    with db(tmp_path) as conn:
        contacts = {r[0] for r in conn.execute("SELECT address FROM contacts")}
        consents = [r[0] for r in conn.execute("SELECT address FROM consent_events")]
        sent = [r[0] for r in conn.execute("SELECT message_id FROM sent_messages")]
        verdicts = sorted(tuple(r) for r in conn.execute("SELECT status, created_at < ? FROM verdicts", ("2026",)))
        suppressions = conn.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0]
    assert contacts == {"replied@x.example", "recent@x.example", "imported-lately@x.example"}
    assert consents == ["recent@x.example"]
    assert sent == ["<new@x>"]
    assert [v[0] for v in verdicts] == ["applied", "pending"]
    assert suppressions == 2


async def test_purge_function_takes_limits_and_now(tmp_path):
    now = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        for statement, params in old_and_new_rows(now):
            await store._write(statement, params)
        short = RetentionConfig(contacts_without_reply_days=5, relayed_messages_days=30, verdicts_days=50)
        report = await purge(store, short, now=now)
        assert report.removed == {"consent_events": 2, "contacts": 3, "sent_messages": 2, "verdicts": 2}
        assert not report.dry_run and report.total == 9
        again = await purge(store, short, now=now)
        assert again.total == 0
        assert len(await store.list_suppressions()) == 2
    finally:
        await store.close()


# -- register ----------------------------------------------------------------------------


def test_register_lists_activities_with_retention(config, capsys):
    assert gdpr(config, "register") == 0
    out = capsys.readouterr().out
    assert out.startswith("# Record of processing activities")
    assert "Controller: Nordlicht Software GmbH" in out
    assert "180 days" in out and "90 days" in out and "365 days" in out
    assert "the outgoing mail server 127.0.0.1" in out


async def test_export_function_uses_the_config_sender(tmp_path, config):
    loaded = load_config(config, explicit=True)
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        data = await export_personal_data(store, loaded, load_answers(), "a@b.example", "pl")
    finally:
        await store.close()
    assert data["answer"]["language"] == "pl"
    assert "Nordlicht Software GmbH" in data["answer"]["text"]


def test_forget_points_at_captured_mail_that_still_holds_the_address(tmp_path, start_relay, capsys):
    relay = start_relay()  # no upstream: capture mode writes each message into a Maildir
    assert send(relay, [ADDRESS]) == {}
    wait_for_delivery_record(tmp_path)
    config = tmp_path / "config.yaml"
    assert gdpr(config, "forget", ADDRESS) == 0
    err = capsys.readouterr().err
    assert "1 captured or queued message file(s) still contain the address" in err
    assert str(tmp_path / "data" / "capture") in err
    assert_no_trace(tmp_path, ADDRESS, LOCAL_PART)


def test_forget_while_the_relay_is_busy_sending_to_others(tmp_path, upstream, relay_to):
    relay = relay_to()
    config = tmp_path / "config.yaml"
    assert send(relay, [ADDRESS]) == {}
    wait_for_delivery_record(tmp_path)
    errors: list[BaseException] = []

    def keep_sending() -> None:
        try:
            for i in range(15):
                assert send(relay, [f"colleague{i}@kunde.example"]) == {}
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        assert gdpr(config, "forget", ADDRESS) == 0
    finally:
        sender.join(60)
    assert errors == []
    assert_no_trace(tmp_path, ADDRESS, LOCAL_PART)
    with db(tmp_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sent_messages").fetchone()[0] == 15
