"""The service catalog and price book, as data: a TOML file with effective dates.

Loaded once at start-up, validated fully (one clear error line naming the
offending entry) and then immutable. TOML floats are parsed as ``Decimal``
(``tomllib``'s ``parse_float``), so ``17.86`` in the file is exactly 17.86.
See ``deploy/pricebook.example.toml`` for the format.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from collector.billing.errors import PriceBookError
from collector.billing.money import ZERO, to_decimal

SCOPES = ("device", "user", "organization")
ACTIVATION_MODES = ("self", "operator")
USAGE_SERVICES = ("data_ingestion", "vpn", "sim")
#: Usage unit labels -> (base unit, base units per label).
PER_UNITS: Mapping[str, tuple[str, int]] = {
    "B": ("bytes", 1),
    "KB": ("bytes", 10**3),
    "MB": ("bytes", 10**6),
    "GB": ("bytes", 10**9),
    "second": ("seconds", 1),
    "minute": ("seconds", 60),
    "hour": ("seconds", 3600),
    "point": ("points", 1),
    "kpoint": ("points", 1000),
}


@dataclass(frozen=True, slots=True)
class UsagePrice:
    """A price per usage unit: ``price`` logbit per ``per`` base units of ``unit``."""

    service: str
    unit: str
    per: int
    per_label: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """The prices of one service valid on local dates ``[effective_from, effective_to)``."""

    effective_from: date
    effective_to: date | None
    per_day: Decimal
    per_month: Decimal
    per_seat_month: Decimal
    usage: tuple[UsagePrice, ...]

    def covers(self, day: date) -> bool:
        """Return True if this version prices ``day``."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def usage_price(self, service: str, unit: str) -> UsagePrice | None:
        """Return the usage price for ``service``/``unit``, if any."""
        for price in self.usage:
            if price.service == service and price.unit == unit:
                return price
        return None


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """One catalog entry (a service or a combo such as LOGBOT-600)."""

    code: str
    name: str
    scope: str
    activation: str
    covers: frozenset[str]
    default_for: frozenset[str]
    priority: int
    prices: tuple[PriceVersion, ...]

    def price_at(self, day: date) -> PriceVersion | None:
        """Return the price version valid on local date ``day``, if any."""
        for version in self.prices:
            if version.covers(day):
                return version
        return None

    @property
    def label(self) -> str:
        """The ledger's service label: ``data ingestion + vpn combo LOGBOT-600``."""
        return f"{self.name} {self.code}"


@dataclass(frozen=True, slots=True)
class Pack:
    """A credit pack: ``logbit`` credited for ``price_eur`` plus VAT."""

    code: str
    name: str
    logbit: Decimal
    price_eur: Decimal


@dataclass(frozen=True, slots=True)
class SupportCardDef:
    """The prepaid support card product (seed: 400 minutes, 12 months)."""

    code: str
    minutes: int
    valid_months: int
    price_eur: Decimal


@dataclass(frozen=True, slots=True)
class PriceBook:
    """The whole, validated price book."""

    vat_rate: Decimal
    services: Mapping[str, ServiceDef]
    packs: Mapping[str, Pack]
    support_card: SupportCardDef

    def service(self, code: str) -> ServiceDef:
        """Return the service ``code`` or raise PriceBookError."""
        try:
            return self.services[code]
        except KeyError:
            raise PriceBookError(f"unknown service code {code!r}") from None

    def default_for(self, usage_service: str) -> ServiceDef:
        """Return the pay-as-you-go service that rates ``usage_service`` with no activation."""
        for svc in self.services.values():
            if usage_service in svc.default_for:
                return svc
        raise PriceBookError(f"no default service for usage {usage_service!r}")


def load_price_book(path: str | Path) -> PriceBook:
    """Read and validate a price book TOML file; raise PriceBookError with one clear line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceBookError(f"cannot read price book {path}: {exc.strerror}") from exc
    return parse_price_book(text, source=str(path))


def parse_price_book(text: str, *, source: str = "<price book>") -> PriceBook:
    """Parse and validate price book TOML text."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PriceBookError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return _build(data)
    except PriceBookError as exc:
        raise PriceBookError(f"{source}: {exc}") from exc


def _build(data: Mapping[str, Any]) -> PriceBook:
    vat = _money(data.get("vat_rate"), "vat_rate")
    if vat >= 1:
        raise PriceBookError(f"vat_rate must be a fraction like 0.22, got {vat}")
    services: dict[str, ServiceDef] = {}
    for i, raw in enumerate(_tables(data, "services")):
        svc = _service(raw, f"services[{i}]")
        if svc.code in services:
            raise PriceBookError(f"duplicate service code {svc.code!r}")
        services[svc.code] = svc
    for usage in USAGE_SERVICES:
        owners = [s.code for s in services.values() if usage in s.default_for]
        if len(owners) != 1:
            raise PriceBookError(f"exactly one service must be default_for {usage!r}, got {owners}")
    packs: dict[str, Pack] = {}
    for i, raw in enumerate(_tables(data, "packs")):
        where = f"packs[{i}]"
        code = _text(raw, "code", where)
        logbit = _money(raw.get("logbit"), f"{where}.logbit")
        if logbit <= 0 or logbit != logbit.to_integral():
            raise PriceBookError(f"{where}.logbit must be a positive whole number")
        if code in packs:
            raise PriceBookError(f"duplicate pack code {code!r}")
        packs[code] = Pack(
            code, str(raw.get("name", code)), logbit, _money(raw.get("price_eur"), f"{where}.price")
        )
    card = data.get("support_card")
    if not isinstance(card, dict):
        raise PriceBookError("missing [support_card] table")
    support = SupportCardDef(
        code=_text(card, "code", "support_card"),
        minutes=_positive_int(card.get("minutes"), "support_card.minutes"),
        valid_months=_positive_int(card.get("valid_months"), "support_card.valid_months"),
        price_eur=_money(card.get("price_eur"), "support_card.price_eur"),
    )
    return PriceBook(vat, services, packs, support)


def _service(raw: Mapping[str, Any], where: str) -> ServiceDef:
    code = _text(raw, "code", where)
    where = f"service {code}"
    scope = _choice(raw.get("scope", "device"), SCOPES, f"{where}.scope")
    activation = _choice(raw.get("activation", "self"), ACTIVATION_MODES, f"{where}.activation")
    covers = frozenset(
        _choice(s, USAGE_SERVICES, f"{where}.covers") for s in _list(raw, "covers", where)
    )
    default_for = frozenset(
        _choice(s, USAGE_SERVICES, f"{where}.default_for") for s in _list(raw, "default_for", where)
    )
    if not default_for <= covers:
        raise PriceBookError(f"{where}: default_for must be a subset of covers")
    if default_for and scope != "device":
        raise PriceBookError(f"{where}: a default usage service must have scope 'device'")
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise PriceBookError(f"{where}.priority must be an integer")
    versions = [_version(p, f"{where}.prices[{i}]") for i, p in enumerate(_tables(raw, "prices"))]
    if not versions:
        raise PriceBookError(f"{where}: needs at least one [[services.prices]] entry")
    versions.sort(key=lambda v: v.effective_from)
    for before, after in itertools.pairwise(versions):
        if before.effective_to is None or before.effective_to > after.effective_from:
            raise PriceBookError(
                f"{where}: price from {before.effective_from} overlaps {after.effective_from}"
            )
    for version in versions:
        for usage in version.usage:
            if usage.service not in covers:
                raise PriceBookError(f"{where}: prices usage {usage.service!r} it does not cover")
    return ServiceDef(
        code=code,
        name=_text(raw, "name", where),
        scope=scope,
        activation=activation,
        covers=covers,
        default_for=default_for,
        priority=priority,
        prices=tuple(versions),
    )


def _version(raw: Mapping[str, Any], where: str) -> PriceVersion:
    start = raw.get("effective_from")
    end = raw.get("effective_to")
    if not isinstance(start, date) or type(start) is not date:
        raise PriceBookError(f"{where}.effective_from must be a date like 2023-01-01")
    if end is not None and (type(end) is not date or end <= start):
        raise PriceBookError(f"{where}.effective_to must be a date after effective_from")
    usage: list[UsagePrice] = []
    for i, u in enumerate(_tables(raw, "usage")):
        uw = f"{where}.usage[{i}]"
        service = _choice(u.get("service"), USAGE_SERVICES, f"{uw}.service")
        per_label = _choice(u.get("per"), tuple(PER_UNITS), f"{uw}.per")
        unit, per = PER_UNITS[per_label]
        if any(p.service == service and p.unit == unit for p in usage):
            raise PriceBookError(f"{uw}: two prices for {service} in {unit}")
        usage.append(UsagePrice(service, unit, per, per_label, _money(u.get("price"), uw)))
    return PriceVersion(
        effective_from=start,
        effective_to=end,
        per_day=_money(raw.get("per_day", 0), f"{where}.per_day"),
        per_month=_money(raw.get("per_month", 0), f"{where}.per_month"),
        per_seat_month=_money(raw.get("per_seat_month", 0), f"{where}.per_seat_month"),
        usage=tuple(usage),
    )


def _money(value: object, where: str) -> Decimal:
    if value is None:
        raise PriceBookError(f"{where} is missing")
    try:
        amount = to_decimal(value)
    except (TypeError, ValueError) as exc:
        raise PriceBookError(f"{where}: {exc}") from exc
    if amount < ZERO:
        raise PriceBookError(f"{where} must not be negative, got {amount}")
    return amount


def _positive_int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PriceBookError(f"{where} must be a positive integer")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PriceBookError(f"{where}.{key} must be a non-empty string")
    return value


def _choice(value: object, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise PriceBookError(f"{where} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise PriceBookError(f"{where}.{key} must be a list")
    return value


def _tables(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PriceBookError(f"{key} must be an array of tables ([[{key}]])")
    return value


def shipped_price_book() -> Path:
    """Return the default price book: packaged in a wheel, or the source tree's.

    A wheel carries ``deploy/pricebook.example.toml`` as
    ``collector/billing/default_pricebook.toml``; an editable install reads
    the file in ``deploy/`` directly.
    """
    packaged = Path(__file__).with_name("default_pricebook.toml")
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "deploy" / "pricebook.example.toml"
