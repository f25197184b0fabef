"""Signing in to /console with the Telegram Login Widget, in Chromium: offered only when the gateway has a
Telegram login (bot token and username), the CSP then names telegram.org for the widget's script and nothing
else, and Telegram's redirect back (`data-auth-url` mode, signed with the bot token as Telegram signs it)
gives a person-wide token; the widget's script is answered by the test (no request leaves the machine)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.console.support import CHROMIUM_ARGS, chromium, start, stop
from tests.integration.stack import ROOT, free_port

BOT_TOKEN = "7000000001:AAtest-telegram-login-token"
BOT = "qunzhu_console_test_bot"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    chromium()
    data_dir = tmp_path_factory.mktemp("console-telegram")
    port = free_port()
    proc = start(data_dir, {"GATEWAY_TELEGRAM_LOGIN_BOT_TOKEN": BOT_TOKEN,
                             "GATEWAY_TELEGRAM_LOGIN_BOT_USERNAME": BOT}, port)
    url = f"http://127.0.0.1:{port}"
    try:
        token = subprocess.run([sys.executable, "-m", "qunzhu", "token", "--person", "telegram:42", "--data-dir",
                                str(data_dir)], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        created = httpx.post(f"{url}/api/v1/communities", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                             json={"name": "增长黑客", "positioning": "每天一个增长实验"})
        assert created.status_code == 201, created.text
        yield url, created.json()["id"]
    finally:
        stop(proc)


def widget_data(person: int) -> dict[str, str]:
    """What Telegram appends to the auth URL, signed as https://core.telegram.org/widgets/login says."""
    data = {"id": str(person), "first_name": "群主", "username": "owner42", "auth_date": str(int(time.time()))}
    check = "\n".join(f"{k}={data[k]}" for k in sorted(data))
    data["hash"] = hmac.new(hashlib.sha256(BOT_TOKEN.encode()).digest(), check.encode(), hashlib.sha256).hexdigest()
    return data


def test_the_telegram_widget_signs_the_owner_in(gateway: tuple[str, str]) -> None:
    url, community_id = gateway
    outside: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if urlsplit(r.url).hostname == "127.0.0.1" else outside.append(r.url))
        # Telegram's script is answered here: the machine has no way out, and the test needs none.
        page.route("https://telegram.org/**", lambda route: route.fulfill(
            status=200, content_type="text/javascript", body="/* telegram-widget.js stand-in */"))
        response = page.goto(f"{url}/console")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self' https://telegram.org;" in csp and "frame-src https://oauth.telegram.org" in csp
        assert "connect-src 'self';" in csp
        page.wait_for_selector("div.telegram script", state="attached")
        assert page.get_attribute("div.telegram script", "data-telegram-login") == BOT
        assert page.get_attribute("div.telegram script", "data-auth-url") == f"{url}/console/"

        # Telegram sends the person back to the auth URL with the signed data in the query.
        page.goto(f"{url}/console/?{urlencode(widget_data(42))}")
        page.wait_for_selector("a.community-link")
        assert page.inner_text("a.community-link") == "增长黑客"
        assert page.inner_text("#who") == "telegram:42"
        assert "hash=" not in page.url  # the login data is not left in the address bar or history
        page.click("a.community-link")
        page.wait_for_selector(f'#app[data-ready="#/c/{community_id}/overview"]', state="attached", timeout=60_000)

        # Forged widget data gets no token: back on the sign-in page.
        forged = {**widget_data(43), "id": "44"}
        page.evaluate("sessionStorage.clear()")
        page.goto(f"{url}/console/?{urlencode(forged)}")
        page.wait_for_selector("#token-form")
        assert page.evaluate("sessionStorage.length") == 0
        browser.close()
    assert outside == ["https://telegram.org/js/telegram-widget.js?22"] * len(outside) and outside
    assert [e for e in errors if "401" not in e] == []  # the forged login's 401 is the one expected error
