"""The store API on both backends: the embedded SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.config.settings import Config
from proxy.store import Store, StoreError, open_store, today
from proxy.store.backend import mask_url, numbered_placeholders
from proxy.store.schema import MIGRATIONS, postgresql_ddl
from tests.pg_server import PostgresServer, _free_port, pg_url, postgres_server  # noqa: F401 (fixtures)

JAN = "jan@kunde.example"
EVA = "eva@sales.blocked.example"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "data" / "store.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(target: str) -> AsyncIterator[Store]:
    opened = await Store.open(target)
    yield opened
    await opened.close()


@pytest.fixture
async def second(target: str) -> AsyncIterator[Store]:
    """Another store on the same data: another relay, or the watcher in its own process."""
    opened = await Store.open(target)
    yield opened
    await opened.close()


# -- suppressions --------------------------------------------------------------------------


async def test_suppressions_add_find_list_remove(store: Store) -> None:
    assert await store.add_suppression("address", JAN, "opt-out", "cli", "said no")
    assert not await store.add_suppression("address", JAN, "manual", "cli")  # the first entry is kept
    assert await store.add_suppression("domain", "blocked.example", "opt-out", "cli")
    found = await store.find_suppression(JAN)
    assert found is not None and (found.kind, found.reason, found.note) == ("address", "opt-out", "said no")
    assert found.date == today()
    by_domain = await store.find_suppression(EVA)
    assert by_domain is not None and (by_domain.kind, by_domain.value) == ("domain", "blocked.example")
    assert await store.find_suppression("ok@other.example") is None
    assert [(s.kind, s.value) for s in await store.list_suppressions()] == [
        ("address", JAN),
        ("domain", "blocked.example"),
    ]
    assert not await store.remove_suppression_if("address", JAN, "review")  # another reason: kept
    assert await store.remove_suppression("address", JAN)
    assert not await store.remove_suppression("address", JAN)
    assert await store.find_suppression(JAN) is None
    assert (await store.counts_for(today()))["suppressed.opt-out"] == 2


async def test_keyed_hash_blocks_and_is_stable_across_opens(store: Store, second: Store) -> None:
    assert store.address_hash(JAN) == second.address_hash(JAN)  # one secret per store
    assert await store.add_suppression("hash", store.address_hash(JAN), "erasure", "cli")
    found = await second.find_suppression(JAN)
    assert found is not None and found.kind == "hash"
    assert await second.erased_among([JAN, EVA]) == {JAN}


async def test_raw_statements_use_question_marks_on_both(store: Store) -> None:
    changed = await store._write(
        "INSERT INTO daily_counts (day, name, count) VALUES (?, ?, ?)", ("2026-01-01", "relayed", 3)
    )
    assert changed == 1
    assert await store.counts_for("2026-01-01") == {"relayed": 3}
    await store.count_event("relayed")
    await store.count_event("relayed", 2)
    assert (await store.counts_for(today()))["relayed"] == 3


# -- what the relay records ------------------------------------------------------------------


async def test_record_delivery_contacts_and_recipients(store: Store) -> None:
    await store.record_delivery("m1@nordlicht.example", [JAN, EVA])
    await store.record_delivery("m2@nordlicht.example", [JAN])
    await store.record_delivery(None, ["x@other.example"])
    contacts = await store.contacts_for([JAN, EVA, "nobody@other.example", JAN])
    assert set(contacts) == {JAN, EVA}
    assert contacts[JAN]["first_contact_at"] <= contacts[JAN]["last_contact_at"]
    assert await store.contacts_for([]) == {}
    assert await store.recipients_of(["m1@nordlicht.example", "m2@nordlicht.example"]) == [EVA, JAN]
    assert await store.recipients_of([]) == []
    # Erased while a message was on its way: nothing is recorded about the address.
    await store.add_suppression("hash", store.address_hash("gone@kunde.example"), "erasure", "cli")
    await store.record_delivery("m3@nordlicht.example", ["gone@kunde.example"])
    assert await store.contact("gone@kunde.example") is None
    assert await store.recipients_of(["m3@nordlicht.example"]) == []


async def test_checkpoints_keep_32_bit_unsigned_uids(store: Store) -> None:
    assert await store.get_checkpoint("anna", "INBOX") is None
    await store.set_checkpoint("anna", "INBOX", 4_294_967_295, 10)
    await store.set_checkpoint("anna", "INBOX", 4_294_967_295, 4_294_967_294)
    assert await store.get_checkpoint("anna", "INBOX") == (4_294_967_295, 4_294_967_294)


async def test_verdicts_review_queue_and_reply_notes(store: Store) -> None:
    await store.record_delivery("m1@nordlicht.example", [JAN])
    first = await store.record_verdict(JAN, "r1@kunde.example", "opt-out", "Nein danke", "body", "de", "applied")
    second = await store.record_verdict(JAN, "r2@kunde.example", "uncertain", "hm", "body", None, "pending")
    assert second > first > 0
    assert await store.has_verdict_for("r1@kunde.example")
    assert not await store.has_verdict_for("r9@kunde.example")
    assert [v["id"] for v in await store.verdicts("pending")] == [second]
    assert len(await store.verdicts()) == 2
    updated = await store.set_verdict_status(second, "dismissed")
    assert updated is not None and updated["status"] == "dismissed"
    assert await store.set_verdict_status(999, "dismissed") is None
    await store.note_reply(JAN)
    await store.note_soft_bounce(JAN)
    contact = await store.contact(JAN)
    assert contact is not None and contact["last_reply_at"] and contact["soft_bounces"] == 1
    assert contact["bounce_state"] == "soft"
    assert (await store.counts_for(today()))["verdict.opt-out"] == 1


# -- contacts and data-subject rights --------------------------------------------------------


async def test_contacts_upsert_and_consent(store: Store) -> None:
    rows = [
        {"address": JAN, "name": "Jan", "company": "Kunde GmbH", "marketing_consent": "granted"},
        {"address": EVA, "name": "Eva"},
    ]
    assert await store.upsert_contacts(rows, "import a.csv") == (2, 0)
    assert await store.upsert_contacts([{"address": JAN, "role": "Einkauf"}], "import b.csv") == (0, 1)
    contact = await store.contact(JAN)
    assert contact is not None
    assert (contact["name"], contact["role"], contact["marketing_consent"]) == ("Jan", "Einkauf", "granted")
    assert await store.set_consent(JAN, "tracking", "granted", "phone call")
    assert not await store.set_consent(JAN, "tracking", "granted", "phone call again")
    history = await store.consent_history(JAN)
    assert [(h["kind"], h["value"], h["how"]) for h in history] == [
        ("marketing", "granted", "import a.csv"),
        ("tracking", "granted", "phone call"),
        ("tracking", "granted", "phone call again"),
    ]
    with pytest.raises(ValueError):
        await store.set_consent(JAN, "newsletter", "granted", "x")  # type: ignore[arg-type]


async def test_personal_data_has_every_section(store: Store) -> None:
    await store.upsert_contacts([{"address": JAN, "name": "Jan"}], "import")
    await store.record_delivery("m1@nordlicht.example", [JAN])
    await store.add_suppression("domain", "kunde.example", "opt-out", "cli")
    await store.record_verdict(JAN, "r1@kunde.example", "opt-out", "Nein danke", "body", "de", "applied")
    held = await store.personal_data(JAN)
    assert held["contact"]["name"] == "Jan"
    assert [s["value"] for s in held["suppressions"]] == ["kunde.example"]
    assert [m["message_id"] for m in held["relayed_messages"]] == ["m1@nordlicht.example"]
    assert [v["verdict"] for v in held["classified_replies"]] == ["opt-out"]
    assert held["consent_history"] == []


async def test_delivery_recorded_after_erasure_leaves_no_trace(store: Store) -> None:
    """A message accepted upstream just as the person was forgotten must not bring them back."""
    await store.erase_address(JAN, "cli")
    await store.record_delivery("late@nordlicht.example", [JAN, EVA])
    assert await store.contact(JAN) is None
    assert await store.recipients_of(["late@nordlicht.example"]) == [EVA]
    assert (await store.contact(EVA) or {}).get("first_contact_at")


async def test_erasure_leaves_only_the_keyed_hash(store: Store) -> None:
    await store.upsert_contacts([{"address": JAN, "name": "Jan", "marketing_consent": "granted"}], "import")
    await store.record_delivery("m1@nordlicht.example", [JAN, EVA])
    await store.add_suppression("address", JAN, "opt-out", "watcher")
    await store.record_verdict(JAN, "r1@kunde.example", "opt-out", "Nein danke", "body", "de", "applied")
    # Another person's reply quoting the address: the mention goes, the row stays.
    await store.record_verdict(EVA, "r2@kunde.example", "none", f"ask {JAN.upper()} instead", "body", None, "applied")
    assert await store.mentions(JAN) > 0
    removed = await store.erase_address(JAN, "cli")
    assert removed["contacts"] == 1 and removed["sent_messages"] == 1 and removed["verdicts"] == 1
    assert removed["consent_events"] == 1 and removed["suppressions"] == 1 and removed["mentions"] == 1
    await store.compact()
    assert await store.mentions(JAN) == 0
    assert await store.contact(JAN) is None
    found = await store.find_suppression(JAN)
    assert found is not None and (found.kind, found.reason) == ("hash", "erasure")
    evidence = [v["evidence"] for v in await store.verdicts() if v["address"] == EVA]
    assert evidence == ["ask [erased] instead"]
    assert await store.contact(EVA) is not None
    assert await store.erase_address(JAN, "cli") == {
        "contacts": 0,
        "consent_events": 0,
        "sent_messages": 0,
        "verdicts": 0,
        "suppressions": 0,
        "mentions": 0,
    }


async def test_erasure_requests_wait_suppressed(store: Store) -> None:
    await store.record_erasure_request(JAN, "Bitte löschen Sie meine Daten", "body", "r1@kunde.example", "de")
    pending = await store.pending_erasure_requests()
    assert [(p["address"], p["message_id"]) for p in pending] == [(JAN, "r1@kunde.example")]
    found = await store.find_suppression(JAN)
    assert found is not None and found.reason == "erasure"


async def test_purge_keeps_suppressions_and_pending_verdicts(store: Store) -> None:
    await store.record_delivery("m1@nordlicht.example", [JAN])
    await store.set_consent(JAN, "tracking", "granted", "phone")
    await store.add_suppression("address", EVA, "opt-out", "cli")
    await store.record_verdict(EVA, "r1", "uncertain", "hm", "body", None, "pending")
    await store.record_verdict(EVA, "r2", "opt-out", "no", "body", None, "applied")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(timespec="seconds")
    expected = {"consent_events": 1, "contacts": 1, "sent_messages": 1, "verdicts": 1}
    assert await store.purge_older(later, later, later, dry_run=True) == expected
    assert await store.contact(JAN) is not None  # a dry run changes nothing
    assert await store.purge_older(later, later, later) == expected
    assert await store.contact(JAN) is None
    assert [v["status"] for v in await store.verdicts()] == ["pending"]
    assert await store.find_suppression(EVA) is not None
    assert await store.checkpoint_quietly()


async def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store._write(
                "INSERT INTO suppressions (kind, value, reason, source, created_at) VALUES ('address', ?, 'x', 'y', ?)",
                (JAN, "2026-01-01"),
            )
            raise RuntimeError("interrupted")
    assert await store.find_suppression(JAN) is None
    with pytest.raises(StoreError):
        async with store.transaction():
            await store._write("INSERT INTO no_such_table VALUES (1)")
    assert await store.find_suppression(JAN) is None  # the store is still usable afterwards


# -- several writers -------------------------------------------------------------------------


async def test_concurrent_adds_of_one_address_make_one_row(store: Store, second: Store) -> None:
    results = await asyncio.gather(
        *(s.add_suppression("address", JAN, "opt-out", f"relay-{i}") for i in range(10) for s in (store, second))
    )
    assert results.count(True) == 1
    assert [(s.kind, s.value) for s in await second.list_suppressions()] == [("address", JAN)]
    assert (await store.counts_for(today()))["suppressed.opt-out"] == 1


async def test_concurrent_writers_lose_no_suppression(store: Store, second: Store) -> None:
    addresses = [f"p{i}@kunde.example" for i in range(40)]

    async def add(s: Store, address: str) -> None:
        await s.add_suppression("address", address, "opt-out", "watcher")
        await s.record_delivery(f"<{address}>", [address])

    await asyncio.gather(*(add(store if i % 2 else second, a) for i, a in enumerate(addresses)))
    assert sorted(s.value for s in await store.list_suppressions()) == sorted(addresses)
    for address in addresses:
        assert await second.find_suppression(address) is not None


async def test_stores_opening_together_share_one_secret_and_schema(target: str) -> None:
    stores = await asyncio.gather(*(Store.open(target) for _ in range(4)))
    try:
        assert len({s.address_hash(JAN) for s in stores}) == 1
        assert await stores[0].add_suppression("address", JAN, "opt-out", "cli")
        assert all([await s.find_suppression(JAN) for s in stores])
    finally:
        for s in stores:
            await s.close()


async def test_reopening_keeps_data(target: str) -> None:
    first = await Store.open(target)
    await first.add_suppression("address", JAN, "opt-out", "cli")
    secret = first.address_hash(JAN)
    await first.close()
    again = await Store.open(target)
    try:
        assert await again.find_suppression(JAN) is not None
        assert again.address_hash(JAN) == secret
    finally:
        await again.close()


async def test_newer_schema_is_refused(store: Store, target: str) -> None:
    if store.shared:
        await store._write("INSERT INTO schema_version (version, applied_at) VALUES (?, 'x')", (len(MIGRATIONS) + 5,))
    else:
        await store._write(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="newer than this program"):
        await Store.open(target)


# -- configuration ---------------------------------------------------------------------------


async def test_open_store_follows_the_config(target: str, tmp_path: Path) -> None:
    config = Config(store=target, data_dir=str(tmp_path / "data"))
    assert config.uses_postgresql == target.startswith("postgresql://")
    opened = await open_store(config)
    try:
        assert opened.shared == config.uses_postgresql
        assert await opened.add_suppression("address", JAN, "opt-out", "cli")
    finally:
        await opened.close()
    if config.uses_postgresql:
        with pytest.raises(StoreError, match="not a file"):
            _ = config.store_path
    else:
        assert config.store_path == Path(target)


def test_config_store_selection(tmp_path: Path) -> None:
    default = Config(data_dir=str(tmp_path))
    assert not default.uses_postgresql and default.store_url is None
    assert default.store_path == tmp_path / "store.sqlite3"
    assert default.store_display == str(tmp_path / "store.sqlite3")
    team = Config(store="postgresql://sales:hunter2@db.example:5432/gdpr")
    assert team.uses_postgresql and team.store_url == "postgresql://sales:hunter2@db.example:5432/gdpr"
    assert team.store_display == "postgresql://sales:***@db.example:5432/gdpr"
    assert team.check() == []
    assert Config(store="postgres://db.example/gdpr").uses_postgresql
    assert Config(store="mysql://db.example/gdpr").check() == [("store", "a SQLite file path, or a postgresql:// URL")]
    [(key, message)] = Config(store="postgresql://sales:hunter2@db.example:port/gdpr").check()
    assert key == "store" and "hunter2" not in message


def test_sql_written_once_runs_on_both() -> None:
    assert numbered_placeholders("SELECT ? , '?' , \"a?\" , ?::text::tid") == "SELECT $1 , '?' , \"a?\" , $2::text::tid"
    ddl = postgresql_ddl(MIGRATIONS[0])
    assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in ddl
    assert "INTEGER" not in ddl
    assert mask_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


# -- PostgreSQL only: failures become StoreError (the relay then answers 451) ----------------------


async def test_unreachable_server_is_a_store_error_without_the_password() -> None:
    url = f"postgresql://sales:s3cret-pw@127.0.0.1:{_free_port()}/gdpr"
    with pytest.raises(StoreError) as failed:
        await Store.open(url)
    assert "s3cret-pw" not in str(failed.value) and "***" in str(failed.value)


async def test_server_gone_fails_closed_then_recovers(postgres_server: PostgresServer, pg_url: str) -> None:  # noqa: F811
    store = await Store.open(pg_url)
    database = pg_url.rsplit("/", 1)[1]
    try:
        await store.add_suppression("address", JAN, "opt-out", "cli")
        # The database refuses new connections and drops the current ones: a server going away.
        postgres_server.sql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        postgres_server.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        with pytest.raises(StoreError):
            for _ in range(3):  # a connection whose loss is not noticed yet fails once
                await store.find_suppression(JAN)
        with pytest.raises(StoreError):
            await store.add_suppression("address", EVA, "opt-out", "cli")
        postgres_server.sql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        # The pool replaces the lost connections: the next checks work again.
        for _ in range(5):
            try:
                assert await store.find_suppression(JAN) is not None
                break
            except StoreError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the store did not reconnect")
    finally:
        await store.close()
