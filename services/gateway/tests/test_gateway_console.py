"""/console: static files with strict security headers, no directory listing, nothing outside its folder,
the canonical-path check in front of it, the Telegram widget's host allowed only when that login is set up,
and every file the page names served from the gateway itself (no outside host)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_gateway_paths_and_scopes import raw_request

from gateway.console import STATIC_DIR

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; object-src 'none'; base-uri 'none'")


def assert_secured(response) -> None:
    headers = response.headers
    assert headers["content-security-policy"].startswith(CSP), headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "unsafe-eval" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in headers  # no cookie session: nothing for CSRF to ride on


async def test_the_page_and_its_files_come_from_the_gateway_with_security_headers(gateway):
    for path in ("/console", "/console/"):
        page = await gateway.client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert_secured(page)
    html = page.text
    assert "<script>" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert "style=" not in html
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"'#]+)["']""", html)
    assert urls and all(u.startswith("/console/") for u in urls), urls
    for url in urls:
        asset = await gateway.client.get(url)
        assert asset.status_code == 200, url
        assert_secured(asset)
    module = await gateway.client.get("/console/js/main.js")
    assert module.headers["content-type"].startswith("text/javascript")
    # Every module the page imports exists, and none names another host.
    for path in STATIC_DIR.rglob("*.js"):
        text = path.read_text()
        for imported in re.findall(r"""from\s+["'](\.[^"']+)["']""", text):
            assert (path.parent / imported).resolve().is_file(), (path, imported)
        assert not re.search(r"https?://(?!telegram\.org/js/telegram-widget\.js|www\.w3\.org/2000/svg)", text), path
    assert "innerHTML" not in "".join(p.read_text() for p in STATIC_DIR.rglob("*.js"))  # text only, never markup


async def test_the_console_is_not_in_the_openapi_document(gateway):
    document = (await gateway.client.get("/openapi.json")).json()
    assert not [p for p in document["paths"] if p.startswith("/console")]


@pytest.mark.parametrize("path", [
    "/console/js", "/console/js/", "/console/i18n/", "/console/static", "/console/nothing.js",
    "/console/__init__.py", "/console/js/main.py",
])
async def test_no_listing_and_no_other_files(gateway, path):
    response = await gateway.client.get(path)
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/problem+json")
    assert_secured(response)


@pytest.mark.parametrize("raw", [
    "/console/../api/v1/communities", "/console/..%2f..%2fsettings.py", "/console/%2e%2e/app.py",
    "/console/js/..%5c..%5capp.py", "/console//etc/passwd", "/console/js/%2e%2e/%2e%2e/__init__.py",
    "/console/..\\..\\app.py", "/console/./index.html",
])
async def test_dot_segments_and_encoded_separators_are_refused_before_the_console(gateway, raw):
    # Sent as is (httpx would remove the dot segments): the canonical-path guard answers first.
    status, headers, content = await raw_request(gateway.app, "GET", raw)
    assert status == 400, (raw, status, content)
    assert json.loads(content)["type"].endswith("/non-canonical-path")


def test_a_path_resolving_outside_the_folder_is_no_file():
    from gateway.console import _asset

    assert _asset("index.html") == STATIC_DIR / "index.html"
    for asset in ("../__init__.py", "js/../../__init__.py", "/etc/passwd", "js", "", "a\x00.js", "..\\x.js"):
        assert _asset(asset) is None, asset


async def test_the_telegram_widget_is_offered_and_allowed_only_when_configured(standalone_gateway, tmp_path: Path):
    async with standalone_gateway(tmp_path / "off") as gw:
        assert (await gw.client.get("/console/config.json")).json() == {"telegram_bot": None}
        assert "telegram.org" not in (await gw.client.get("/console")).headers["content-security-policy"]
    # A username without the bot token cannot verify a login: not offered.
    async with standalone_gateway(tmp_path / "half", telegram_login_bot_username="qunzhu_login_bot") as gw:
        assert (await gw.client.get("/console/config.json")).json() == {"telegram_bot": None}
    async with standalone_gateway(tmp_path / "on", telegram_login_bot_username="qunzhu_login_bot",
                                  telegram_login_bot_token="123:abc") as gw:
        config = await gw.client.get("/console/config.json")
        assert config.json() == {"telegram_bot": "qunzhu_login_bot"}
        csp = (await gw.client.get("/console")).headers["content-security-policy"]
        assert "script-src 'self' https://telegram.org;" in csp and "frame-src https://oauth.telegram.org" in csp
        assert "connect-src 'self';" in csp  # the page still talks to nobody else


def test_both_languages_have_every_string_the_pages_use():
    zh = json.loads((STATIC_DIR / "i18n" / "zh-CN.json").read_text())
    en = json.loads((STATIC_DIR / "i18n" / "en.json").read_text())
    assert set(zh) == set(en)
    used = set()
    for path in STATIC_DIR.rglob("*.js"):
        used |= set(re.findall(r"""\bt\(["']([a-z_]+\.[a-z_0-9]+)["']""", path.read_text()))
    assert used and not used - set(zh), sorted(used - set(zh))
    assert all(re.search(r"[\u4e00-\u9fff]", v) or not re.search(r"[A-Za-z]{4,}", v) or k.startswith("graph.rank")
               for k, v in zh.items() if not k.startswith(("signin.token_help",))), "zh-CN strings are Chinese"
