"""`gdpr-proxy watch --once` as a user runs it: one pass over the mailbox of a real IMAP server."""

from __future__ import annotations

from proxy.cli.commands import main as gdpr_proxy
from tests.harness import write_config
from tests.imap_server import ImapServer
from tests.journey import imap_settings, reply


def test_watch_once_reads_the_mailbox_and_suppresses_who_asked(tmp_path, mailbox: ImapServer, capsys):
    config = str(write_config(tmp_path, {"imap": imap_settings(mailbox)}))
    mailbox.append(
        reply("kontakt@firma.de", "offer-1@nordlicht.example", "Bitte nehmen Sie mich aus Ihrem Verteiler.\r\n")
    )
    mailbox.append(reply("eva@firma.de", "offer-2@nordlicht.example", "Gern, rufen Sie mich morgen an.\r\n"))
    assert gdpr_proxy(["-c", config, "watch", "--once"]) == 0
    assert "2 new message(s) handled" in capsys.readouterr().out
    assert gdpr_proxy(["-c", config, "suppress", "list"]) == 0
    listing = capsys.readouterr().out
    assert "kontakt@firma.de" in listing and "eva@firma.de" not in listing
    assert gdpr_proxy(["-c", config, "watch", "--once"]) == 0
    assert "0 new message(s) handled" in capsys.readouterr().out


def test_watch_without_an_imap_section_names_the_config_file(tmp_path, capsys):
    config = write_config(tmp_path, {})
    assert gdpr_proxy(["-c", str(config), "watch", "--once"]) != 0
    assert "no imap: section in" in capsys.readouterr().err
