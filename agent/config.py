"""Typed settings of the agent, read once from TOML plus environment overrides.

Every key of every fixed section can be overridden by an environment
variable ``LOGBOT_AGENT_<SECTION>_<KEY>`` (``LOGBOT_AGENT_BROKER_URL``,
``LOGBOT_AGENT_DEVICE_ID``); keys of an existing meter table by
``LOGBOT_AGENT_METERS_<INSTANCE>_<KEY>``. Values from the environment are
parsed as the type the key expects. Any problem raises ``ConfigError`` whose
text is one line naming the key, e.g.
``[broker] url: expected mqtt:// or mqtts:// URL, got 'http://x'``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import ConfigError
from protocols import ProtocolError, is_identifier
from protocols.broker_url import parse_broker_url

ENV_PREFIX = "LOGBOT_AGENT_"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    id: str
    account: str


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    url: str
    username: str = ""
    password: str = ""
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    client_id: str = ""  # defaults to the device id
    keepalive: int = 30
    protocol: str = "5"  # or "3.1.1" for old brokers (no session expiry, no PUBACK reasons)
    session_expiry: int = 604_800  # MQTT 5: seconds the broker keeps our session while away

    @property
    def host(self) -> str:
        return parse_broker_url(self.url).host

    @property
    def port(self) -> int:
        return parse_broker_url(self.url).port

    @property
    def tls(self) -> bool:
        return parse_broker_url(self.url).tls


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    path: str = ""  # defaults to <state_dir>/outbox.db
    usage_cap: int = 200_000  # records; above it never-sent windows are merged
    data_cap_bytes: int = 64 * 1024 * 1024  # above it commit_data raises BackPressure
    health_cap_bytes: int = 4 * 1024 * 1024  # above it the oldest snapshots are dropped
    reserve_bytes: int = 4 * 1024 * 1024  # set aside for the final commits on a full disk


@dataclass(frozen=True, slots=True)
class UplinkSettings:
    batch_size: int = 500  # records per UsageBatch message
    max_inflight: int = 5_000  # records sent and not yet receipted
    receipt_timeout: float = 30.0  # seconds before an unreceipted batch is resent
    resend_backoff_max: float = 600.0
    rate_limit: float = 20_000.0  # records per second while draining (0: unlimited)
    reconnect_min: float = 1.0
    reconnect_max: float = 300.0


@dataclass(frozen=True, slots=True)
class HealthSettings:
    interval: float = 60.0
    mounts: tuple[str, ...] = ()  # empty: every real filesystem


@dataclass(frozen=True, slots=True)
class AgentSettings:
    state_dir: str = "/var/lib/logbot-agent"
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class MeterSettings:
    """One ``[meters.<instance>]`` table: its kind and its own keys."""

    instance: str
    kind: str
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Settings:
    device: DeviceSettings
    broker: BrokerSettings
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    uplink: UplinkSettings = field(default_factory=UplinkSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    meters: tuple[MeterSettings, ...] = ()

    @property
    def outbox_path(self) -> Path:
        return Path(self.outbox.path or Path(self.agent.state_dir) / "outbox.db")

    @property
    def client_id(self) -> str:
        return self.broker.client_id or self.device.id

    def broker_password(self) -> str:
        """Return the password, read from ``password_file`` if one is set."""
        if self.broker.password_file:
            try:
                return Path(self.broker.password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError("[broker] password_file", f"cannot read: {exc}") from exc
        return self.broker.password


_SECTIONS: dict[str, type[Any]] = {
    "device": DeviceSettings,
    "broker": BrokerSettings,
    "outbox": OutboxSettings,
    "uplink": UplinkSettings,
    "health": HealthSettings,
    "agent": AgentSettings,
}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (TOML) and the environment into Settings, or raise ConfigError."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(str(path), "file not found") from None
        except OSError as exc:
            raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return settings_from_mapping(raw, env)


def settings_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Build Settings from a parsed TOML document and environment overrides."""
    for name in raw:
        if name not in _SECTIONS and name != "meters":
            raise ConfigError(f"[{name}]", f"unknown section (known: {', '.join(_SECTIONS)})")
    built: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}]", "expected a table")
        built[name] = _build_section(name, cls, table, env)
    meters = _build_meters(raw.get("meters", {}), env)
    settings = Settings(meters=meters, **built)
    _validate(settings)
    return settings


def _build_section(name: str, cls: type[T], table: Mapping[str, Any], env: Mapping[str, str]) -> T:
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in known:
            raise ConfigError(f"[{name}] {key}", "unknown key")
    values: dict[str, Any] = {}
    for key, f in known.items():
        env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        where = f"[{name}] {key}"
        if env_name in env:
            values[key] = _from_env(where, env_name, env[env_name], f.type)
        elif key in table:
            values[key] = _coerce(where, table[key], f.type)
    try:
        return cls(**values)
    except TypeError as exc:
        missing = [k for k, f in known.items() if k not in values and _required(f)]
        key = missing[0] if missing else "?"
        raise ConfigError(f"[{name}] {key}", "missing required key") from exc


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


def _coerce(where: str, value: Any, typ: Any) -> Any:
    typ = str(typ)
    if typ == "str":
        if not isinstance(value, str):
            raise ConfigError(where, f"expected a string, got {value!r}")
        return value
    if typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, f"expected an integer, got {value!r}")
        return value
    if typ == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, f"expected a number, got {value!r}")
        return float(value)
    if typ == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(where, f"expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(where, f"unsupported setting type {typ}")  # pragma: no cover


def _from_env(where: str, env_name: str, text: str, typ: Any) -> Any:
    typ = str(typ)
    parsers: dict[str, Callable[[str], Any]] = {
        "str": str,
        "int": int,
        "float": float,
        "tuple[str, ...]": lambda s: tuple(p.strip() for p in s.split(",") if p.strip()),
    }
    try:
        return parsers[typ](text)
    except ValueError:
        raise ConfigError(where, f"{env_name}={text!r} is not a valid {typ}") from None


def _build_meters(table: Any, env: Mapping[str, str]) -> tuple[MeterSettings, ...]:
    if not isinstance(table, dict):
        raise ConfigError("[meters]", "expected a table of [meters.<name>] tables")
    out: list[MeterSettings] = []
    for instance, options in table.items():
        where = f"[meters.{instance}]"
        if not isinstance(options, dict):
            raise ConfigError(where, "expected a table")
        if not is_identifier(instance):
            raise ConfigError(
                where, "instance name must be a letter or digit then A-Z a-z 0-9 _ . -"
            )
        opts = dict(options)
        prefix = f"{ENV_PREFIX}METERS_{instance.upper()}_"
        for name, text in env.items():
            if name.startswith(prefix):
                opts[name[len(prefix) :].lower()] = _env_literal(text)
        enabled = opts.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where} enabled", f"expected true or false, got {enabled!r}")
        kind = opts.pop("kind", instance)
        if not isinstance(kind, str):
            raise ConfigError(f"{where} kind", f"expected a string, got {kind!r}")
        from agent.meters.registry import known_kinds

        if kind not in known_kinds():
            raise ConfigError(
                f"{where} kind", f"unknown meter kind {kind!r} (known: {', '.join(known_kinds())})"
            )
        if enabled:
            out.append(MeterSettings(instance, kind, opts))
    return tuple(out)


def _env_literal(text: str) -> Any:
    """Parse an environment value as a TOML value when it is one, else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _validate(s: Settings) -> None:
    for key, value in (("id", s.device.id), ("account", s.device.account)):
        if not is_identifier(value):
            raise ConfigError(
                f"[device] {key}",
                f"{value!r} must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a "
                "letter or digit",
            )
    try:
        parse_broker_url(s.broker.url)
    except ProtocolError as exc:
        raise ConfigError("[broker] url", str(exc)) from None
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        value = getattr(s.broker, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"[broker] {key}", f"no such file {value!r}")
    if bool(s.broker.cert_file) != bool(s.broker.key_file):
        raise ConfigError("[broker] cert_file", "cert_file and key_file go together")
    if s.broker.password and s.broker.password_file:
        raise ConfigError("[broker] password", "set password or password_file, not both")
    if s.broker.protocol not in ("3.1.1", "5"):
        raise ConfigError(
            "[broker] protocol", f'expected "3.1.1" or "5", got {s.broker.protocol!r}'
        )
    if not 0 <= s.broker.session_expiry <= 0xFFFFFFFF:
        raise ConfigError("[broker] session_expiry", "expected 0..4294967295 seconds")
    if not 5 <= s.broker.keepalive <= 3600:
        raise ConfigError(
            "[broker] keepalive", f"expected 5..3600 seconds, got {s.broker.keepalive}"
        )
    _positive("[outbox] usage_cap", s.outbox.usage_cap)
    _positive("[outbox] data_cap_bytes", s.outbox.data_cap_bytes)
    _positive("[outbox] health_cap_bytes", s.outbox.health_cap_bytes)
    if s.outbox.reserve_bytes < 0:
        raise ConfigError("[outbox] reserve_bytes", "expected 0 (none) or more bytes")
    if not 1 <= s.uplink.batch_size <= 5_000:
        raise ConfigError("[uplink] batch_size", f"expected 1..5000, got {s.uplink.batch_size}")
    if s.uplink.max_inflight < s.uplink.batch_size:
        raise ConfigError("[uplink] max_inflight", "must be at least batch_size")
    _positive("[uplink] receipt_timeout", s.uplink.receipt_timeout)
    _positive("[uplink] reconnect_min", s.uplink.reconnect_min)
    if s.uplink.reconnect_max < s.uplink.reconnect_min:
        raise ConfigError("[uplink] reconnect_max", "must be at least reconnect_min")
    if s.uplink.rate_limit < 0:
        raise ConfigError("[uplink] rate_limit", "must be 0 (unlimited) or positive")
    _positive("[health] interval", s.health.interval)
    if s.agent.log_level not in _LOG_LEVELS:
        raise ConfigError("[agent] log_level", f"expected one of {', '.join(_LOG_LEVELS)}")
    if not s.agent.state_dir:
        raise ConfigError("[agent] state_dir", "must not be empty")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(key, f"must be positive, got {value}")
