"""Bot actions out, against a real HTTP server on loopback playing Telegram, WeCom and a bot bridge."""

from __future__ import annotations

import base64
import json
import os

import pytest

from gateway.webhooks.verify import verify_standard
from qunzhu_common.events.contracts.chat import ChatActionRequested

COMMUNITY = "c-actions"
BOT_TOKEN = "777:bot-token-for-actions"


@pytest.fixture
async def gw(tmp_path, standalone_gateway, fake_platform):
    async with standalone_gateway(
        tmp_path, telegram_api_base=fake_platform.url, wecom_robot_base=fake_platform.url,
        action_max_attempts=3, action_backoff_s=0.01, action_group_burst=20, action_group_rate_per_s=50,
        bridge_allow_http=True,
    ) as gateway:
        yield gateway


async def connector(gw, admin_headers, platform: str, secrets: dict, groups: list[str]) -> str:
    response = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": platform, "groups": groups, "secrets": secrets})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def request_action(gw, publish, **fields) -> None:
    """chat.action.requested on the bus, as membership/content/engagement would send it."""
    await publish(gw.app, "chat.action.requested", ChatActionRequested(requested_by="engagement", **fields), COMMUNITY)


@pytest.fixture
def ask(gw, publish):
    async def ask(**fields) -> None:
        await request_action(gw, publish, **fields)

    return ask


async def settled(gw, outbox_events, eventually, count: int) -> list:
    async def done():
        events = [e for e in await outbox_events(gw.app) if e.type.startswith("chat.action.")]
        return events if len(events) >= count else None

    return await eventually(done, what=f"{count} settled actions")


async def test_telegram_send_and_remove_once_each(ask, gw, fake_platform, admin_headers, outbox_events, eventually,
                                                  metric_value):
    await connector(gw, admin_headers, "telegram", {"bot_token": BOT_TOKEN, "secret_token": "s" * 20}, ["-1001"])

    await ask(action_id="a-1", action="send_message", group_id="telegram:-1001", text="明早 11:00 见")
    await ask(action_id="a-2", action="remove_member", group_id="telegram:-1001",
                         member_id="telegram:55", reason="两个月积分最低")
    await ask(action_id="a-1", action="send_message", group_id="telegram:-1001", text="明早 11:00 见")

    events = await settled(gw, outbox_events, eventually, 2)
    assert [(e.type, e.data["action_id"], e.data["attempts"]) for e in events] == [
        ("chat.action.completed", "a-1", 1), ("chat.action.completed", "a-2", 1)]
    assert events[0].community_id == COMMUNITY
    (send,) = fake_platform.calls("/sendMessage")
    (ban,) = fake_platform.calls("/banChatMember")
    assert send["path"] == f"/bot{BOT_TOKEN}/sendMessage"
    assert json.loads(send["body"]) == {"chat_id": "-1001", "text": "明早 11:00 见"}
    assert json.loads(ban["body"]) == {"chat_id": "-1001", "user_id": "55"}
    # The repeated action id was consumed but not carried out again.
    await eventually(lambda: metric_value(gw.app, "qunzhu_gateway_events_consumed_total", topic="chat.actions.v1",
                                          type="chat.action.requested", outcome="processed") == 3,
                     what="the repeat consumed")
    assert len(fake_platform.calls("/sendMessage")) == 1
    assert metric_value(gw.app, "qunzhu_gateway_bot_actions_total", platform="telegram", action="send_message",
                        outcome="completed") == 1


async def test_retries_with_backoff_then_dead_letter(ask, gw, fake_platform, admin_headers, outbox_events, eventually,
                                                     metric_value):
    await connector(gw, admin_headers, "telegram", {"bot_token": BOT_TOKEN, "secret_token": "s" * 20}, ["-1001"])
    fake_platform.script.extend([(502, {}), (429, {"ok": False, "error_code": 429, "parameters": {}})])

    await ask(action_id="flaky", action="send_message", group_id="telegram:-1001", text="hi")
    (completed,) = await settled(gw, outbox_events, eventually, 1)
    assert (completed.type, completed.data["attempts"]) == ("chat.action.completed", 3)

    fake_platform.script.extend([(500, {})] * 3)
    await ask(action_id="doomed", action="send_message", group_id="telegram:-1001", text="hi")
    events = await settled(gw, outbox_events, eventually, 2)
    assert (events[1].type, events[1].data["action_id"], events[1].data["attempts"]) == (
        "chat.action.failed", "doomed", 3)
    assert "500" in events[1].data["error"]
    assert len(fake_platform.calls("/sendMessage")) == 6
    # A refusal (400) is final at once: no retry.
    fake_platform.script.append((400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}))
    await ask(action_id="refused", action="send_message", group_id="telegram:-1001", text="hi")
    events = await settled(gw, outbox_events, eventually, 3)
    assert (events[2].data["attempts"], events[2].data["error"]) == (
        1, "telegram sendMessage: Bad Request: chat not found")

    dead = await gw.client.get("/api/v1/ops/bot-actions", params={"status": "failed"}, headers=admin_headers)
    assert {a["action_id"] for a in dead.json()["data"]} == {"doomed", "refused"}
    assert metric_value(gw.app, "qunzhu_gateway_bot_actions_total", platform="telegram", action="send_message",
                        outcome="retried") == 4


async def test_wecom_robot_and_signed_bridge(ask, gw, fake_platform, admin_headers, outbox_events, eventually):
    await connector(gw, admin_headers, "wecom", {
        "token": "t", "encoding_aes_key": base64.b64encode(os.urandom(32)).decode().rstrip("="),
        "robot_keys": {"wrChat": "robot-key-1"}}, ["wrChat"])
    bridge_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    await connector(gw, admin_headers, "generic", {
        "signing_secrets": ["whsec_" + base64.b64encode(os.urandom(24)).decode()],
        "outbound_url": fake_platform.url + "/bridge", "outbound_secret": bridge_secret}, ["qq-group-9"])

    await ask(action_id="w-1", action="announce", group_id="wecom:wrChat", text="周日 20:30 嘉宾分享")
    await ask(action_id="w-2", action="remove_member", group_id="wecom:wrChat", member_id="wecom:x")
    await ask(action_id="b-1", action="relay", group_id="generic:qq-group-9", text="直播第 3 段")

    events = await settled(gw, outbox_events, eventually, 3)
    by_id = {e.data["action_id"]: e for e in events}
    assert by_id["w-1"].type == "chat.action.completed"
    assert by_id["w-2"].type == "chat.action.failed" and "cannot remove" in by_id["w-2"].data["error"]
    assert by_id["b-1"].type == "chat.action.completed"
    (robot,) = fake_platform.calls("/cgi-bin/webhook/send")
    assert robot["query"] == {"key": "robot-key-1"}
    assert json.loads(robot["body"]) == {
        "msgtype": "text", "text": {"content": "周日 20:30 嘉宾分享", "mentioned_list": ["@all"]}}
    (bridged,) = fake_platform.calls("/bridge")
    assert bridged["headers"]["idempotency-key"] == "b-1"
    assert verify_standard(bridged["headers"], bridged["body"], [bridge_secret], tolerance_s=300) == "b-1"
    assert json.loads(bridged["body"])["data"]["text"] == "直播第 3 段"


async def test_a_failing_bridge_is_called_exactly_the_one_retry_budget(
    ask, gw, fake_platform, admin_headers, outbox_events, eventually, metric_value
):
    # Content sends a broadcast group's command once and waits for this final answer: the gateway's
    # action_max_attempts (3 here) is the whole budget of bridge calls for a failing group.
    await connector(gw, admin_headers, "generic", {
        "signing_secrets": ["whsec_" + base64.b64encode(os.urandom(24)).decode()],
        "outbound_url": fake_platform.url + "/bridge",
        "outbound_secret": "whsec_" + base64.b64encode(os.urandom(24)).decode()}, ["qq-group-9"])
    fake_platform.script.extend([(500, {})] * 10)

    await ask(action_id="content:b-1:0:1", action="send_message", group_id="generic:qq-group-9", text="福利夜")
    (failed,) = await settled(gw, outbox_events, eventually, 1)
    assert (failed.type, failed.data["attempts"], failed.data["error"]) == ("chat.action.failed", 3, "bridge: HTTP 500")
    assert len(fake_platform.calls("/bridge")) == gw.app.state.gateway.settings.action_max_attempts == 3
    assert {c["headers"]["idempotency-key"] for c in fake_platform.calls("/bridge")} == {"content:b-1:0:1"}
    assert await gw.app.state.action_worker.run_once() == 0  # settled: never called again
    assert len(fake_platform.calls("/bridge")) == 3
    assert len(fake_platform.script) == 7


async def test_per_group_rate_limit_spaces_actions_in_order(
    publish, tmp_path, standalone_gateway, fake_platform, admin_headers, outbox_events, eventually
):
    async with standalone_gateway(tmp_path, telegram_api_base=fake_platform.url, action_group_burst=1,
                                  action_group_rate_per_s=10) as gw:
        await connector(gw, admin_headers, "telegram", {"bot_token": BOT_TOKEN, "secret_token": "s" * 20}, ["-1001"])
        for i in range(4):
            await request_action(gw, publish, action_id=f"r-{i}", action="send_message",
                                 group_id="telegram:-1001", text=f"第 {i} 条")
        await settled(gw, outbox_events, eventually, 4)

    calls = fake_platform.calls("/sendMessage")
    assert [json.loads(c["body"])["text"] for c in calls] == [f"第 {i} 条" for i in range(4)]
    # One token a tenth of a second after the first: four actions need at least 0.3 s.
    assert calls[-1]["at"] - calls[0]["at"] >= 0.25


async def test_a_plain_http_bridge_is_refused_unless_allowed(tmp_path):
    import httpx

    from gateway.actions.platforms import bridge
    from gateway.settings import GatewaySettings
    from gateway.webhooks.adapters import ConnectorView

    connector = ConnectorView(id="c", community_id="c-1", platform="generic", identity_platform="qq", groups={},
                              secret_token_hash=None,
                              secrets={"outbound_url": "http://10.0.0.7/internal", "outbound_secret": "whsec_AAAA"})
    request = {"action_id": "x", "action": "send_message", "group_id": "qq:1", "text": "hi"}

    def never(_request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may leave")

    async with httpx.AsyncClient(transport=httpx.MockTransport(never)) as client:
        result = await bridge(client, GatewaySettings(data_dir=tmp_path), connector, request)
    assert (result.outcome, result.error) == ("failed", "the bridge URL must be https")


async def test_a_rate_limited_backlog_in_one_group_does_not_hold_up_another_group(
    publish, tmp_path, standalone_gateway, fake_platform, admin_headers, outbox_events, eventually
):
    # 300 actions for one group at 2/s would take minutes; an action for another group asked after
    # them must still go out at once (the worker reads a few actions per group, not the oldest N).
    async with standalone_gateway(tmp_path, telegram_api_base=fake_platform.url, action_group_burst=1,
                                  action_group_rate_per_s=2, action_platform_burst=1000,
                                  action_poll_interval_s=0.05) as gw:
        await connector(gw, admin_headers, "telegram", {"bot_token": BOT_TOKEN, "secret_token": "s" * 20},
                        ["-1001", "-1002"])
        for i in range(300):
            await request_action(gw, publish, action_id=f"busy-{i}", action="send_message",
                                 group_id="telegram:-1001", text=f"积压 {i}")
        await request_action(gw, publish, action_id="quiet-0", action="send_message", group_id="telegram:-1002",
                             text="另一个群")

        async def quiet_sent():
            return [c for c in fake_platform.calls("/sendMessage") if json.loads(c["body"])["text"] == "另一个群"]

        await eventually(quiet_sent, within=10, what="the other group's action")
        busy = [c for c in fake_platform.calls("/sendMessage") if json.loads(c["body"])["text"].startswith("积压")]
        assert len(busy) < 50, "the busy group was rate-limited meanwhile"
        assert [json.loads(c["body"])["text"] for c in busy] == [f"积压 {i}" for i in range(len(busy))]
