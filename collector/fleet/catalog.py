"""The product catalog: models a device may be registered as.

The room products are the supported list of the room-fleet seed; gateways
are the edge computers that run the Logbot agent. Models are stored by code
(``rally-bar``); the display name is accepted on input too.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.fleet.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Product:
    """One registrable model."""

    code: str
    name: str
    category: str  # "gateway" | "video_bar" | "camera" | "controller" | "accessory"


PRODUCTS: tuple[Product, ...] = (
    Product("gateway", "Logbot Edge Gateway", "gateway"),
    Product("gateway-lte", "Logbot Edge Gateway LTE", "gateway"),
    Product("rally-bar", "Rally Bar", "video_bar"),
    Product("rally-bar-mini", "Rally Bar Mini", "video_bar"),
    Product("rally-plus", "Rally Plus", "video_bar"),
    Product("rally", "Rally", "video_bar"),
    Product("rally-camera", "Rally Camera", "camera"),
    Product("meetup", "Meetup", "video_bar"),
    Product("tap", "Tap", "controller"),
    Product("tap-ip", "Tap IP", "controller"),
    Product("swytch", "Swytch", "accessory"),
    Product("roommate", "RoomMate", "gateway"),
    Product("scribe", "Scribe", "camera"),
)


def resolve_model(value: str) -> Product:
    """Find a product by code or display name (case-insensitive)."""
    wanted = value.strip().lower()
    for p in PRODUCTS:
        if wanted in (p.code, p.name.lower()):
            return p
    codes = ", ".join(p.code for p in PRODUCTS)
    raise InvalidInput(f"unknown model {value!r}; known models: {codes}")
