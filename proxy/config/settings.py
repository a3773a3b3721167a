"""The user's configuration: typed, validated entirely at start-up.

Every option is documented with its default in config.example.yaml; a test keeps the two
in step.  With no config file at all the relay runs on embedded defaults: loopback on port
2525, SQLite in the XDG data directory, and capture mode (nothing leaves the machine).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from proxy.addresses import AddressPolicy
from proxy.config.imap import ImapSettings
from proxy.config.store_url import is_postgresql_url, mask_url
from proxy.errors import StoreError
from proxy.schema import Positive, PositiveFloat, SchemaError, SourceError, load_file

APP = "gdpr-mail-proxy"


def xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base else Path.home() / fallback) / APP


def default_config_path() -> Path:
    return xdg_dir("XDG_CONFIG_HOME", ".config") / "config.yaml"


def default_data_dir() -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY for the system service.
    state = os.environ.get("STATE_DIRECTORY")
    return Path(state) if state else xdg_dir("XDG_DATA_HOME", ".local/share")


_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606: never anyone's server


def is_placeholder(value: str) -> bool:
    domain = value.rsplit("@", 1)[-1].strip().lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in _PLACEHOLDER_DOMAINS)


def is_web_url(value: str, https_only: bool = False) -> bool:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    schemes = ("https",) if https_only else ("https", "http")
    return parts.scheme in schemes and bool(parts.hostname) and " " not in value.strip()


_MAIL_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[A-Za-z0-9\u0080-\uffff-]+(\.[A-Za-z0-9\u0080-\uffff-]+)+")


def is_mail_address(value: str) -> bool:
    return bool(_MAIL_ADDRESS.fullmatch(value.strip()))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RetentionConfig:
    """How long personal data is kept (``retention:`` in the config)."""

    contacts_without_reply_days: Positive = 180
    relayed_messages_days: Positive = 90
    verdicts_days: Positive = 365
    erasure_requests: Literal["automatic", "confirm"] = "confirm"


@dataclass(frozen=True)
class SecretSource:
    """Where a password comes from; never inline."""

    password_env: str | None = None
    password_file: str | None = None
    password_credential: str | None = None

    @property
    def has_password_source(self) -> bool:
        return bool(self.password_env or self.password_file or self.password_credential)


@dataclass(frozen=True)
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    allow_remote: bool = False
    hostname: str | None = None

    def check(self) -> list[tuple[str, str]]:
        # 0 lets the system choose a free port (tests, and several relays on one machine).
        return [] if 0 <= self.port <= 65535 else [("port", f"must be between 1 and 65535, got {self.port}")]


@dataclass(frozen=True)
class LocalUser(SecretSource):
    username: str = ""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.username:
            problems.append(("username", "required"))
        if not self.has_password_source:
            problems.append(("", "needs password_env, password_file or password_credential"))
        return problems


@dataclass(frozen=True)
class SmtpConfig:
    max_message_bytes: Positive = 50 * 1024 * 1024
    max_recipients: Positive = 100
    require_auth: bool = False
    users: tuple[LocalUser, ...] = ()
    tls_certificate: str | None = None
    tls_key: str | None = None
    timeout_seconds: PositiveFloat = 300.0
    max_connections: Positive = 100
    # One address beyond loopback holds at most this many (loopback clients have slots of their own).
    max_connections_per_client: Positive = 20
    auth_failures_per_minute: Positive = 5
    # notify_sender: refused recipients are left out at the end of DATA and the sender gets a
    # notice (what desktop clients need); refuse_at_rcpt: a 550 per RCPT, for scripts that read it.
    refused_recipients: Literal["notify_sender", "refuse_at_rcpt"] = "notify_sender"


@dataclass(frozen=True)
class UpstreamConfig(SecretSource):
    host: str = ""
    port: int | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    ca_file: str | None = None
    timeout_seconds: PositiveFloat = 60.0
    pool_size: int = 4  # idle connections kept for reuse (more are opened while all are busy)
    max_connections: Positive = 20  # transactions with the upstream at once; more wait their turn

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return {"tls": 465, "starttls": 587, "none": 25}[self.security]

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.host:
            problems.append(("host", "required when upstream is configured"))
        if self.username and not self.has_password_source:
            problems.append(("username", "needs password_env, password_file or password_credential"))
        if self.security == "none" and self.username and not is_loopback(self.host):
            problems.append(("security", "'none' would send the password in clear text over the network"))
        if self.pool_size < 0:
            problems.append(("pool_size", "must be 0 (no reuse) or more"))
        if self.port is not None and not 0 < self.port < 65536:
            problems.append(("port", f"must be between 1 and 65535, got {self.port}"))
        if self.host != self.host.strip() or " " in self.host:
            problems.append(("host", f"a host name has no spaces: {self.host!r}"))
        return problems


@dataclass(frozen=True)
class SenderConfig:
    """Who writes: fills the disclosure footer.  Missing values make the footer say so."""

    name: str = ""
    company: str = ""
    privacy_policy_url: str = ""
    opt_out_address: str = ""
    unsubscribe_url: str | None = None
    default_language: str = "en"
    # Used only with missing_source / missing_reason: default (rules/footers.yaml): a key of
    # rules/sources.yaml such as company_website, shown in the recipient's language.
    default_source: str = ""
    default_reason: str = ""
    # Colleagues: no footer and no contact record.  The sender's own domain always counts.
    internal_domains: tuple[str, ...] = ()

    def check(self) -> list[tuple[str, str]]:
        problems = []
        for key in ("name", "company", "default_source", "default_reason"):
            value = getattr(self, key)
            if value and not value.strip():
                problems.append((key, "is only spaces: write the text, or leave it out"))
        if self.privacy_policy_url.strip() and not is_web_url(self.privacy_policy_url):
            problems.append(("privacy_policy_url", f"not a web address (https://...): {self.privacy_policy_url!r}"))
        if self.unsubscribe_url is not None and not is_web_url(self.unsubscribe_url, https_only=True):
            problems.append(("unsubscribe_url", f"must be an https:// address, got {self.unsubscribe_url!r}"))
        if self.opt_out_address.strip() and not is_mail_address(self.opt_out_address):
            problems.append(("opt_out_address", f"not an e-mail address: {self.opt_out_address!r}"))
        if not re.fullmatch(r"[a-z]{2}", self.default_language):
            problems.append(("default_language", f"a two-letter code such as 'de', got {self.default_language!r}"))
        return problems


@dataclass(frozen=True)
class UnsubscribeConfig:
    """The one-click unsubscribe endpoint (RFC 8058) that List-Unsubscribe links point at."""

    public_url: str | None = None  # https address where recipients reach it (through a reverse proxy)
    host: str = "127.0.0.1"
    port: int = 8025
    in_service: bool = False  # run it inside `gdpr-proxy serve` (else: gdpr-proxy unsubscribe-server)

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.public_url is not None and not is_web_url(self.public_url, https_only=True):
            problems.append(("public_url", f"must be an https:// address, got {self.public_url!r}"))
        if not 0 <= self.port <= 65535:
            problems.append(("port", f"must be between 1 and 65535, got {self.port}"))
        return problems


@dataclass(frozen=True)
class AddressConfig:
    strip_subaddress: bool = True
    subaddress_separators: str = "+"

    @property
    def policy(self) -> AddressPolicy:
        """How addresses are compared and stored under this configuration."""
        return AddressPolicy(self.strip_subaddress, self.subaddress_separators)


@dataclass(frozen=True)
class QueueConfig:
    retry_seconds: PositiveFloat = 300.0
    max_retry_seconds: PositiveFloat = 3600.0
    give_up_after_hours: PositiveFloat = 120.0
    # The client waits this long for the upstream to answer; after that its message is queued.
    wait_for_upstream_seconds: PositiveFloat = 10.0


@dataclass(frozen=True)
class WatcherConfig:
    """What the reply watcher does with what it finds (the mailbox is in ``imap:``)."""

    uncertain: Literal["suppress_until_reviewed", "review_only"] = "suppress_until_reviewed"
    suppress_domain: bool = False  # an opt-out blocks the replier's whole domain
    flag_keyword: str | None = None  # e.g. "$OptOut": IMAP keyword set on classified replies
    move_to: str | None = None  # folder to move opt-out, erasure and bounce messages to
    confirm_opt_out: bool = False  # send "you have been removed" to people who opt out


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class Config:
    listen: ListenConfig = field(default_factory=ListenConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    upstream: UpstreamConfig | None = None
    sender: SenderConfig = field(default_factory=SenderConfig)
    addresses: AddressConfig = field(default_factory=AddressConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    log: LogConfig = field(default_factory=LogConfig)
    imap: ImapSettings | None = None
    watcher: WatcherConfig = field(default_factory=WatcherConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    unsubscribe: UnsubscribeConfig = field(default_factory=UnsubscribeConfig)
    data_dir: str | None = None
    store: str | None = None
    capture_dir: str | None = None
    rules_dir: str | None = None
    source: str = field(default="(embedded defaults)", compare=False, metadata={"internal": True})

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not is_loopback(self.listen.host):
            if not self.listen.allow_remote:
                problems.append(
                    (
                        "listen.host",
                        "not a loopback address: set listen.allow_remote: true to expose the relay",
                    )
                )
            if not self.smtp.require_auth:
                problems.append(("smtp.require_auth", "must be true when listening beyond loopback (no open relay)"))
            elif not self.smtp.tls_certificate:
                problems.append(
                    (
                        "smtp.tls_certificate",
                        "required when listening beyond loopback: without it passwords would cross the network "
                        "in clear text (AUTH is only offered after STARTTLS)",
                    )
                )
        if self.smtp.require_auth and not self.smtp.users:
            problems.append(("smtp.users", "require_auth is true but no users are configured"))
        if bool(self.smtp.tls_certificate) != bool(self.smtp.tls_key):
            problems.append(("smtp.tls_certificate", "tls_certificate and tls_key go together"))
        problems.extend(self._check_store())
        if self.upstream is not None:
            for key in ("name", "company", "privacy_policy_url", "opt_out_address"):
                if not getattr(self.sender, key).strip():
                    problems.append(
                        (f"sender.{key}", "required before sending for real (the disclosure footer needs it)")
                    )
        return problems

    def placeholder_problems(self) -> list[tuple[str, str]]:
        """Values left from config.example.yaml would send for real to nobody's server (checked before start)."""
        if self.upstream is None:
            return []  # capture mode sends nothing: trying the example out is fine
        values = [("upstream.host", self.upstream.host), ("upstream.username", self.upstream.username or "")]
        if self.imap is not None:
            values += [("imap.host", self.imap.host), ("imap.username", self.imap.username)]
        values += [("sender.opt_out_address", self.sender.opt_out_address)]
        return [
            (key, f"{value!r} is the example's placeholder: put in your own (or remove upstream: for capture mode)")
            for key, value in values
            if is_placeholder(value)
        ]

    def _check_store(self) -> list[tuple[str, str]]:
        if self.store and "://" in self.store and not self.uses_postgresql:
            return [("store", "a SQLite file path, or a postgresql:// URL")]
        if self.store_url:
            try:
                parts = urlsplit(self.store_url)
                parts.port  # noqa: B018 (raises on a port that is not a number)
            except ValueError as exc:
                return [("store", f"not a valid PostgreSQL URL ({mask_url(self.store_url)}): {exc}")]
        return []

    # -- resolved paths -----------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    @property
    def uses_postgresql(self) -> bool:
        """``store: postgresql://...``: a database the team shares, instead of the SQLite file."""
        return is_postgresql_url(self.store)

    @property
    def store_url(self) -> str | None:
        """The PostgreSQL URL (it may hold a password: show store_display instead), or None."""
        return self.store if self.store and self.uses_postgresql else None

    @property
    def store_path(self) -> Path:
        """The SQLite file.  A PostgreSQL store has none: asking is an error, never a stray file."""
        if self.uses_postgresql:
            raise StoreError(f"the store is a PostgreSQL database ({self.store_display}), not a file")
        return Path(self.store).expanduser() if self.store else self.data_path / "store.sqlite3"

    @property
    def store_display(self) -> str:
        """Where the store is, for messages and logs: the file, or the URL without its password."""
        return mask_url(self.store_url) if self.store_url else str(self.store_path)

    @property
    def capture_path(self) -> Path:
        return Path(self.capture_dir).expanduser() if self.capture_dir else self.data_path / "capture"

    @property
    def queue_path(self) -> Path:
        return self.data_path / "queue"

    @property
    def cache_path(self) -> Path:
        """Where validated rule sets are kept between starts: systemd's CacheDirectory= for
        the system service, else the user's cache folder.  Only a cache: deleting it is safe."""
        cache = os.environ.get("CACHE_DIRECTORY")
        return Path(cache) if cache else xdg_dir("XDG_CACHE_HOME", ".cache")

    @property
    def user_rules_path(self) -> Path:
        if self.rules_dir:
            return Path(self.rules_dir).expanduser()
        return xdg_dir("XDG_CONFIG_HOME", ".config") / "rules"

    @property
    def capture_mode(self) -> bool:
        return self.upstream is None


class ConfigError(Exception):
    def __init__(self, errors: list[SourceError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load_config(path: Path | None, *, explicit: bool = False) -> Config:
    """Load ``path`` (or the default location); embedded defaults when no file exists.

    ``explicit`` means the user named the file: then it must exist.
    """
    if path is None:
        path = default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError([SourceError(str(path), None, "", "no such file")])
        return Config()
    try:
        config = load_file(path, Config)
    except SchemaError as exc:
        raise ConfigError(exc.errors) from None
    return Config(**{**config.__dict__, "source": str(path)})


def insecure_permissions_warning(config: Config) -> str | None:
    """Warn when a config that names password sources is readable by other users."""
    if config.source.startswith("("):
        return None
    try:
        mode = Path(config.source).stat().st_mode
    except OSError:
        return None
    if mode & 0o077 and (config.upstream is not None or config.smtp.users):
        return f"{config.source} is readable by other users; consider chmod 600"
    return None
