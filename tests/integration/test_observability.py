"""Dashboards and alerts against a real Prometheus scraping the real services.

Every Grafana panel query must parse and return data; every alert expression must parse and its rule
group load healthy; promtool accepts the configuration and the rules. The data comes from what people
really do, through the real gateway: an owner sets up a paid community (plan, chat connector, content
group), members pay with Stripe, chat (messages, 打卡 check-ins, bare links against the rules), a
broadcast falls due and reaches the groups through the operator's bot bridge, a forged webhook is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.actions import (
    bearer,
    bot_bridge,
    chat_message,
    create_community,
    create_plan,
    owner_token,
    pay_with_stripe,
    register_connector,
    register_content_group,
    schedule_broadcast,
    send_chat,
    signed_chat,
    webhook_secret,
)
from tests.integration.probes import eventually, metric, produce
from tests.integration.stack import GATEWAY_OPERATOR_KEY, ROOT, STRIPE_WEBHOOK_SECRET, Stack, free_port, operator_client
from tests.servers import record_process

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: Debian's prometheus package provides it; `bash deploy/local/prereqs.sh` "
                    "(run by make test) installs it, or: sudo apt-get install prometheus", pytrace=False)
    return path


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append((f"{dashboard['title']} / {panel['title']}", expr))
    return queries


def alert_rules() -> list[tuple[str, str]]:
    rules = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return rules


def test_promtool_accepts_config_and_rules() -> None:
    promtool = _binary("promtool")
    for args in (["check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
                 ["check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml")))]):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_generated_from_their_source() -> None:
    built = subprocess.run(
        ["python", "-c", "import sys; sys.path.insert(0, 'deploy/grafana'); import build_dashboards as b; "
         "import json; print(json.dumps({d.uid: d.render() for d in b.DASHBOARDS}))"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    expected = json.loads(built.stdout)
    on_disk = {json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in DASHBOARDS}
    assert on_disk == expected, "run: python deploy/grafana/build_dashboards.py"


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [stack[job["job_name"]].url.removeprefix("http://")]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [_binary("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
         f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    record_process(proc, "prometheus")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (directory / "prometheus.log").read_text()[-3000:]
            try:
                targets = httpx.get(url + "/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
                if len(targets) == 4 and all(t["health"] == "up" for t in targets):
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "Prometheus never scraped all four services"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@dataclass
class CommunityLife:
    community: str
    alice: str
    bob: str  # breaks the rules: three bare links
    conversions_before: float  # membership's paid conversions before the two payments
    bridge_received: list[dict]  # the bot actions the operator's bridge was sent


async def _community_life(stack: Stack, bridge_url: str) -> tuple[str, str, str]:
    """A paid community's first minutes, through the gateway as its owner, members and platforms reach it."""
    gateway = stack["gateway"].url
    async with httpx.AsyncClient(timeout=30) as client:
        community = await create_community(client, gateway, "/api/v1/communities")
        cid = community["id"]
        owner = bearer(owner_token(Path(stack["gateway"].env["GATEWAY_DATA_DIR"])))
        plan = await create_plan(client, gateway, cid, headers=owner, price_fen=99900)
        group, secret = f"g-{cid[:8]}", webhook_secret()
        connector = await register_connector(client, gateway, cid, headers={"X-API-Key": GATEWAY_OPERATOR_KEY},
                                             groups=[group], secret=secret, outbound_url=bridge_url)
        await register_content_group(client, gateway, cid, f"wechat:{group}", headers=owner)

        suffix = cid[:6]
        alice, bob = f"wxid_alice_{suffix}", f"wxid_bob_{suffix}"
        for payer in (alice, bob):  # Stripe announces Alice's payment twice (checkout, then payment intent)
            answers = await pay_with_stripe(client, gateway, secret=STRIPE_WEBHOOK_SECRET, community_id=cid,
                                            plan_id=plan["id"], payer_id=f"wechat:{payer}", amount_fen=99900,
                                            with_payment_intent=payer == alice)
            assert all(a.json() == {"status": "accepted", "events": 1} for a in answers), [a.text for a in answers]

        async def members() -> int:
            found = 0
            for person in (alice, bob):
                answer = await client.get(f"{gateway}/api/v1/membership/communities/{cid}/members/wechat:{person}",
                                          headers=owner)
                found += answer.status_code == 200
            return found

        await eventually(members, until=lambda n: n == 2, what="both payers are members")

        chat = [
            chat_message(group, alice, "今天的增长实验：把注册页按钮改成绿色，转化率提升了百分之三，明天换文案再试"),
            chat_message(group, alice, "打卡 第1天 读完增长黑客第二章"),
            chat_message(group, bob, "打卡 第1天 做了一个落地页的 A/B 实验"),
            chat_message(group, bob, "复盘：邀请奖励从十元改成二十元，拉新成本反而下降了，下周继续观察留存"),
        ]
        # Bob also shares bare links three times (群规: a link needs an introduction): warned, then removal
        # is recommended at the strike limit.
        chat += [chat_message(group, bob, f"https://example.com/{suffix}/{i}") for i in range(3)]
        for payload in chat:
            answer = await send_chat(client, gateway, connector["id"], secret, payload)
            assert answer.json()["status"] == "accepted", answer.text
        body, headers = signed_chat(webhook_secret(), chat_message(group, alice, "伪造的消息"))
        forged = await client.post(f"{gateway}/webhooks/chat/{connector['id']}", content=body, headers=headers)
        assert forged.status_code == 401

        await schedule_broadcast(client, gateway, cid, "今晚 20:30 嘉宾分享：增长实验怎么做复盘", headers=owner)
    return cid, f"wechat:{alice}", f"wechat:{bob}"


@pytest.fixture(scope="module")
def community_life(stack: Stack) -> Iterator[CommunityLife]:
    with bot_bridge() as (url, received):
        before = asyncio.run(metric(stack["membership"].url, "qunzhu_membership_paid_conversions_total"))
        cid, alice, bob = asyncio.run(_community_life(stack, url))
        yield CommunityLife(cid, alice, bob, before, received)


def _traffic(stack: Stack) -> None:
    """Some of everything the dashboards show: 2xx, 4xx, events produced and consumed, a dead letter."""
    async def run() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(5):
                await create_community(client, stack["membership"].url)
                await client.get(stack["gateway"].url + f"/api/v1/communities/{uuid.uuid4()}")
                await client.post(stack["membership"].url + "/communities", json={"name": ""})
        await produce(stack.kafka.bootstrap, "membership.events.v1", [(b"poison", b"{not json")])

    asyncio.run(run())


def test_community_life_reaches_every_service(stack: Stack, community_life: CommunityLife) -> None:
    """The traffic the dashboards are proven with did what a user would see: members paid, activity was
    scored, the rule breaker is up for removal, the broadcast reached the group through the bridge."""
    cid = community_life.community

    async def check() -> None:
        membership, engagement = stack["membership"].url, stack["engagement"].url
        async def applied() -> dict[str, float]:
            return {name: await metric(membership, f"qunzhu_membership_{name}_total")
                    for name in ("paid_conversions", "renewals", "payments_rejected")}

        wanted = community_life.conversions_before + 2
        await eventually(applied, until=lambda f: f["paid_conversions"] >= wanted, what="two paid conversions")
        async with operator_client(timeout=10) as client:
            async def recommended() -> list:
                answer = await client.get(f"{engagement}/communities/{cid}/removal-recommendations")
                return answer.json() if answer.is_success else []

            found = await eventually(recommended, until=lambda rs: any(
                r["person_id"] == community_life.bob and r["reason"] == "rule_violation" for r in rs),
                what="bob recommended for removal")
            assert all(r["person_id"] != community_life.alice for r in found)
        await eventually(lambda: metric(engagement, "qunzhu_engagement_activities_scored_total",
                                        rule_type="checkin"),
                         until=lambda n: n >= 2, what="check-ins scored")

    asyncio.run(check())
    received, deadline = community_life.bridge_received, time.monotonic() + 60
    while not any(a["data"].get("text", "").startswith("今晚 20:30") for a in received):
        assert time.monotonic() < deadline, f"the broadcast never reached the bridge: {received}"
        time.sleep(0.2)


def _query(url: str, expr: str) -> dict:
    response = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()


def test_every_panel_query_parses_and_returns_data(
    stack: Stack, prometheus: str, community_life: CommunityLife
) -> None:
    _traffic(stack)
    queries = panel_queries()
    assert len(queries) >= 10
    deadline = time.monotonic() + 60
    while True:
        empty = []
        for title, expr in queries:
            answer = _query(prometheus, expr)
            assert answer["status"] == "success", (title, expr, answer)
            if not answer["data"]["result"]:
                empty.append((title, expr))
        if not empty:
            break
        assert time.monotonic() < deadline, f"panels without data: {empty}"
        _traffic(stack)
        time.sleep(2)


def test_dashboards_and_alerts_only_name_metrics_that_exist(
    stack: Stack, prometheus: str, community_life: CommunityLife
) -> None:
    names = set(httpx.get(prometheus + "/api/v1/label/__name__/values", timeout=10).json()["data"])
    exprs = [expr for _, expr in panel_queries()] + [expr for _, expr in alert_rules()]
    for expr in exprs:
        for pattern in re.findall(r'__name__=~"([^"]+)"', expr):
            assert any(re.fullmatch(pattern, n) for n in names), f"no metric matches {pattern!r} in {expr}"
        for name in re.findall(r"\b(qunzhu_[a-z_]+)\b", expr):
            assert name in names, f"{name} does not exist (in {expr})"


def test_every_alert_expression_parses_and_its_group_loads(prometheus: str) -> None:
    for alert, expr in alert_rules():
        answer = _query(prometheus, expr)
        assert answer["status"] == "success", (alert, answer)
    deadline = time.monotonic() + 30
    while True:
        groups = httpx.get(prometheus + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
        if set(loaded) >= {name for name, _ in alert_rules()} and all(
            rule.get("health") in ("ok", "unknown") for rule in loaded.values()
        ):
            break
        assert time.monotonic() < deadline, loaded
        time.sleep(0.5)
    assert all(rule["health"] != "err" for rule in loaded.values())


def test_normal_payments_do_not_look_like_payments_without_a_membership_change(
    stack: Stack, prometheus: str, community_life: CommunityLife
) -> None:
    """Three payment.succeeded events (one a repeat of an applied payment) and two conversions: the alert's
    condition stays false once Prometheus has seen all of them processed."""
    (expr,) = [expr for name, expr in alert_rules() if name == "QunzhuPaymentsWithoutMembershipChange"]
    processed = ('sum(qunzhu_membership_events_consumed_total{topic="payments.events.v1", '
                 'type="payment.succeeded", outcome="processed"})')
    conversions = "sum(qunzhu_membership_paid_conversions_total)"

    def scraped(q: str) -> float:
        result = _query(prometheus, q)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    deadline = time.monotonic() + 60
    while scraped(processed) < 3 or scraped(conversions) < community_life.conversions_before + 2:
        assert time.monotonic() < deadline, "Prometheus never saw the three payment events and two conversions"
        time.sleep(0.5)
    answer = _query(prometheus, expr)
    assert answer["status"] == "success", answer
    assert answer["data"]["result"] == [], answer
