"""A sales team sharing one PostgreSQL store: an opt-out one colleague's watcher catches
blocks the address at every colleague's relay."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.cli.commands import main as gdpr_proxy
from tests.harness import RelayThread, upstream_settings, wait_until, write_config
from tests.journey import QUOTED_FOOTER, imap_settings, outgoing, send, suppressed
from tests.pg_server import PostgresServer, pg_url, postgres_server  # noqa: F401 (fixtures)
from tests.upstream import RecordingServer


@pytest.fixture
def team(tmp_path: Path, pg_url: str, upstream: RecordingServer) -> Iterator[Callable[..., RelayThread]]:  # noqa: F811
    """Start a colleague's relay: own config and data directory, the team's shared store."""
    relays: list[RelayThread] = []

    def start(name: str, **extra: Any) -> RelayThread:
        home = tmp_path / name
        home.mkdir()
        config = write_config(home, {**upstream_settings(upstream.port), "store": pg_url, **extra})
        relay = RelayThread(config).start()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()


def refusal(relay: RelayThread, address: str, message_id: str) -> tuple[int, bytes]:
    # The only recipient refused: the 550 with the reason comes at the end of DATA.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, [address], outgoing(message_id, address))
    return refused.value.smtp_code, refused.value.smtp_error


def test_suppression_added_at_one_relay_is_refused_at_the_other(team, upstream, tmp_path) -> None:
    anna, ben = team("anna"), team("ben")
    assert send(ben, ["jan@kunde.example"], outgoing("t1@nordlicht.example", "jan@kunde.example")) == {}
    # Anna suppresses with her own config (and so her own relay's store) from the command line.
    assert gdpr_proxy(["-c", str(tmp_path / "anna" / "config.yaml"), "suppress", "add", "Jan@Kunde.example"]) == 0
    assert gdpr_proxy(["-c", str(tmp_path / "anna" / "config.yaml"), "suppress", "add", "@blocked.example"]) == 0
    code, text = refusal(ben, "jan@kunde.example", "t2@nordlicht.example")
    assert code == 550 and b"opted out on" in text
    code, _ = refusal(ben, "eva@sales.blocked.example", "t3@nordlicht.example")
    assert code == 550
    # Directly through the store of one relay: the other sees it at its next RCPT.
    assert anna.service is not None
    assert anna.call(anna.service.store.add_suppression("address", "piotr@kunde.example", "opt-out", "cli"))
    assert refusal(ben, "piotr@kunde.example", "t4@nordlicht.example")[0] == 550
    assert [r.rcpt_tos for r in upstream.received] == [["jan@kunde.example"]]


def test_opt_out_caught_by_one_watcher_blocks_every_relay(team, mailbox, upstream) -> None:
    imap = imap_settings(mailbox)
    ben = team("ben")  # no watcher of his own
    anna = team("anna", imap=imap)
    # Ben wrote to the prospect; the "no thanks" reaches Anna's mailbox (e.g. a shared sales@ inbox).
    assert send(ben, ["kontakt@firma.de"], outgoing("offer-1@nordlicht.example", "kontakt@firma.de")) == {}
    mailbox.append(
        (
            "From: Assistenz <assistenz@firma.de>\r\nTo: anna@nordlicht.example\r\nSubject: AW: Routenplanung\r\n"
            "Message-ID: <reply-1@firma.de>\r\nIn-Reply-To: <offer-1@nordlicht.example>\r\n"
            "References: <offer-1@nordlicht.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nNein danke.\r\n" + QUOTED_FOOTER
        ).encode()
    )
    # Anna's watcher finds Ben's recipient through the shared record of relayed messages.
    assert wait_until(lambda: suppressed(ben, "kontakt@firma.de") and suppressed(ben, "assistenz@firma.de"))
    for number, address in enumerate(["kontakt@firma.de", "assistenz@firma.de"]):
        code, text = refusal(ben, address, f"offer-{number + 2}@nordlicht.example")
        assert code == 550 and b'reply "No thanks"' in text
        assert refusal(anna, address, f"offer-{number + 4}@nordlicht.example")[0] == 550
    assert [r.rcpt_tos for r in upstream.received] == [["kontakt@firma.de"]]


def test_store_server_gone_means_451_not_sent(team, upstream, postgres_server: PostgresServer, pg_url: str) -> None:  # noqa: F811
    relay = team("anna")
    database = pg_url.rsplit("/", 1)[1]
    postgres_server.sql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
    postgres_server.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
    try:
        answers = []
        for number in range(3):  # a connection whose loss is not noticed yet fails once
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                send(relay, ["jan@kunde.example"], outgoing(f"g{number}@nordlicht.example", "jan@kunde.example"))
            answers.append(refused.value.recipients["jan@kunde.example"][0])
        assert answers == [451, 451, 451]
    finally:
        postgres_server.sql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
    assert upstream.received == []
