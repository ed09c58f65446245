"""The web portal: static HTML/CSS/JS served by the collector, no CDN.

``mount(app)`` serves ``static/`` at ``/portal/`` (index at ``/portal/``) and
redirects ``/`` there. The portal is a small vanilla-JS single page that
talks to the fleet API under ``/api/v1`` with a bearer token kept in
``sessionStorage``. ``format.js`` formats every date and number (account time
zone, browser locale), ``charts.js`` draws with uPlot, vendored under
``static/vendor/uplot/`` (the CSP allows only the collector's own files).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")


def mount(app: FastAPI, path: str = "/portal") -> None:
    """Serve the portal's static files at ``path`` and redirect ``/`` to it."""
    app.mount(path, StaticFiles(directory=STATIC_DIR, html=True), name="portal")

    async def root() -> RedirectResponse:
        return RedirectResponse(f"{path}/")

    app.add_api_route("/", root, include_in_schema=False)
