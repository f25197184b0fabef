"""The owner's console at /console: static pages rendered in the browser by small vanilla JavaScript.

No build step and no second authorization path: the page is plain files from `static/` (ES modules, a
stylesheet, the zh-CN and English strings), and everything it shows it reads from the same public
`/api/v1/...` routes with the same Bearer token as any other client (kept in sessionStorage, never a
cookie: no cookie session, so there is nothing for CSRF to ride on). Every answer under /console carries a
strict Content-Security-Policy (no inline script or style, nothing from another host — except
telegram.org's login widget script and its oauth.telegram.org frame when a Telegram login is configured),
`X-Frame-Options: DENY`, `nosniff` and `no-referrer`. The routes are left out of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from gateway.auth.deps import StateDep
from gateway.settings import GatewaySettings
from qunzhu_common.errors import problem_response

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
}
TELEGRAM_SCRIPT_HOST = "https://telegram.org"
TELEGRAM_FRAME_HOST = "https://oauth.telegram.org"

router = APIRouter(include_in_schema=False)


def telegram_login(settings: GatewaySettings) -> str | None:
    """The login bot's username when the Telegram Login Widget can work here (username and token set)."""
    username = settings.telegram_login_bot_username
    return username if username and settings.telegram_login_bot_token.get_secret_value() else None


def security_headers(settings: GatewaySettings) -> dict[str, str]:
    """The headers of every /console answer; outside hosts only for a configured Telegram login."""
    telegram = telegram_login(settings) is not None
    script = "'self'" + (f" {TELEGRAM_SCRIPT_HOST}" if telegram else "")
    csp = (f"default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'")
    if telegram:
        csp += f"; frame-src {TELEGRAM_FRAME_HOST}"
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
        "Cross-Origin-Opener-Policy": "same-origin-allow-popups",  # the Telegram widget signs in in a popup
    }


def _file(path: Path, settings: GatewaySettings) -> Response:
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=security_headers(settings))


def _asset(asset: str) -> Path | None:
    """The file `asset` names inside STATIC_DIR, or None: no directory, no other suffix, nothing outside."""
    if not asset or asset.startswith("/") or "\\" in asset or "\x00" in asset:
        return None
    candidate = (STATIC_DIR / asset).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file() or candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate


@router.get("/console")
async def console_page(state: StateDep) -> Response:
    """The console's single page; it renders itself in the browser (hash routes: #/overview, #/people …)."""
    return _file(STATIC_DIR / "index.html", state.settings)


@router.get("/console/config.json")
async def console_config(state: StateDep) -> Response:
    """What the page cannot know by itself: whether (and as which bot) the Telegram login widget is offered."""
    return JSONResponse({"telegram_bot": telegram_login(state.settings)}, headers=security_headers(state.settings))


@router.get("/console/{asset:path}")
async def console_asset(asset: str, request: Request, state: StateDep) -> Response:
    """A file of the console (`/console/` is the page itself); 404 for anything else, never a listing."""
    if asset == "":
        return _file(STATIC_DIR / "index.html", state.settings)
    path = _asset(asset)
    if path is None:
        response = problem_response(status=404, title="Not found", slug="not-found",
                                    detail=f"the console has no file {request.url.path}")
        response.headers.update(security_headers(state.settings))
        return response
    return _file(path, state.settings)
