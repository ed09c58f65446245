"""Request and response bodies of the fleet API (``XIn`` / ``XOut``).

Amounts are decimal strings, never floats; timestamps are ISO-8601 UTC text.
Request bodies refuse unknown fields; quantities are strict integers (``"2"``,
``2.0`` and ``true`` are 422, not coerced), flags strict booleans, dates lie
within ``MIN_DATE``..``MAX_DATE``, and no text may hold a lone surrogate
(JSON's ``"\\ud800"``), which no database or e-mail could encode: all 422.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from collector.billing.api_inputs import check_unicode

Role = Literal["admin", "readonly"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2099, 12, 31)
BoundedDate = Annotated[date, Field(ge=MIN_DATE, le=MAX_DATE)]


class ErrorOut(BaseModel):
    detail: str


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        check_unicode(value)
        return value


class LoginIn(_In):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    id: str
    token: str
    kind: str
    expires_at: str | None


class TokenIn(_In):
    name: str = Field(default="", max_length=100)


class TokenInfoOut(BaseModel):
    id: str
    kind: str
    name: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class AccountOut(BaseModel):
    id: str
    name: str
    parent_id: str | None
    kind: str
    status: str
    role: str | None
    timezone: str = "UTC"


class MeOut(BaseModel):
    user_id: str
    email: str
    is_operator: bool
    accounts: list[AccountOut]


class AccountIn(_In):
    name: str = Field(min_length=1, max_length=120)
    id: str | None = Field(default=None, max_length=64, pattern=ID_PATTERN)
    parent_id: str | None = Field(default=None, max_length=64)
    partner_id: str | None = Field(default=None, max_length=64)
    kind: Literal["customer", "partner"] = "customer"
    # IANA name; the month boundaries of billing. Default: the parent's, else UTC.
    timezone: str | None = Field(default=None, min_length=1, max_length=64)


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str
    role: str


class RoleIn(_In):
    role: Role


class DelegationIn(_In):
    partner_id: str = Field(min_length=1, max_length=64)
    role: Role = "admin"


class DelegationOut(BaseModel):
    partner_id: str
    customer_id: str
    role: str
    created_at: str


class InvitationIn(_In):
    email: str = Field(min_length=3, max_length=254)
    role: Role = "readonly"


class InvitationOut(BaseModel):
    id: str
    account_id: str
    email: str
    role: str
    created_at: str
    expires_at: str
    accepted_at: str | None
    superseded_at: str | None


class AcceptIn(_In):
    token: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=8, max_length=200)
    name: str = Field(default="", max_length=120)


class ProductOut(BaseModel):
    code: str
    name: str
    category: str


class DeviceIn(_In):
    serial: str = Field(min_length=1, max_length=128)
    model: str = Field(min_length=1, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)


class DeviceOut(BaseModel):
    id: str
    account_id: str
    serial: str | None
    model: str
    status: str
    created_at: str
    has_credentials: bool
    room_id: str | None
    room_name: str | None = None
    # online / offline / needs_attention, judged on the collector's clock
    state: str | None = None
    last_seen: str | None = None


class PlacementOut(BaseModel):
    device_id: str
    serial: str | None
    room_id: str
    room_name: str
    since: str
    until: str | None


class DeviceDetailOut(DeviceOut):
    state: str
    last_seen: str | None
    missing_peripherals: list[str]
    placements: list[PlacementOut]
    coverage_end: str | None
    # Raised by ingest and seen within the last hour, e.g. duplicate_client.
    conditions: list[str] = []


class CredentialsOut(BaseModel):
    device_id: str
    account_id: str
    username: str
    password: str
    topic_prefix: str


class UsagePointOut(BaseModel):
    hour: str
    service: str
    unit: str
    quantity: int


class SiteIn(_In):
    name: str = Field(min_length=1, max_length=120)
    address: str = Field(default="", max_length=500)


class SiteOut(BaseModel):
    id: str
    account_id: str
    name: str
    address: str


class RoomIn(_In):
    name: str = Field(min_length=1, max_length=120)


class RoomDeviceOut(BaseModel):
    device_id: str
    serial: str | None
    model: str
    state: str
    last_seen: str | None
    missing_peripherals: list[str]
    recent: list[dict[str, str]]


class RoomOut(BaseModel):
    id: str
    account_id: str
    site_id: str
    site_name: str
    name: str
    state: str
    devices: list[RoomDeviceOut]
    licence_contract_id: str | None


class RoomDetailOut(RoomOut):
    placements: list[PlacementOut]
    licence_history: list[dict[str, str | None]]
    usage_7d: list[dict[str, Any]]
    status_history: list[dict[str, Any]]


class AssignIn(_In):
    serial: str = Field(min_length=1, max_length=128)


class LicenceIn(_In):
    contract_id: str = Field(min_length=1, max_length=64)


class MoveLicenceIn(_In):
    to_room_id: str = Field(min_length=1, max_length=64)


class ContractIn(_In):
    sku: str = Field(min_length=1, max_length=32)
    licences: StrictInt = Field(ge=1, le=100_000)
    starts_on: BoundedDate | None = None
    end_customer_email: str | None = Field(default=None, min_length=3, max_length=254)
    reseller_email: str | None = Field(default=None, min_length=3, max_length=254)
    distributor_email: str | None = Field(default=None, min_length=3, max_length=254)


class ContractOut(BaseModel):
    id: str
    account_id: str
    sku: str
    term_years: int
    licences: int
    licences_used: int
    purchased_at: str
    starts_on: str
    ends_on: str
    status: str
    cancelled_at: str | None
    spares_granted: int


class EntitlementOut(BaseModel):
    principal_id: str
    licensed_rooms: int
    spares: int


class FleetStatusOut(BaseModel):
    account_id: str
    counts: dict[str, int]
    rooms: list[RoomOut]


class TicketIn(_In):
    subject: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    card_code: str = Field(min_length=1, max_length=64)


class TicketOut(BaseModel):
    id: str
    account_id: str
    room_id: str | None
    subject: str
    status: str
    created_at: str
    opened_by: str


class TicketEventOut(BaseModel):
    at: str
    author: str
    note: str
    minutes: int


class TicketDetailOut(TicketOut):
    description: str
    snapshot: dict[str, Any]
    events: list[TicketEventOut]


class SupportCardOut(BaseModel):
    hint: str
    minutes_total: int
    minutes_left: int
    purchased_at: str
    expires_at: str
    active: bool


class WorkIn(_In):
    minutes: StrictInt = Field(ge=0, le=1440)
    note: str = Field(min_length=1, max_length=2000)
    close: StrictBool = False


class WorkOut(BaseModel):
    minutes_left: int


class ServiceOfferOut(BaseModel):
    code: str
    name: str
    scope: str
    activation: str


class ActivationIn(_In):
    service_code: str = Field(min_length=1, max_length=64)
    subject_kind: Literal["device", "user", "organization"]
    subject_id: str = Field(min_length=1, max_length=64)


class ActivationRequestIn(ActivationIn):
    note: str = Field(default="", max_length=2000)


class DecisionIn(_In):
    note: str = Field(default="", max_length=2000)


class ActivationOut(BaseModel):
    id: int
    account_id: str
    service_code: str
    subject_kind: str
    subject_id: str
    mode: str
    status: str
    start: str | None
    end: str | None
    requested_by: str
    decided_by: str
    note: str


class BalanceOut(BaseModel):
    account_id: str
    logbit: str


class LedgerOut(BaseModel):
    account_id: str
    columns: list[str]
    rows: list[list[str]]


class CouponIn(_In):
    code: str = Field(min_length=1, max_length=64)


class CouponOut(BaseModel):
    account_id: str
    credited: str
    logbit: str


class PackOut(BaseModel):
    sku: str
    credits: str
    price: str


class CartItemIn(_In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(ge=1, le=100)


class CartIn(_In):
    items: list[CartItemIn] = Field(min_length=1, max_length=20)


class CartLineOut(BaseModel):
    sku: str
    quantity: int
    credits: str
    price: str
    tax: str
    total: str


class CartOut(BaseModel):
    lines: list[CartLineOut]
    total: str


class OrderOut(BaseModel):
    account_id: str
    order_id: str
    status: str
    total: str
    logbit: str
