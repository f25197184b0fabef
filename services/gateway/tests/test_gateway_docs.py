"""/docs and /redoc work offline: every script, stylesheet and icon comes from the app itself, never a CDN."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from qunzhu.services import entry

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


async def assert_offline(client: httpx.AsyncClient, page: str) -> list[str]:
    """The page loads, names only same-host URLs, and each of them answers with the right content type."""
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"cdn\.jsdelivr\.net|unpkg\.com|fonts\.googleapis\.com|validator\.swagger\.io", html)
    urls = referenced_urls(html)
    assert any(u.endswith(".js") for u in urls), urls
    base = str(client.base_url)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} references an outside URL: {url}"
        asset = await client.get(urljoin(base + page, url))
        assert asset.status_code == 200, url
        suffix = next(s for s in ASSET_TYPES if parts.path.endswith(s))
        assert ASSET_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000
    return urls


async def test_gateway_docs_load_everything_from_the_gateway(platform):
    swagger = await assert_offline(platform.client, "/docs")
    redoc = await assert_offline(platform.client, "/redoc")
    assert any(u.endswith("swagger-ui-bundle.js") for u in swagger)
    assert any(u.endswith("swagger-ui.css") for u in swagger)
    assert any(u.endswith("redoc.standalone.js") for u in redoc)
    # Both pages read the gateway's aggregated document, which covers the services' routes too.
    for page in ("/docs", "/redoc"):
        assert "/openapi.json" in (await platform.client.get(page)).text
    document = (await platform.client.get("/openapi.json")).json()
    assert any(path.startswith("/api/v1/membership/") for path in document["paths"])


@pytest.mark.parametrize("service", ["membership", "content", "engagement"])
async def test_each_service_serves_its_docs_offline(tmp_path, service):
    svc = entry(service)
    app = svc.create_app(svc.settings(data_dir=tmp_path))  # pages and assets need no running lifespan
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{service}") as client:
        await assert_offline(client, "/docs")
        await assert_offline(client, "/redoc")
