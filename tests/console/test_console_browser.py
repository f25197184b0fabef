"""/console in Debian's Chromium (headless, driven by Playwright) against embedded mode filled by the simulator:
sign in with a development token, choose the community, every page shows the API's own figures, a removal
approved in the console is approved in the API, no console errors, no request to any host but 127.0.0.1,
the security headers on every console answer; a screenshot of each page is saved (the path is printed)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, sync_playwright

from qunzhu.simulator.drive import bot_bridge
from tests.console.support import CHROMIUM_ARGS, Filled, chromium

TZ = ZoneInfo("Asia/Shanghai")


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def flat(value: Any, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} → {"a.b": "1"}, as the settings page compares two versions of the rules."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items()
                for k, v in flat(item, f"{prefix}.{key}" if prefix else key).items()}
    return {prefix: json.dumps(value, ensure_ascii=False)}


def local(at: str) -> str:
    """As the page writes a time in zh-CN (Intl.DateTimeFormat, the community's zone)."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(TZ).strftime("%Y/%m/%d %H:%M")


class Console:
    def __init__(self, page: Page, filled: Filled) -> None:
        self.page, self.filled = page, filled
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.responses: list[Any] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: None if urlsplit(r.url).hostname == "127.0.0.1" or r.url.startswith("data:")
                else self.outside.append(r.url))
        page.on("response", lambda r: self.responses.append(r) if "/console" in r.url else None)

    def open(self, route: str) -> str:
        """Go to a hash route and wait until the page says it rendered it; its text."""
        self.page.goto(f"{self.filled.url}/console/#{route}")
        self.page.wait_for_selector(f'#app[data-ready="#{route}"]', state="attached", timeout=60_000)
        assert not self.page.query_selector("#app .error"), self.page.inner_text("#app")
        return self.page.inner_text("#app")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.filled.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def console(filled: Filled) -> Iterator[Console]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        yield Console(page, filled)
        browser.close()
    print(f"\nconsole screenshots: {filled.screenshots}")


def c_route(filled: Filled, page: str) -> str:
    return f"/c/{quote(filled.community_id, safe='')}/{page}"


def test_sign_in_with_a_development_token_and_choose_the_community(console: Console, filled: Filled) -> None:
    response = console.page.goto(f"{filled.url}/console")
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'; style-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    console.page.wait_for_selector("#token-form")
    console.shot("0-sign-in")
    console.page.fill("#dev-token", filled.owner_token)
    console.page.click("#token-form button[type=submit]")
    console.page.wait_for_selector("a.community-link")
    community = filled.api("GET", f"/api/v1/communities/{filled.community_id}")
    assert console.page.inner_text("a.community-link") == community["name"]
    console.page.click("a.community-link")
    console.page.wait_for_selector(f'#app[data-ready="#{c_route(filled, "overview")}"]', state="attached",
                                   timeout=60_000)
    # The token lives in sessionStorage only: no cookie at all.
    assert console.page.context.cookies() == []
    assert console.page.evaluate("sessionStorage.length") == 1


def test_overview_shows_members_levels_revenue_and_group_health(console: Console, filled: Filled) -> None:
    text = console.open(c_route(filled, "overview"))
    cid = filled.community_id
    stats = filled.api("GET", f"/api/v1/membership/communities/{cid}/member-stats")
    ledger = filled.api("GET", f"/api/v1/membership/communities/{cid}/ledger", params={"limit": 1})
    money = next(s for s in ledger["summary"] if s["currency"] == "CNY")
    for fen in ("captured_fen", "refunded_fen", "platform_fee_fen", "owner_fen", "net_fen"):
        assert yuan(money[fen]) in text, (fen, yuan(money[fen]))
    assert money["captured_fen"] > 0 and money["refunded_fen"] > 0
    stat_values = console.page.locator(".stat-value").all_inner_texts()
    assert str(stats["live"]) in stat_values and str(stats["joined"]) in stat_values and stats["joined"] > 0
    assert console.page.locator(".chart .series polyline").count() == 3  # captured, refunded, owner's share
    health = filled.api("GET", f"/api/v1/engagement/communities/{cid}/groups/health")
    rows = console.page.locator("table.health tbody tr")
    assert rows.count() == len(health) == 2
    for group in health:
        assert group["group_id"] in text and str(group["messages_7d"]) in text
    assert console.page.locator("table.health svg.spark").count() == 4  # messages and active ratio per group
    assert "Lv1" in text and "有效" in text  # levels and statuses, in Chinese first
    console.shot("1-overview")


def test_people_leaderboard_member_page_and_removal_approved_in_the_api(console: Console, filled: Filled) -> None:
    cid = filled.community_id
    text = console.open(c_route(filled, "people"))
    board = filled.api("GET", f"/api/v1/engagement/communities/{cid}/leaderboard", params={"window": "7d", "limit": 5})
    first = board["data"][0]
    row = console.page.locator("table.leaderboard tbody tr").first.inner_text()
    assert first["person_id"] in row and str(first["points"]) in row
    console.page.click("button[data-window=all]")
    console.page.wait_for_selector(".board[data-window=all]")
    lurkers = filled.api("GET", f"/api/v1/engagement/communities/{cid}/lurkers")
    assert lurkers and lurkers[0]["person_id"] in text
    pending = filled.api("GET", f"/api/v1/membership/communities/{cid}/removal-reviews", params={"state": "pending"})
    assert pending, "the simulated community has removals to decide"
    assert console.page.locator("table.reviews tbody tr").count() == len(pending)
    # B-group candidates of the first group for the second, as engagement ranks them.
    groups = [g["group_id"] for g in filled.api("GET", f"/api/v1/engagement/communities/{cid}/groups/health")]
    console.page.select_option("#ab-form select[name=group_id]", groups[0])
    console.page.select_option("#ab-form select[name=core_group_id]", groups[1])
    console.page.click("#ab-form button[type=submit]")
    console.page.wait_for_selector("table.ab tbody tr")
    candidates = filled.api("GET", f"/api/v1/engagement/communities/{cid}/groups/{groups[0]}/ab-candidates",
                            params={"core_group_id": groups[1], "limit": 10})
    shown = console.page.locator("table.ab tbody tr")
    assert candidates and shown.count() == len(candidates)
    assert candidates[0]["person_id"] in shown.first.inner_text()
    assert shown.first.locator("span.reason").get_attribute("title") == candidates[0]["reason"]
    # Promote the first: membership seats them in the B group.
    def seated() -> int:
        groups_now = filled.api("GET", f"/api/v1/membership/communities/{cid}/groups")
        return next(g["member_count"] for g in groups_now if f"{g['platform']}:{g['external_id']}" == groups[1])

    before = seated()
    shown.first.locator("button[data-promote]").click()
    console.page.wait_for_selector("table.ab tbody tr:first-child .form-note:has-text('已安排进 B 群')")
    assert seated() == before + 1
    console.shot("2-people")

    target = pending[0]
    console.page.click(f'button[data-action=approve][data-member="{target["member_id"]}"]')
    console.page.locator(f'button[data-action=approve][data-member="{target["member_id"]}"]').wait_for(
        state="detached", timeout=30_000)
    reviews = filled.api("GET", f"/api/v1/membership/communities/{cid}/removal-reviews", params={"state": "approved"})
    decided = next(r for r in reviews if r["id"] == target["id"])
    assert decided["state"] == "approved" and decided["decided_by"] == filled.owner_id
    member = filled.api("GET", f"/api/v1/membership/communities/{cid}/members/{target['member_id']}")
    assert member["status"] == "removed", member

    # A member who handed in homework: the member page shows ledger, level, streak and homework.
    submitted = {}
    base = f"/api/v1/engagement/communities/{cid}/assignments"
    for assignment in filled.api("GET", base):
        for sub in filled.api("GET", f"{base}/{assignment['id']}/submissions"):
            submitted.setdefault(sub["person_id"], []).append(sub)
    person = next(r["person_id"] for r in board["data"] + filled.api(
        "GET", f"/api/v1/engagement/communities/{cid}/leaderboard", params={"window": "all", "limit": 50})["data"]
        if r["person_id"] in submitted)
    text = console.open(f"{c_route(filled, 'people')}/{quote(person, safe='')}")
    points = filled.api("GET", f"/api/v1/engagement/communities/{cid}/members/{person}/points", params={"limit": 200})
    standing = filled.api("GET", f"/api/v1/engagement/communities/{cid}/members/{person}/standing")
    assert str(points["total_points"]) in text and f"Lv{standing['level']}" in text
    ledger_rows = console.page.locator("table.ledger tbody tr")
    assert ledger_rows.count() == len(points["entries"]) > 0
    assert points["entries"][0]["rule"] in ledger_rows.first.inner_text()  # the rule behind each entry
    assert console.page.locator("table.homework tbody tr").count() == len(submitted[person])
    graded = [x for x in submitted[person] if x["grade"] is not None]
    assert all(f"{x['grade']}/5" in text for x in graded)
    console.shot("3-member")


def test_key_people_graph_is_drawn_from_the_api(console: Console, filled: Filled) -> None:
    console.open(c_route(filled, "graph"))
    key = filled.api("GET", f"/api/v1/engagement/communities/{filled.community_id}/key-people")
    assert key["graph"]["nodes"], key
    assert console.page.locator("svg.graph g.node").count() == len(key["graph"]["nodes"])
    assert console.page.locator("svg.graph line.edge").count() == len(key["graph"]["edges"])
    assert console.page.locator("svg.graph g.node.connector").count() == len(
        {p["person_id"] for p in key["connectors"]} & {n["id"] for n in key["graph"]["nodes"]})
    assert len({c for n in key["graph"]["nodes"] for c in [n["cluster"]]}) > 1
    # Each with its one-line reason, in Chinese from the service's own figures (its words in the tooltip).
    for table, people in (("leaders", key["opinion_leaders"]), ("connectors", key["connectors"])):
        rows = console.page.locator(f"table.{table} tbody tr")
        assert rows.count() == len(people)
        for i, person in enumerate(people[:3]):
            row = rows.nth(i)
            assert person["person_id"] in row.inner_text()
            shown = row.locator("span.reason")
            assert shown.get_attribute("title") == person["reason"]
            figures = re.findall(r"\d+(?:\.\d+)?%?", person["reason"])
            assert all(f in shown.inner_text() for f in figures) and re.search(r"[\u4e00-\u9fff]", shown.inner_text())
    console.shot("4-key-people")


def test_content_schedules_sessions_and_broadcasts_in_the_communitys_zone(console: Console, filled: Filled) -> None:
    cid = filled.community_id
    text = console.open(c_route(filled, "content"))
    schedule = next(s for s in filled.api("GET", f"/api/v1/content/communities/{cid}/schedules")
                    if s["title"] == "每周复盘")
    assert "每周复盘" in text and local(schedule["upcoming"][0]) in text
    assert local(schedule["upcoming"][0]).endswith("20:30")  # 20:30 in Shanghai, as the rule says
    session = filled.api("GET", f"/api/v1/content/communities/{cid}/sessions")["data"][0]
    assert session["topic"] in text and local(session["starts_at"]) in text
    for notice in session["notices"]:
        assert local(notice["due_at"]) in text
    assert "周五晚八点嘉宾分享" in text
    assert console.page.locator("table.deliveries tbody tr").count() >= 1
    console.shot("5-content")


def test_settings_plans_rules_and_connectors_with_secrets_write_only(console: Console, filled: Filled) -> None:
    cid = filled.community_id
    text = console.open(c_route(filled, "settings"))
    for plan in filled.api("GET", f"/api/v1/membership/communities/{cid}/plans"):
        assert plan["name"] in text and yuan(plan["price_fen"]) in text
    rules = filled.api("GET", f"/api/v1/engagement/communities/{cid}/rules")
    assert f"v{rules['current']['version']}" in text
    latest = max(v["version"] for v in rules["versions"])
    assert f"v{latest - 1} → v{latest}" in text
    before, after = (flat(v["rules"]) for v in sorted(rules["versions"], key=lambda v: v["version"])[-2:])
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    diff_rows = console.page.locator("table.diff tbody tr").all_inner_texts()
    assert [row.split("\t")[0] for row in diff_rows] == changed and "cooldown_s" in changed
    assert "cooldown_s\t60\t90" in diff_rows
    # A plan withdrawn and offered again from the page, as the API then says.
    plan = filled.api("GET", f"/api/v1/membership/communities/{cid}/plans")[0]
    toggle = console.page.locator(f'button[data-plan="{plan["id"]}"]')
    toggle.click()
    console.page.wait_for_selector(f'button[data-plan="{plan["id"]}"]:has-text("上架")')
    listed = filled.api("GET", f"/api/v1/membership/communities/{cid}/plans", params={"include_inactive": "true"})
    assert next(p for p in listed if p["id"] == plan["id"])["active"] is False
    toggle.click()
    console.page.wait_for_selector(f'button[data-plan="{plan["id"]}"]:has-text("停售")')
    assert filled.api("GET", f"/api/v1/membership/communities/{cid}/plans")[0]["active"] is True
    connector = filled.api("GET", f"/api/v1/communities/{cid}/connectors")["data"][0]
    assert connector["name"] in text and all(name in text for name in connector["secrets_set"])
    assert not re.search(r"whsec_[A-Za-z0-9+/=_-]{8}", console.page.content())  # names of secrets, never a value
    # The policies are changed from the page: one PATCH of what changed, read back from the API.
    console.page.select_option("#policy-form select[name=unpaid_join_policy]", "remove")
    console.page.fill("#policy-form input[name=reading_limit_days]", "30")
    console.page.click("#policy-form button[type=submit]")
    console.page.wait_for_selector("#policy-form .form-note:has-text('已保存')")
    settings = filled.api("GET", f"/api/v1/membership/communities/{cid}/settings")
    assert (settings["unpaid_join_policy"], settings["reading_limit_days"]) == ("remove", 30)
    console.shot("6-settings")


def test_a_secret_rotated_in_the_console_then_a_one_time_code_sign_in(console: Console, filled: Filled) -> None:
    """The connector's secrets are replaced from the settings page (write-only: the box empties, nothing is read
    back), pointing the bot bridge at one this test runs; then the owner signs out and in again with the
    one-time code that bridge receives: a token for this community only."""
    cid = filled.community_id
    with bot_bridge() as bridge:
        console.open(c_route(filled, "settings"))
        secrets = {"signing_secrets": ["whsec_" + base64.b64encode(os.urandom(24)).decode()],
                   "outbound_url": bridge.url, "outbound_secret": bridge.secret}
        console.page.fill(".secret-form textarea", json.dumps(secrets))
        console.page.click(".secret-form button[type=submit]")
        console.page.wait_for_selector(".secret-form .form-note:has-text('已保存')")
        assert console.page.input_value(".secret-form textarea") == ""
        assert secrets["signing_secrets"][0] not in console.page.content()
        connector = filled.api("GET", f"/api/v1/communities/{cid}/connectors")["data"][0]
        assert "outbound_url" in connector["secrets_set"] and bridge.url not in json.dumps(connector)

        console.page.click("#signout")
        console.page.wait_for_selector("#code-form")
        console.page.fill("#code-form input[name=community_id]", cid)
        console.page.fill("#code-form input[name=member_id]", filled.owner_id)
        console.page.click("#code-form button[type=submit]")
        console.page.wait_for_selector("#code-form .form-note:has-text('验证码')")
        deadline = time.monotonic() + 30
        code = None
        while code is None and time.monotonic() < deadline:
            for action in bridge.actions:
                found = re.search(r"验证码：(\d{6})", action.get("text", ""))
                if action.get("group_id") == filled.owner_id and found:
                    code = found.group(1)
            time.sleep(0.2)
        assert code, bridge.actions
        console.page.fill("#code-form input[name=code]", code)
        console.page.click("#code-form button.secondary")
        console.page.wait_for_selector("a.community-link")
        assert console.page.locator("a.community-link").count() == 1  # a code's token acts in its community only
        token = console.page.evaluate("Object.values(sessionStorage)[0]")
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["sub"] == filled.owner_id and claims["qz_community"] == cid
        console.page.click("a.community-link")
        console.page.wait_for_selector(f'#app[data-ready="#{c_route(filled, "overview")}"]', state="attached",
                                       timeout=60_000)


def test_english_is_one_click_away(console: Console, filled: Filled) -> None:
    console.open(c_route(filled, "overview"))
    console.page.click("#lang")
    console.page.wait_for_selector("#nav a[data-page=overview]:has-text('Overview')")
    console.page.wait_for_selector(f'#app[data-ready="#{c_route(filled, "overview")}"]', state="attached")
    text = console.page.inner_text("#app")
    assert "Live members" in text and "Captured" in text
    console.shot("7-overview-en")
    console.page.click("#lang")  # back to zh-CN for whoever comes next
    console.page.wait_for_selector("#nav a[data-page=overview]:has-text('概览')")


def test_money_times_streaks_and_diffs_as_the_page_computes_them(console: Console, filled: Filled) -> None:
    """The page's own small functions, run in the page: yuan from fen, a time in a community's zone whatever
    the browser's, check-in streaks, the rules diff, a reason rewritten in Chinese."""
    console.open(c_route(filled, "overview"))
    got = console.page.evaluate("""async () => {
      const i18n = await import('/console/js/i18n.js');
      const people = await import('/console/js/pages/people.js');
      const settings = await import('/console/js/pages/settings.js');
      const reasons = await import('/console/js/reasons.js');
      const zone = i18n.i18n.timeZone;
      i18n.i18n.timeZone = 'America/New_York';
      const ny = i18n.dateTime('2026-12-07T12:00:00Z');
      i18n.i18n.timeZone = zone;
      return {
        yuan: [i18n.yuan(0), i18n.yuan(5), i18n.yuan(123456), i18n.yuan(-39800)],
        shanghai: i18n.dateTime('2026-12-07T12:00:00Z'), ny,
        streaks: people.streaks(['2026-12-01', '2026-12-02', '2026-12-03', '2026-12-05', '2026-12-06']),
        diff: settings.diff({a: 1, b: {c: [1, 2]}, d: 'x'}, {a: 1, b: {c: [1, 3]}, e: true}),
        reason: reasons.reasonText('links 3 clusters; on 12.5% of shortest paths (betweenness)'),
        other: reasons.reasonText('something new'),
      };
    }""")
    assert got["yuan"] == ["¥0.00", "¥0.05", "¥1,234.56", "-¥398.00"]
    assert got["shanghai"] == "2026/12/07 20:00" and got["ny"] == "2026/12/07 07:00"
    assert got["streaks"] == {"current": 2, "longest": 3, "days": 5, "last": "2026-12-06"}
    assert got["diff"] == [{"key": "b.c", "before": "[1,2]", "after": "[1,3]"},
                           {"key": "d", "before": '"x"', "after": "—"}, {"key": "e", "before": "—", "after": "true"}]
    assert got["reason"] == "连接 3 个圈子；位于 12.5% 的最短路径上（中介度）" and got["other"] == "something new"


def test_no_console_errors_no_outside_requests_and_every_console_answer_secured(console: Console,
                                                                                filled: Filled) -> None:
    assert console.errors == []
    assert console.outside == []
    answers = [r for r in console.responses if urlsplit(r.url).path.startswith("/console")]
    assert len(answers) > 10
    for answer in answers:
        headers = answer.headers
        assert headers.get("x-frame-options") == "DENY", answer.url
        assert "default-src 'self'" in headers.get("content-security-policy", ""), answer.url
    # The canonical-path guard stands in front of the console, over real HTTP too.
    parts = urlsplit(filled.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    for raw in ("/console/../api/v1/communities", "/console/%2e%2e/%2e%2e/pyproject.toml"):
        connection.request("GET", raw)
        response = connection.getresponse()
        assert response.status == 400, (raw, response.status)
        response.read()
    connection.request("GET", "/console/js/")
    response = connection.getresponse()
    assert response.status == 404 and b"main.js" not in response.read()  # no listing
    connection.close()
    shots = sorted(p.name for p in filled.screenshots.glob("*.png"))
    assert len(shots) == 8, shots
    assert re.search(r"1-overview\.png", " ".join(shots))
