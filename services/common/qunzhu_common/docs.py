"""API docs that work offline: Swagger UI and ReDoc served from the app itself, never from a CDN.

FastAPI's default /docs and /redoc load their JavaScript and CSS from cdn.jsdelivr.net; without internet,
or where that CDN is blocked or slow (mainland China), the page stays blank. The `fastapi-offline` wheel
bundles both (swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, a favicon); they are mounted under
`DOCS_ASSETS_PATH` and the two pages point there. Swagger UI's online validator badge (an image from
validator.swagger.io) and ReDoc's Google Fonts are turned off, so a docs page makes no request off the host.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS_PATH = "/static/docs"
_ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))


def install_offline_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve /docs and /redoc with local assets; the app must be built with docs_url=None, redoc_url=None.

    Both pages read `app.openapi_url` at request time, so an app that replaces its /openapi.json route
    (the gateway's aggregated document) is what they show.
    """
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def assets(request: Request) -> str:
        return f"{request.scope.get('root_path', '').rstrip('/')}{DOCS_ASSETS_PATH}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '').rstrip('/')}{app.openapi_url}"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = assets(request)
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth2_redirect_url,
            swagger_js_url=f"{base}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}/swagger-ui.css",
            swagger_favicon_url=f"{base}/favicon.png",
            # No badge image fetched from validator.swagger.io (an outside request, and it leaks the URL).
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = assets(request)
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}/redoc.standalone.js",
            redoc_favicon_url=f"{base}/favicon.png",
            with_google_fonts=False,
        )
