"""The fleet REST API: ``router`` for the app factory to mount under ``/api/v1``.

Mount with ``app.include_router(router, prefix="/api/v1")`` (what
``collector.api.app.create_app(extra_routers=[router])`` does) and attach a
:class:`~collector.fleet.context.FleetContext` with
``collector.fleet.context.install(app, ctx)``. Every operation except
sign-in and invitation acceptance needs a bearer token or API key, and every
object is checked against the caller's scope: objects of accounts the caller
cannot see answer 404, writes on read-only accounts answer 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from collector.fleet import (
    routes_access,
    routes_commands,
    routes_fleet,
    routes_operator,
    routes_orders,
    routes_portal,
    routes_services,
    routes_sso,
    routes_support,
)
from collector.fleet.schemas import ErrorOut

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A value is malformed or out of range"},
    401: {"model": ErrorOut, "description": "Missing, unknown, expired or revoked token"},
    403: {"model": ErrorOut, "description": "Read-only access, or operators only"},
    404: {"model": ErrorOut, "description": "Not found, or not in the caller's scope"},
    409: {"model": ErrorOut, "description": "Conflicts with the current state"},
    410: {"model": ErrorOut, "description": "Invitation expired, used or replaced"},
    503: {"model": ErrorOut, "description": "A component (billing) is not configured"},
}

router = APIRouter(responses=ERROR_RESPONSES)
router.include_router(routes_access.public)
router.include_router(routes_access.router)
router.include_router(routes_fleet.router)
router.include_router(routes_support.router)
router.include_router(routes_services.router)
router.include_router(routes_orders.router)
router.include_router(routes_portal.router)
router.include_router(routes_operator.router)
router.include_router(routes_commands.router)
router.include_router(routes_sso.public)
router.include_router(routes_sso.router)
