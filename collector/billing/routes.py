"""REST endpoints of billing under ``/api/v1`` (FastAPI router).

Mount with ``app.include_router(collector.billing.routes.router)`` and set
``app.state.billing_db_path`` (the shared SQLite file) and
``app.state.price_book`` (a loaded ``PriceBook``); optionally
``app.state.payment_provider`` (default: ``OfflinePaymentProvider``).
Every dependency can be overridden with ``app.dependency_overrides``:

* ``get_billing_db`` — yields a ``sqlite3.Connection`` (one per request);
* ``get_price_book``, ``get_payment_provider``, ``get_now`` (the clock);
* ``get_caller`` — **the authentication hook**. The default is an anonymous
  caller that may see every account but is *not* an operator, so operator
  endpoints (close, confirm orders, create coupons, approve activations,
  issue cards, debits) answer 403 until the app installs real auth.

Money is always a JSON string (``"-125"``, ``"136.64"``), never a number.
"""

from __future__ import annotations

from fastapi import APIRouter

from collector.billing import routes_money, routes_services
from collector.billing.api_deps import (
    Caller,
    get_billing_db,
    get_caller,
    get_now,
    get_payment_provider,
    get_price_book,
)

router = APIRouter(prefix="/api/v1", tags=["billing"])
router.include_router(routes_money.router)
router.include_router(routes_services.router)

__all__ = [
    "Caller",
    "get_billing_db",
    "get_caller",
    "get_now",
    "get_payment_provider",
    "get_price_book",
    "router",
]
