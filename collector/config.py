"""Typed collector settings: a TOML file, then ``LOGBOT_COLLECTOR_<SECTION>_<KEY>`` overrides.

Settings are built once at start-up and passed down. Any bad value raises a
``ConfigError`` whose text is one line: ``[mqtt] url: must start with mqtt://``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collector.errors import ConfigError
from protocols import ProtocolError, is_identifier
from protocols.broker_url import parse_broker_url

ENV_PREFIX = "LOGBOT_COLLECTOR_"
# Variables with the prefix that are not settings: --config's default, test fault injection.
OTHER_ENV = frozenset({"LOGBOT_COLLECTOR_CONFIG", "LOGBOT_COLLECTOR_CRASH_AT"})
DEFAULT_LEDGER_PATH = "collector.db"  # [ledger] path when neither path nor url is set


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """How to reach the broker and what to subscribe to."""

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "logbot-collector"
    username: str = ""
    password: str = ""
    share_group: str = ""  # "" = plain subscription; else $share/<group>/...
    keepalive: int = 30
    clean_session: bool = False  # persistent session: queued QoS 1 survives restarts
    # Other back-end broker users (comma-separated, e.g. "collector-2,billing"):
    # like ``username`` and ``client_id`` they can never be device ids.
    service_users: str = ""
    ca_file: str = ""  # PEM CA bundle for mqtts:// ("" = the system store)
    cert_file: str = ""  # PEM client certificate (brokers that require one)
    key_file: str = ""  # its private key
    tls_insecure: bool = False  # tests only: skip the certificate's host name check
    protocol: str = "5"  # or "3.1.1" for old brokers (no $share check, no session expiry)
    session_expiry: int = 604_800  # MQTT 5: seconds the broker keeps our session while we are away

    def validate(self) -> None:
        """Refuse values that cannot work."""
        try:
            parse_broker_url(self.url)
        except ProtocolError:
            raise ConfigError(
                "mqtt", "url", f"{self.url!r} must look like mqtt://host:port"
            ) from None
        for key in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, key)
            if not value:
                continue
            if not self.tls:
                raise ConfigError("mqtt", key, f"is set but url {self.url!r} is not mqtts://")
            if not Path(value).is_file():
                raise ConfigError("mqtt", key, f"{value!r} is not a file")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("mqtt", "cert_file", "cert_file and key_file go together")
        if self.protocol not in ("3.1.1", "5"):
            raise ConfigError("mqtt", "protocol", f'{self.protocol!r} is not "3.1.1" or "5"')
        if not 0 <= self.session_expiry <= 0xFFFFFFFF:
            raise ConfigError("mqtt", "session_expiry", "must be between 0 and 4294967295 seconds")
        if not is_identifier(self.client_id):
            raise ConfigError("mqtt", "client_id", f"{self.client_id!r} is not an identifier")
        for name in self.service_user_names:
            if not is_identifier(name):
                raise ConfigError("mqtt", "service_users", f"{name!r} is not an identifier")
        if self.share_group and not is_identifier(self.share_group):
            raise ConfigError("mqtt", "share_group", f"{self.share_group!r} is not an identifier")
        if not 5 <= self.keepalive <= 3600:
            raise ConfigError("mqtt", "keepalive", "must be between 5 and 3600 seconds")

    @property
    def service_user_names(self) -> tuple[str, ...]:
        """Return the names listed in ``service_users``."""
        return tuple(n.strip() for n in self.service_users.split(",") if n.strip())

    @property
    def reserved_names(self) -> frozenset[str]:
        """Return every name a back-end service connects with (never a device id)."""
        names = {self.client_id, *self.service_user_names}
        if self.username:
            names.add(self.username)
        return frozenset(names)

    @property
    def host(self) -> str:
        """Return the broker host name."""
        return parse_broker_url(self.url).host

    @property
    def port(self) -> int:
        """Return the broker port (1883, or 8883 for mqtts)."""
        return parse_broker_url(self.url).port

    @property
    def tls(self) -> bool:
        """Tell whether to use TLS."""
        return parse_broker_url(self.url).tls


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """Where the ledger database lives: a SQLite file (``path``) or PostgreSQL (``url``).

    Exactly one of the two: with neither, ``path`` is ``collector.db``; with
    ``url``, ``path`` stays empty (no file is invented). The password may be in
    the URL or in ``PGPASSWORD`` (libpq reads it, as it reads ``~/.pgpass``).
    """

    path: str = ""
    url: str = ""  # postgresql://user[:password]@host[:port]/database[?sslmode=...]
    # SQLite only. FULL: a commit survives power loss (the WAL is fsynced at each
    # group commit). NORMAL: survives a process crash only; roughly 1.5x faster.
    synchronous: str = "FULL"
    pool_size: int = 4  # connections per pool (ingest, API reads, the shared Database)

    def __post_init__(self) -> None:
        if not self.path and not self.url:
            object.__setattr__(self, "path", DEFAULT_LEDGER_PATH)

    @property
    def location(self) -> str:
        """What ``collector.store.db.Database`` opens: the PostgreSQL URL, else the file."""
        return self.url or self.path

    def validate(self) -> None:
        """Refuse both path and url, a URL that is not PostgreSQL, bad modes and pool sizes."""
        if self.path and self.url:
            raise ConfigError("ledger", "url", "set either path (SQLite) or url (PostgreSQL)")
        if self.path.startswith(("postgres://", "postgresql://")):
            raise ConfigError("ledger", "path", "is a file; write a PostgreSQL URL as url = ...")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("postgresql", "postgres"):
                raise ConfigError("ledger", "url", "must start with postgresql://")
            if not parts.path.strip("/"):
                raise ConfigError("ledger", "url", "must name a database: postgresql://host/db")
        if self.synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(
                "ledger", "synchronous", f"{self.synchronous!r} is not FULL or NORMAL"
            )
        if not 1 <= self.pool_size <= 100:
            raise ConfigError("ledger", "pool_size", "must be between 1 and 100")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Validation limits and group commit."""

    max_future_seconds: int = 300
    late_window_hours: int = 72
    # Extra wait before taking a group. 0 = adaptive: a group is everything that
    # arrived while the previous group was committing (one commit in flight).
    group_commit_ms: int = 0
    max_group_messages: int = 2000
    dead_letter_raw_cap: int = 4096
    registry_refresh_seconds: int = 30
    # Per-device token bucket (messages): excess is acknowledged, counted and
    # dropped before decoding. 0 = unlimited. An agent keeps at most ~10 usage
    # messages in flight (38 msg/s while draining a backlog at 19k records/s).
    device_rate: float = 100.0
    device_burst: int = 1000
    # Dead-letter rows kept (oldest pruned first); per-reason counts stay exact.
    dead_letters_per_device: int = 1000
    dead_letters_total: int = 100_000

    def validate(self) -> None:
        """Refuse values outside sane ranges."""
        checks = {
            "max_future_seconds": (0, 86_400),
            "late_window_hours": (1, 24 * 366),
            "group_commit_ms": (0, 10_000),
            "max_group_messages": (1, 1_000_000),
            "dead_letter_raw_cap": (0, 1 << 20),
            "registry_refresh_seconds": (1, 86_400),
            "device_rate": (0, 1_000_000),
            "device_burst": (1, 10_000_000),
            "dead_letters_per_device": (1, 100_000_000),
            "dead_letters_total": (1, 1_000_000_000),
        }
        for key, (lo, hi) in checks.items():
            value = getattr(self, key)
            if not lo <= value <= hi:
                raise ConfigError("ingest", key, f"{value} is not between {lo} and {hi}")


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """The InfluxDB v2 write endpoint (or anything speaking /api/v2/write)."""

    enabled: bool = True
    url: str = "http://127.0.0.1:8086"
    token: str = ""
    org: str = "logbot"
    bucket: str = "logbot"
    data_bucket: str = ""  # "" = same as bucket; "{account}" = one bucket per account
    batch_lines: int = 5000
    flush_ms: int = 200
    max_backoff_seconds: float = 30.0
    timeout_seconds: float = 10.0

    def validate(self) -> None:
        """Refuse a URL that is not http(s) and empty bucket names."""
        if self.enabled and urlsplit(self.url).scheme not in ("http", "https"):
            raise ConfigError("influx", "url", f"{self.url!r} must start with http:// or https://")
        if not self.bucket:
            raise ConfigError("influx", "bucket", "must not be empty")
        if not 1 <= self.batch_lines <= 100_000:
            raise ConfigError("influx", "batch_lines", "must be between 1 and 100000")


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """Device liveness: a device silent for 1.5 x heartbeat is offline."""

    heartbeat_seconds: float = 60.0

    def validate(self) -> None:
        """Refuse a non-positive interval."""
        if not 0.1 <= self.heartbeat_seconds <= 86_400:
            raise ConfigError("status", "heartbeat_seconds", "must be between 0.1 and 86400")


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long raw rows are kept (days); rollups, month closes, money and dedup marks stay.

    Defaults: raw usage 400 days — a year's bill (and the month before it,
    for a dispute about a closed month) can be re-derived from the records
    themselves, not only from the hourly rollups billing reads; dead letters
    30 days — long enough to notice, diagnose and have a device resend,
    their per-device counts are kept for ever in ``dead_letter_totals``;
    status transitions 90 days — a quarter of liveness history for support;
    exported export-queue rows 7 days — they are already in the time-series
    store (the exporter deletes them on acknowledgement; this only catches
    leftovers). Deletion runs in batches of ``batch_rows`` rows, one short
    transaction each, every ``interval_seconds``. 2,500 rows: measured beside
    20,000 records/s of ingest (scripts/bench_retention.py), batches of 1,000
    deleted 33k rows/s and raised p99 receive->commit 50 -> 119 ms (more
    transactions, more hand-overs of the writer), 2,500 deleted 40k rows/s
    at 44 -> 53 ms, 5,000 the same rows at 44 -> 180 ms (longer waits).
    """

    enabled: bool = True
    usage_days: int = 400
    dead_letter_days: int = 30
    transition_days: int = 90
    export_days: int = 7
    batch_rows: int = 2500
    interval_seconds: float = 600.0

    def validate(self) -> None:
        """Refuse horizons under a day, and batches or intervals out of range."""
        for key in ("usage_days", "dead_letter_days", "transition_days", "export_days"):
            if not 1 <= getattr(self, key) <= 36_500:
                raise ConfigError("retention", key, "must be between 1 and 36500 days")
        if not 10 <= self.batch_rows <= 100_000:
            raise ConfigError("retention", "batch_rows", "must be between 10 and 100000")
        if not 1 <= self.interval_seconds <= 86_400:
            raise ConfigError("retention", "interval_seconds", "must be between 1 and 86400")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The REST API and /metrics."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    # Invitation links are signed with the key in this file (created 0600 when
    # absent). Empty: beside the SQLite ledger. With [ledger] url it must be set,
    # to the same file on every collector host, and kept out of the database.
    link_key_file: str = ""

    def validate(self) -> None:
        """Refuse an impossible port."""
        if not 0 <= self.port <= 65535:
            raise ConfigError("api", "port", f"{self.port} is not a TCP port")


@dataclass(frozen=True, slots=True)
class BillingSettings:
    """Rating: the price book and the automatic monthly close."""

    price_book: str = ""  # empty: the shipped deploy/pricebook.example.toml
    close_scheduler: bool = True
    close_interval_seconds: float = 60.0
    lookback_months: int = 3

    def validate(self) -> None:
        """Refuse a missing price book file or an impossible interval."""
        if self.price_book and not Path(self.price_book).is_file():
            raise ConfigError("billing", "price_book", f"{self.price_book!r} is not a file")
        if not 1 <= self.close_interval_seconds <= 86_400:
            raise ConfigError("billing", "close_interval_seconds", "must be between 1 and 86400")
        if not 0 <= self.lookback_months <= 24:
            raise ConfigError("billing", "lookback_months", "must be between 0 and 24")


@dataclass(frozen=True, slots=True)
class PortalSettings:
    """Accounts, fleet and the web portal served beside the API."""

    enabled: bool = True  # the web UI under /portal/; API auth is on either way
    base_url: str = ""  # links in e-mails; empty: http://<api.host>:<api.port>
    offline_after_seconds: float = 600.0  # a room/device silent this long is offline

    def validate(self) -> None:
        """Refuse a base URL that is not http(s) or a non-positive timeout."""
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("portal", "base_url", "must start with http:// or https://")
        if self.offline_after_seconds <= 0:
            raise ConfigError("portal", "offline_after_seconds", "must be positive")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How the collector logs: plain text or JSON lines, on stderr."""

    format: str = "text"  # text | json (one JSON object per line, for journald/Loki/...)
    level: str = "info"  # debug | info | warning | error

    def validate(self) -> None:
        """Refuse an unknown format or level."""
        if self.format not in ("text", "json"):
            raise ConfigError("log", "format", f"{self.format!r} is not text or json")
        if self.level not in ("debug", "info", "warning", "error"):
            raise ConfigError(
                "log", "level", f"{self.level!r} is not debug, info, warning or error"
            )


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Delivery of queued e-mail (SMTP) and webhook events (see deploy/NOTIFICATIONS.md)."""

    enabled: bool = False  # drain the outboxes; off: messages wait in the database
    interval_seconds: float = 15.0  # how often due messages are looked for
    smtp_host: str = ""  # empty: e-mail is not sent (it waits)
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password_file: str = ""  # a file holding the password (kept out of the config)
    mail_from: str = "Logbot <noreply@logbot.cloud>"
    webhook_url: str = ""  # empty: webhook events are not sent (they wait)
    webhook_secret_file: str = ""  # HMAC-SHA256 signing secret, shared with the receiver
    max_attempts: int = 8  # then the message is dead-lettered
    backoff_seconds: float = 30.0  # first retry delay, doubled after each failure
    backoff_max_seconds: float = 3600.0

    def validate(self) -> None:
        """Refuse impossible ports, intervals and retry counts, and a webhook without a secret."""
        if not 0 < self.smtp_port <= 65535:
            raise ConfigError("notify", "smtp_port", f"{self.smtp_port} is not a TCP port")
        if not 0.05 <= self.interval_seconds <= 3600:
            raise ConfigError("notify", "interval_seconds", "must be between 0.05 and 3600")
        if not 1 <= self.max_attempts <= 100:
            raise ConfigError("notify", "max_attempts", "must be between 1 and 100")
        if not 0 < self.backoff_seconds <= self.backoff_max_seconds:
            raise ConfigError("notify", "backoff_seconds", "must be > 0 and <= backoff_max_seconds")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("notify", "webhook_url", "must start with http:// or https://")
        if self.webhook_url and not self.webhook_secret_file:
            raise ConfigError("notify", "webhook_secret_file", "a webhook needs a signing secret")
        for key in ("smtp_password_file", "webhook_secret_file"):
            value = getattr(self, key)
            if value and not Path(value).is_file():
                raise ConfigError("notify", key, f"{value!r} is not a file")


MIN_SECRET_BYTES = 16  # an HMAC signing secret shorter than this is guessable


@dataclass(frozen=True, slots=True)
class PaymentsSettings:
    """How customers pay by card (see collector/billing/README.md, "Card payments").

    The hosted card provider: its name (stored on card orders), the page the
    customer is sent to, and the file holding the secret that signs its
    webhook events. Without a secret, card orders wait for an operator.
    """

    card_provider: str = "card"  # the provider's name, stored on its orders
    card_checkout_url: str = ""  # its hosted payment page; "" = orders get no payment_url
    card_webhook_secret_file: str = ""  # "" = <ledger path>.card-webhook-secret, if present

    def validate(self) -> None:
        """Refuse a bad provider name, a page that is not https, a missing or short secret."""
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", self.card_provider):
            raise ConfigError(
                "payments", "card_provider", f"{self.card_provider!r} is not a lower-case name"
            )
        if self.card_checkout_url:
            url = urlsplit(self.card_checkout_url)
            if url.scheme != "https" or not url.hostname:
                raise ConfigError("payments", "card_checkout_url", "must be an https:// URL")
            if url.query or url.fragment:
                raise ConfigError(
                    "payments", "card_checkout_url", "must not have a query: ?reference= is added"
                )
        if self.card_webhook_secret_file:
            _check_secret("payments", "card_webhook_secret_file", self.card_webhook_secret_file)


def _check_secret(section: str, key: str, path: str) -> None:
    try:
        secret = Path(path).read_bytes().strip()
    except FileNotFoundError:
        raise ConfigError(section, key, f"{path!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(section, key, f"{path!r} cannot be read: {exc.strerror}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            section, key, f"{path!r} holds {len(secret)} bytes; a secret needs {MIN_SECRET_BYTES}"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the collector, one section per dataclass."""

    mqtt: MqttSettings = field(default_factory=MqttSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    log: LogSettings = field(default_factory=LogSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    payments: PaymentsSettings = field(default_factory=PaymentsSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    def link_key_path(self) -> Path:
        """The invitation link key file: ``[api] link_key_file``, else beside the SQLite ledger.

        Asked by what signs links (the API, the notifier, ``fleet users invite``):
        with ``[ledger] url`` there is no file to sit beside, so it must be named.
        """
        if self.api.link_key_file:
            return Path(self.api.link_key_file)
        if self.ledger.url:
            raise ConfigError(
                "api",
                "link_key_file",
                "must be set with [ledger] url: the same file on every collector host"
                " (it signs invitation links and stays out of the database)",
            )
        ledger = Path(self.ledger.path)
        return ledger.with_name(ledger.name + ".link-key")


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (TOML, optional), apply environment overrides, validate."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("file", str(path), "does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("file", str(path), f"cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("file", str(path), f"is not valid TOML: {exc}") from None
    return settings_from_mapping(raw, env)


def settings_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Build Settings from parsed TOML plus environment overrides."""
    _refuse_unknown_env(env)
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for name in raw:
        if name not in hints:
            raise ConfigError(name, "*", "unknown section")
    for f in dataclasses.fields(Settings):
        cls = hints[f.name]
        table = raw.get(f.name, {})
        if not isinstance(table, dict):
            raise ConfigError(f.name, "*", "must be a table")
        sections[f.name] = _build_section(f.name, cls, table, env)
    settings = Settings(**sections)
    for name in sections:
        getattr(settings, name).validate()
    return settings


def env_names() -> frozenset[str]:
    """Return every ``LOGBOT_COLLECTOR_*`` variable the collector reads."""
    hints = typing.get_type_hints(Settings)
    names = {
        f"{ENV_PREFIX}{section.name.upper()}_{key.name.upper()}"
        for section in dataclasses.fields(Settings)
        for key in dataclasses.fields(hints[section.name])
    }
    return frozenset(names | OTHER_ENV)


def _refuse_unknown_env(env: Mapping[str, str]) -> None:
    # A misspelled override would otherwise leave the default in force, silently.
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX))
    if not unknown:
        return
    known = env_names()
    for name in unknown:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError("environment", name, f"is not a collector setting{hint}")


def _build_section(
    section: str, cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(section, key, "unknown option")
    values: dict[str, Any] = {}
    for key in known:
        typ = hints[key]
        env_key = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        if env_key in env:
            values[key] = _from_env(section, key, typ, env[env_key])
        elif key in table:
            values[key] = _check_type(section, key, typ, table[key])
    return cls(**values)


def _from_env(section: str, key: str, typ: Any, text: str) -> Any:
    try:
        if typ is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
    except ValueError:
        raise ConfigError(
            section, key, f"{text!r} (from environment) is not a {typ.__name__}"
        ) from None
    return text


def _check_type(section: str, key: str, typ: Any, value: Any) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = typ if not isinstance(typ, types.UnionType) else typing.get_args(typ)
    if typ is int and isinstance(value, bool):
        raise ConfigError(section, key, f"{value!r} is not an int")
    if not isinstance(value, expected):
        name = getattr(typ, "__name__", str(typ))
        raise ConfigError(section, key, f"{value!r} is not a {name}")
    return value
