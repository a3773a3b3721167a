"""The record of processing (Art. 30) describes the configuration actually in use."""

from __future__ import annotations

from proxy.config.settings import Config, SenderConfig, UnsubscribeConfig, UpstreamConfig
from proxy.rights.register import register_markdown


def register(**fields: object) -> str:
    config = Config(sender=SenderConfig(company="Nordlicht Software GmbH"), **fields)  # type: ignore[arg-type]
    return register_markdown(config, config.retention)


def test_sqlite_store_and_verified_tls() -> None:
    text = register(upstream=UpstreamConfig(host="smtp.nordlicht.example"), store="/srv/gdpr/store.sqlite3")
    assert "the store is a file only its owner can read (/srv/gdpr/store.sqlite3)" in text
    assert "the connection to smtp.nordlicht.example is encrypted (STARTTLS)" in text
    assert "verified against the system's trusted CAs" in text
    assert "PostgreSQL" not in text and "NOT encrypted" not in text


def test_postgresql_store_and_unencrypted_upstream_are_said_as_they_are() -> None:
    text = register(
        upstream=UpstreamConfig(host="127.0.0.1", security="none"),
        store="postgresql://sales:secret@db.internal/gdpr",
        unsubscribe=UnsubscribeConfig(public_url="https://www.nordlicht.example/u"),
    )
    assert "PostgreSQL database the team shares" in text and "secret" not in text
    assert "only its owner can read" not in text
    assert "is NOT encrypted (upstream.security: none)" in text
    assert "certificate is verified" not in text
    assert "one-click unsubscribe links (https://www.nordlicht.example/u)" in text


def test_private_ca_and_capture_mode() -> None:
    ca = register(upstream=UpstreamConfig(host="mail.internal", security="tls", ca_file="/etc/ssl/corp.pem"))
    assert "encrypted (TLS from the start); its certificate is verified against the CA file /etc/ssl/corp.pem" in ca
    assert "capture mode: nothing is sent" in register()
