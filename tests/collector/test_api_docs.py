"""The API docs work offline: every asset the docs page names is served by the collector."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from collector.api.app import create_app
from tests.collector.helpers import settings_for


async def test_docs_page_loads_every_asset_from_the_collector_itself(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            page = await http.get("/api/v1/docs")
            assert page.status_code == 200
            html = page.text
            # No page asset comes from another host (a CDN is unreachable offline).
            assert not re.search(r"""(src|href)=["']https?://""", html), html
            assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", html)
            assert {a.rsplit("/", 1)[-1] for a in assets} >= {
                "swagger-ui-bundle.js",
                "swagger-ui.css",
            }
            for asset in assets:
                got = await http.get(asset)
                assert got.status_code == 200, asset
                assert len(got.content) > 100, asset
            js = next(a for a in assets if a.endswith(".js"))
            assert "SwaggerUIBundle" in (await http.get(js)).text
            assert "'self'" in page.headers["content-security-policy"]
            assert "https:" not in page.headers["content-security-policy"]
            assert (await http.get("/api/v1/openapi.json")).status_code == 200
