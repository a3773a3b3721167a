"""What must hold before the relay starts, beyond the file itself: no example placeholders, every password readable."""

from __future__ import annotations

from proxy.config.imap import ImapSettings
from proxy.config.secrets import SecretError, read_secret
from proxy.config.settings import Config, SecretSource

Source = SecretSource | ImapSettings


def _source_key(section: str, source: Source) -> str:
    for name in ("password_credential", "password_env", "password_file"):
        if getattr(source, name):
            return f"{section}.{name}"
    return section


def _read(section: str, source: Source) -> list[tuple[str, str]]:
    try:
        value = read_secret(source.password_env, source.password_file, source.password_credential)
    except SecretError as exc:
        return [(_source_key(section, source), str(exc))]
    if value is None:
        return [(section, "needs password_env, password_file or password_credential")]
    if not value.strip():
        return [(_source_key(section, source), "the password is empty")]  # an empty secret is not a password
    return []


def secret_problems(config: Config) -> list[tuple[str, str]]:
    """(key, problem) for every configured password that cannot be read, never the password itself."""
    problems: list[tuple[str, str]] = []
    if config.upstream is not None and config.upstream.username:
        problems += _read("upstream", config.upstream)
    if config.imap is not None and not config.imap.oauth2_command:
        problems += _read("imap", config.imap)
    for number, user in enumerate(config.smtp.users):
        problems += _read(f"smtp.users[{number}] ({user.username})", user)
    return problems


def startup_problems(config: Config) -> list[tuple[str, str]]:
    """Checked by `serve` and `config check`, not when loading: `suppress add` must work with any config."""
    return config.placeholder_problems() + secret_problems(config)
