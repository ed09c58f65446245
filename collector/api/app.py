"""The FastAPI application factory (no import-time globals).

``create_app(settings, collector=..., extra_routers=[...])`` mounts the
ingest routes and any extra routers under ``/api/v1`` (OpenAPI at
``/api/v1/openapi.json``, docs at ``/api/v1/docs``) and Prometheus metrics at
``/metrics``. Without a running collector the lifespan opens the ledger itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector.api import errors, validation
from collector.api.deps import MetricsDep
from collector.api.headers import SecurityHeaders
from collector.api.routes import router as ingest_router
from collector.clock import SystemClock
from collector.config import Settings
from collector.metrics import Metrics
from collector.store.factory import make_ledger
from collector.store.ledger import Ledger

if TYPE_CHECKING:
    from collector.service import Collector

API_PREFIX = "/api/v1"
# Swagger UI's files (swagger-ui-dist, Apache-2.0), vendored: see swagger_ui/README.md.
SWAGGER_UI_DIR = Path(__file__).with_name("swagger_ui")


def create_app(
    settings: Settings | None = None,
    *,
    collector: Collector | None = None,
    ledger: Ledger | None = None,
    metrics: Metrics | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the API app; the ledger comes from the collector, ``ledger`` or settings."""
    settings = settings or (collector.settings if collector else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own: Ledger | None = None
        if collector is not None:
            # The collector opens its ledger in run(); the API reads through its own
            # connection so reads never queue behind a group commit.
            own = make_ledger(settings.ledger)
            await own.open()
            app.state.ledger = own
        elif ledger is not None:
            app.state.ledger = ledger
        else:
            own = make_ledger(settings.ledger)
            await own.open()
            app.state.ledger = own
        try:
            yield
        finally:
            if own is not None:
                await own.close()

    app = FastAPI(
        title="Logbot collector",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below from the wheel's own Swagger UI files
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders, docs_path=f"{API_PREFIX}/docs")
    validation.install(app)
    errors.install(app)  # the one HTTP mapping of the collector's error tree
    app.state.settings = settings
    app.state.collector = collector
    # The collector's one clock: the one that stamps what the routes compare with.
    app.state.clock = collector.clock if collector else SystemClock()
    app.state.metrics = metrics or (collector.metrics if collector else Metrics())
    app.include_router(ingest_router, prefix=API_PREFIX)
    for router in extra_routers:
        app.include_router(router, prefix=API_PREFIX)

    _mount_docs(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        # 503 while the broker link is down or unsubscribed, so a probe notices;
        # the body says why (the same line the log shows).
        r = settings.retention
        retention: dict[str, Any] = {
            "enabled": r.enabled and collector is not None and collector.retains,
            "horizon_days": {
                "usage_records": r.usage_days,
                "dead_letters": r.dead_letter_days,
                "status_transitions": r.transition_days,
                "export_queue": r.export_days,
            },
            "batch_rows": r.batch_rows,
            "interval_seconds": r.interval_seconds,
        }
        if collector is None:
            return JSONResponse({"status": "ok", "broker": None, "retention": retention})
        done = collector.retention_stats
        retention.update(
            last_run=done.last_run or None, deleted=done.deleted, failures=done.failures
        )
        broker = collector.health()
        # Connected is not enough: a refused SUBACK means nothing is received.
        ok = bool(broker.get("connected")) and bool(broker.get("subscribed"))
        body = {"status": "ok" if ok else "unavailable", "broker": broker, "retention": retention}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(m: MetricsDep) -> Response:
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _mount_docs(app: FastAPI) -> None:
    """Serve the interactive API docs with Swagger UI files shipped in the wheel.

    FastAPI's default page loads Swagger UI from a CDN, which an air-gapped
    operator (or a browser behind a strict proxy) cannot reach.
    """
    assets = f"{API_PREFIX}/docs-assets"
    app.mount(assets, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json",
            title="Logbot collector API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )
