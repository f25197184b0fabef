"""QQ groups: OneBot 11 events (checked against nonebot-adapter-onebot's own event models) and actions against
a loopback OneBot HTTP API; the QQ official bot's Ed25519-signed callbacks and passive replies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nonebot.adapters.onebot.v11 import Adapter as OneBotAdapter
from nonebot.adapters.onebot.v11 import (
    GroupDecreaseNoticeEvent,
    GroupIncreaseNoticeEvent,
    GroupMessageEvent,
    GroupRecallNoticeEvent,
    GroupRequestEvent,
    HeartbeatMetaEvent,
)

from gateway.webhooks.onebot import sign as onebot_sign
from gateway.webhooks.qqbot import private_key
from qunzhu_common.events.contracts.chat import ChatActionRequested
from qunzhu_common.events.contracts.membership import MemberChanged

COMMUNITY = "c-qq"
SELF_ID = "3889000001"
SECRET = "onebot-post-secret-0123"
ACCESS_TOKEN = "onebot-access-token"
GROUP = "736190001"
QQ_APP_ID = "102000001"
QQ_SECRET = "qqbotsecret"  # shorter than 32 bytes: QQ repeats it into the seed


# -- a loopback OneBot 11 HTTP API and QQ OpenAPI -------------------------------------------------------


@dataclass
class QqStandIn:
    """Records every call; a OneBot API answers {status, retcode, data} and refuses a wrong access token;
    QQ's token endpoint issues tokens, its message endpoint wants `QQBot <token>`."""

    url: str = ""
    calls: list[dict] = field(default_factory=list)
    retcodes: list[int] = field(default_factory=list)
    tokens_issued: int = 0
    expires_in: str = "7200"  # QQ sends it as a string

    async def handle(self, request):
        from starlette.responses import JSONResponse

        body = await request.body()
        path = request.url.path
        self.calls.append({"path": path, "headers": dict(request.headers), "json": json.loads(body or b"null")})
        if path == "/app/getAppAccessToken":
            self.tokens_issued += 1
            return JSONResponse({"access_token": f"qq-token-{self.tokens_issued}", "expires_in": self.expires_in})
        if path.startswith("/v2/groups/"):
            if request.headers.get("authorization") != f"QQBot qq-token-{self.tokens_issued}":
                return JSONResponse({"code": 11244, "message": "token not exist"}, status_code=401)
            return JSONResponse({"id": "reply-1", "timestamp": 1})
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return JSONResponse({"status": "failed", "retcode": 1403, "data": None}, status_code=403)
        retcode = self.retcodes.pop(0) if self.retcodes else 0
        return JSONResponse({"status": "ok" if retcode == 0 else "failed", "retcode": retcode, "data": None,
                             "wording": "" if retcode == 0 else "群不存在"})

    def onebot(self, action: str) -> list[dict]:
        return [c["json"] for c in self.calls if c["path"] == f"/onebot/{action}"]


@pytest.fixture
async def stand_in() -> AsyncIterator[QqStandIn]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    platform = QqStandIn()
    app = Starlette(routes=[Route("/{path:path}", platform.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    platform.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    yield platform
    server.should_exit = True
    await task


@pytest.fixture
async def gw(tmp_path, standalone_gateway, stand_in):
    async with standalone_gateway(
        tmp_path, qq_api_base=stand_in.url, qq_token_base=stand_in.url, action_max_attempts=2,
        action_backoff_s=0.01, action_group_burst=20, action_group_rate_per_s=50,
        join_checkout_url_template="https://qunzhu.example/c/{community_id}/join",
    ) as gateway:
        yield gateway


async def onebot_connector(gw, admin_headers, stand_in) -> str:
    response = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": "onebot", "groups": [GROUP], "secrets": {
            "secret": SECRET, "self_id": SELF_ID, "api_base": stand_in.url + "/onebot",
            "access_token": ACCESS_TOKEN}})
    assert response.status_code == 201, response.text
    assert response.json()["identity_platform"] == "qq"
    assert "access_token" in response.json()["secrets_set"] and SECRET not in response.text
    return response.json()["id"]


# -- OneBot 11 events, as the spec shows them ----------------------------------------------------------


def base(post_type: str, **fields) -> dict:
    return {"time": int(time.time()), "self_id": int(SELF_ID), "post_type": post_type, **fields}


def group_message(message_id: int, message, user_id: int = 10001, card: str = "李一天") -> dict:
    raw = message if isinstance(message, str) else ""
    return base("message", message_type="group", sub_type="normal", message_id=message_id, group_id=int(GROUP),
                user_id=user_id, anonymous=None, message=message, raw_message=raw, font=0,
                sender={"user_id": user_id, "nickname": "yitian", "card": card, "role": "member"})


# What nonebot-adapter-onebot makes of each fixture: the fixtures are OneBot 11 as a real client reads it.
MODELS = {"message": GroupMessageEvent, "group_increase": GroupIncreaseNoticeEvent,
          "group_decrease": GroupDecreaseNoticeEvent, "group_recall": GroupRecallNoticeEvent,
          "request": GroupRequestEvent, "meta_event": HeartbeatMetaEvent}


def checked(event: dict) -> bytes:
    model = OneBotAdapter.json_to_event(event)
    expected = MODELS.get(event.get("notice_type"), MODELS.get(event["post_type"]))
    assert isinstance(model, expected), (type(model), event)
    return json.dumps(event, ensure_ascii=False).encode()


async def post_onebot(gw, connector_id: str, body: bytes, *, secret: str = SECRET, self_id: str = SELF_ID,
                      signed: bool = True, signed_body: bytes | None = None):
    headers = {"content-type": "application/json", "x-self-id": self_id}
    if signed:
        headers["x-signature"] = onebot_sign(secret, body if signed_body is None else signed_body)
    return await gw.client.post(f"/webhooks/chat/{connector_id}", content=body, headers=headers)


async def test_onebot_events_are_verified_and_normalised(gw, admin_headers, stand_in, outbox_events):
    connector_id = await onebot_connector(gw, admin_headers, stand_in)
    segments = [{"type": "at", "data": {"qq": SELF_ID}}, {"type": "text", "data": {"text": " 打卡 第3天"}}]
    command = checked(group_message(501, segments))
    cq = checked(group_message(
        502, "[CQ:reply,id=501][CQ:at,qq=10002] 同意&#91;赞&#93; https://example.org/a[CQ:face,id=178]",
        user_id=10003, card=""))
    at_all = checked(group_message(503, [{"type": "at", "data": {"qq": "all"}},
                                         {"type": "image", "data": {"file": "a.jpg", "url": "https://x/a.jpg"}}]))
    joined = checked(base("notice", notice_type="group_increase", sub_type="invite", group_id=int(GROUP),
                          operator_id=10001, user_id=10004))
    kicked = checked(base("notice", notice_type="group_decrease", sub_type="kick", group_id=int(GROUP),
                          operator_id=10001, user_id=10005))
    left = checked(base("notice", notice_type="group_decrease", sub_type="leave", group_id=int(GROUP),
                        operator_id=10006, user_id=10006))
    recalled = checked(base("notice", notice_type="group_recall", group_id=int(GROUP), user_id=10001,
                            operator_id=10007, message_id=501))
    own_recalled = checked(base("notice", notice_type="group_recall", group_id=int(GROUP), user_id=int(SELF_ID),
                                operator_id=int(SELF_ID), message_id=9))
    heartbeat = checked(base("meta_event", meta_event_type="heartbeat", status={"online": True, "good": True},
                             interval=5000))

    answers = [await post_onebot(gw, connector_id, body) for body in (command, cq, at_all, joined, kicked, left)]
    assert [a.json() for a in answers] == [{"status": "accepted", "events": 1}] * 6
    assert (await post_onebot(gw, connector_id, command)).json()["status"] == "duplicate"
    assert (await post_onebot(gw, connector_id, recalled)).json() == {"status": "accepted", "events": 1}
    assert (await post_onebot(gw, connector_id, recalled)).json()["status"] == "duplicate"
    assert (await post_onebot(gw, connector_id, own_recalled)).json() == {"status": "ignored", "events": 0}
    beat = await post_onebot(gw, connector_id, heartbeat)
    assert (beat.status_code, beat.content) == (204, b"")
    # The bot's own messages: echoed as message_sent (NapCat's reportSelfMessage) or as a group message.
    echoed = json.dumps(dict(group_message(504, "打卡成功", user_id=int(SELF_ID)), post_type="message_sent")).encode()
    assert (await post_onebot(gw, connector_id, echoed)).status_code == 204
    own = checked(group_message(505, "打卡 第1天", user_id=int(SELF_ID)))
    assert (await post_onebot(gw, connector_id, own)).json() == {"status": "ignored", "events": 0}

    events = [e for e in await outbox_events(gw.app) if e.type.startswith((
        "chat.message.posted", "chat.command", "chat.member"))]
    assert [e.type for e in events] == ["chat.command.issued", "chat.message.posted", "chat.message.posted",
                                        "chat.member.joined", "chat.member.left", "chat.member.left"]
    assert events[0].data | {"sent_at": None} == {
        "platform": "qq", "group_id": f"qq:{GROUP}", "delivery_id": f"msg:{GROUP}:501", "message_id": "501",
        "sender_id": "qq:10001", "sender_name": "李一天", "command": "checkin", "argument": "第3天", "sent_at": None}
    assert events[0].community_id == COMMUNITY
    message = events[1].data
    assert (message["text"], message["mentions"], message["reply_to_message_id"], message["sender_name"],
            message["links"], message["media_kind"]) == (
        "同意[赞] https://example.org/a", ["qq:10002"], "501", "yitian", ["https://example.org/a"], "emoji")
    assert (events[2].data["mentions_all"], events[2].data["media_kind"]) == (True, "image")
    assert (events[3].data["member_id"], events[3].data["inviter_id"]) == ("qq:10004", "qq:10001")
    assert (events[4].data["member_id"], events[4].data["removed_by"]) == ("qq:10005", "qq:10001")
    assert (events[5].data["member_id"], events[5].data["removed_by"]) == ("qq:10006", None)
    (recall,) = [e for e in await outbox_events(gw.app) if e.type == "chat.message.recalled"]
    assert recall.data | {"recalled_at": None, "delivery_id": None} == {
        "platform": "qq", "group_id": f"qq:{GROUP}", "delivery_id": None, "message_id": "501",
        "sender_id": "qq:10001", "operator_id": "qq:10007", "recalled_at": None}


async def test_onebot_forged_unsigned_foreign_and_stale_are_refused(gw, admin_headers, stand_in, outbox_events,
                                                                    metric_value):
    connector_id = await onebot_connector(gw, admin_headers, stand_in)
    body = checked(group_message(601, "打卡"))
    stale = dict(group_message(602, "打卡"), time=int(time.time()) - 3600)
    other_bot = dict(group_message(603, "打卡"), self_id=3889000002)
    refused = [
        await post_onebot(gw, connector_id, body, secret="another-secret-0123"),
        await post_onebot(gw, connector_id, body, signed=False),
        await post_onebot(gw, connector_id, body, self_id="3889000002"),
        await post_onebot(gw, connector_id, body + b" ", signed_body=body),  # signed, then altered
        await post_onebot(gw, connector_id, json.dumps(stale).encode()),
        await post_onebot(gw, connector_id, json.dumps(other_bot).encode()),
    ]
    assert [r.status_code for r in refused] == [401] * 6
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in refused)
    assert metric_value(gw.app, "qunzhu_gateway_webhook_verification_failures_total", platform="onebot",
                        reason="signature") == 2
    # Signed garbage is acknowledged and quarantined, never a 5xx.
    for garbage in (b"{not json", b"[1, 2]", json.dumps(base("message", message_type="group", group_id=[1])).encode(),
                    json.dumps(base("request", request_type="group", sub_type="add", group_id=int(GROUP),
                                    user_id=1, flag=None)).encode()):
        answer = await post_onebot(gw, connector_id, garbage)
        assert answer.status_code == 200 and answer.json()["status"] == "quarantined", answer.text
    assert [e for e in await outbox_events(gw.app) if e.type.startswith("chat.")] == []


# -- the paywall at the door and OneBot actions ------------------------------------------------------------


async def member(gw, publish, eventually, member_id: str, status: str) -> None:
    from gateway.models import MemberRole

    await publish(gw.app, "member.role_changed", MemberChanged(
        community_id=COMMUNITY, member_id=member_id, role="member", status=status, changed_at=datetime.now(UTC)),
        COMMUNITY)

    async def projected():
        async with gw.app.state.runtime.session_maker() as session:
            row = await session.get(MemberRole, (COMMUNITY, member_id))
            return row is not None and row.status == status

    await eventually(projected, what=f"{member_id} projected")


async def settled(gw, outbox_events, eventually, count: int) -> dict:
    async def done():
        events = [e for e in await outbox_events(gw.app) if e.type in ("chat.action.completed", "chat.action.failed")]
        return events if len(events) >= count else None

    return {e.data["action_id"]: e for e in await eventually(done, what=f"{count} settled actions")}


async def test_join_requests_are_decided_from_the_membership(gw, admin_headers, stand_in, outbox_events, eventually,
                                                             publish, metric_value):
    connector_id = await onebot_connector(gw, admin_headers, stand_in)
    await member(gw, publish, eventually, "qq:20001", "active")
    await member(gw, publish, eventually, "qq:20002", "expired")

    def request(user_id: int, flag: str) -> bytes:
        return checked(base("request", request_type="group", sub_type="add", group_id=int(GROUP), user_id=user_id,
                            comment="我是付费会员", flag=flag))

    answers = [await post_onebot(gw, connector_id, request(user, flag))
               for user, flag in ((20001, "flag-paid"), (20002, "flag-expired"), (20003, "flag-stranger"))]
    assert [a.json() for a in answers] == [{"status": "accepted", "events": 1}] * 3
    assert (await post_onebot(gw, connector_id, request(20001, "flag-paid"))).json()["status"] == "duplicate"
    invite = checked(base("request", request_type="group", sub_type="invite", group_id=int(GROUP), user_id=20004,
                          comment="", flag="flag-invite"))
    assert (await post_onebot(gw, connector_id, invite)).json() == {"status": "ignored", "events": 0}

    decisions = [e for e in await outbox_events(gw.app) if e.type == "chat.action.requested"]
    assert [(e.data["member_id"], e.data["approve"]) for e in decisions] == [
        ("qq:20001", True), ("qq:20002", False), ("qq:20003", False)]
    assert decisions[0].data["action"] == "decide_join" and decisions[0].data["reason"] == ""

    await settled(gw, outbox_events, eventually, 3)
    calls = {c["flag"]: c for c in stand_in.onebot("set_group_add_request")}
    assert calls["flag-paid"] == {"flag": "flag-paid", "sub_type": "add", "approve": True}
    assert calls["flag-expired"]["approve"] is False
    assert calls["flag-expired"]["reason"] == f"会员已到期，续费后再申请入群：https://qunzhu.example/c/{COMMUNITY}/join"
    assert calls["flag-stranger"]["reason"].endswith(f"https://qunzhu.example/c/{COMMUNITY}/join")
    assert len(stand_in.onebot("set_group_add_request")) == 3
    assert metric_value(gw.app, "qunzhu_gateway_join_requests_total", platform="onebot", decision="approved",
                        why="member") == 1
    assert metric_value(gw.app, "qunzhu_gateway_join_requests_total", platform="onebot", decision="refused",
                        why="no_membership") == 1


async def test_onebot_actions_through_the_http_api(gw, admin_headers, stand_in, outbox_events, eventually, publish):
    await onebot_connector(gw, admin_headers, stand_in)
    group = f"qq:{GROUP}"

    async def ask(**fields) -> None:
        await publish(gw.app, "chat.action.requested", ChatActionRequested(requested_by="engagement", group_id=group,
                                                                           **fields), COMMUNITY)

    await ask(action_id="q-1", action="send_message", text="恭喜 {mention:qq:10001} 连续打卡 7 天")
    await ask(action_id="q-2", action="announce", text="周日 20:30 嘉宾分享")
    await ask(action_id="q-3", action="remove_member", member_id="qq:10005", reason="广告")
    await ask(action_id="q-4", action="set_card", member_id="qq:10001", display_name="北京-产品-李一天")
    await ask(action_id="q-5", action="mute_member", member_id="qq:10007", duration_s=600)
    await ask(action_id="q-6", action="delete_message", message_id="-2147483000")
    stand_in.retcodes.extend([0, 0, 0, 0, 0, 0, 100])
    await ask(action_id="q-7", action="send_message", text="hi")

    done = await settled(gw, outbox_events, eventually, 7)
    assert {k: v.type for k, v in done.items()} == {
        **{f"q-{n}": "chat.action.completed" for n in range(1, 7)}, "q-7": "chat.action.failed"}
    failed = done["q-7"].data
    assert (failed["attempts"], failed["error"]) == (1, "onebot send_group_msg: retcode 100 群不存在")
    first, second, *_ = stand_in.onebot("send_group_msg")
    assert first == {"group_id": int(GROUP), "message": [
        {"type": "text", "data": {"text": "恭喜 "}}, {"type": "at", "data": {"qq": "10001"}},
        {"type": "text", "data": {"text": " 连续打卡 7 天"}}]}
    assert second["message"][0] == {"type": "at", "data": {"qq": "all"}}
    assert stand_in.onebot("set_group_kick") == [{"group_id": int(GROUP), "user_id": 10005,
                                                  "reject_add_request": False}]
    assert stand_in.onebot("set_group_card") == [{"group_id": int(GROUP), "user_id": 10001,
                                                  "card": "北京-产品-李一天"}]
    assert stand_in.onebot("set_group_ban") == [{"group_id": int(GROUP), "user_id": 10007, "duration": 600}]
    assert stand_in.onebot("delete_msg") == [{"message_id": -2147483000}]
    assert all(c["headers"]["authorization"] == f"Bearer {ACCESS_TOKEN}" for c in stand_in.calls)


# -- the QQ official bot ------------------------------------------------------------------------------------


def qq_key() -> Ed25519PrivateKey:
    """Derived here independently of the gateway, as QQ documents it: repeat the secret to 32 bytes."""
    seed = QQ_SECRET
    while len(seed) < 32:
        seed = seed * 2
    return Ed25519PrivateKey.from_private_bytes(seed[:32].encode())


def qq_signed(body: dict, *, stamp: int | None = None, key: Ed25519PrivateKey | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    stamp_text = str(stamp if stamp is not None else int(time.time()))
    signature = (key or qq_key()).sign(stamp_text.encode() + raw).hex()
    return raw, {"content-type": "application/json", "x-signature-ed25519": signature,
                 "x-signature-timestamp": stamp_text, "x-signature-method": "Ed25519", "x-bot-appid": QQ_APP_ID,
                 "user-agent": "QQBot-Callback"}


async def qq_connector(gw, admin_headers) -> str:
    response = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": "qq", "groups": ["GROUPOPENID0001"],
        "secrets": {"app_id": QQ_APP_ID, "app_secret": QQ_SECRET}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def at_message(event_id: str, message_id: str, content: str) -> dict:
    return {"op": 0, "id": event_id, "t": "GROUP_AT_MESSAGE_CREATE", "s": 1, "d": {
        "id": message_id, "content": content, "timestamp": "2026-12-07T14:05:00+08:00",
        "group_openid": "GROUPOPENID0001", "group_id": "GROUPOPENID0001",
        "author": {"id": "MEMBEROPENID01", "member_openid": "MEMBEROPENID01", "union_openid": "U1"}}}


async def test_qq_bot_callbacks_are_ed25519_verified(gw, admin_headers, outbox_events):
    connector_id = await qq_connector(gw, admin_headers)
    url = f"/webhooks/chat/{connector_id}"
    assert private_key(QQ_SECRET).public_key().public_bytes_raw() == qq_key().public_key().public_bytes_raw()

    body, headers = qq_signed({"op": 13, "d": {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": "1725442341"}})
    check = await gw.client.post(url, content=body, headers=headers)
    assert check.status_code == 200
    answer = check.json()
    assert answer["plain_token"] == "Arq0D5A61EgUu4OxUvOp"
    qq_key().public_key().verify(bytes.fromhex(answer["signature"]), b"1725442341Arq0D5A61EgUu4OxUvOp")

    body, headers = qq_signed(at_message("GROUP_AT_MESSAGE_CREATE:abc", "ROBOT1.0_msg1", " 打卡 第1天"))
    accepted = await gw.client.post(url, content=body, headers=headers)
    assert (accepted.status_code, accepted.json()) == (200, {"op": 12, "d": 0})
    again = await gw.client.post(url, content=body, headers=headers)
    assert again.json() == {"op": 12, "d": 0}
    for event in ({"op": 0, "id": "e-2", "t": "GROUP_ADD_ROBOT", "d": {"group_openid": "G2", "op_member_openid": "M"}},
                  {"op": 0, "id": "e-3", "t": "C2C_MESSAGE_CREATE", "d": {"id": "m", "content": "hi",
                                                                         "author": {"user_openid": "U"}}}):
        raw, signed_headers = qq_signed(event)
        assert (await gw.client.post(url, content=raw, headers=signed_headers)).json() == {"op": 12, "d": 0}

    forged, forged_headers = qq_signed(at_message("e-4", "m-4", "打卡"), key=Ed25519PrivateKey.generate())
    stale, stale_headers = qq_signed(at_message("e-5", "m-5", "打卡"), stamp=int(time.time()) - 3600)
    altered_headers = dict(headers, **{"x-signature-ed25519": "00" * 64})
    op13_forged, op13_headers = qq_signed({"op": 13, "d": {"plain_token": "x", "event_ts": "1"}},
                                          key=Ed25519PrivateKey.generate())
    refused = [
        await gw.client.post(url, content=forged, headers=forged_headers),
        await gw.client.post(url, content=stale, headers=stale_headers),
        await gw.client.post(url, content=body, headers=altered_headers),
        await gw.client.post(url, content=body, headers={"content-type": "application/json"}),
        await gw.client.post(url, content=op13_forged, headers=op13_headers),  # no signing for strangers
    ]
    assert [r.status_code for r in refused] == [401] * 5

    (event,) = [e for e in await outbox_events(gw.app) if e.type.startswith("chat.")]
    assert event.type == "chat.command.issued"
    assert (event.data["group_id"], event.data["sender_id"], event.data["message_id"], event.data["argument"]) == (
        "qq:GROUPOPENID0001", "qq:MEMBEROPENID01", "ROBOT1.0_msg1", "第1天")


async def test_qq_bot_replies_passively_with_a_cached_token(gw, admin_headers, stand_in, outbox_events, eventually,
                                                            publish):
    await qq_connector(gw, admin_headers)
    for n in (1, 2):
        await publish(gw.app, "chat.action.requested", ChatActionRequested(
            action_id=f"qq-{n}", action="send_message", group_id="qq:GROUPOPENID0001", text=f"打卡成功 {n}",
            reply_to_message_id="ROBOT1.0_msg1", requested_by="engagement"), COMMUNITY)
    await publish(gw.app, "chat.action.requested", ChatActionRequested(
        action_id="qq-3", action="remove_member", group_id="qq:GROUPOPENID0001", member_id="qq:MEMBEROPENID01",
        requested_by="engagement"), COMMUNITY)

    done = await settled(gw, outbox_events, eventually, 3)
    assert (done["qq-1"].type, done["qq-2"].type, done["qq-3"].type) == (
        "chat.action.completed", "chat.action.completed", "chat.action.failed")
    assert stand_in.tokens_issued == 1  # cached between the two replies
    token_call = next(c for c in stand_in.calls if c["path"] == "/app/getAppAccessToken")
    assert token_call["json"] == {"appId": QQ_APP_ID, "clientSecret": QQ_SECRET}
    sent = [c for c in stand_in.calls if c["path"] == "/v2/groups/GROUPOPENID0001/messages"]
    assert [c["json"]["content"] for c in sent] == ["打卡成功 1", "打卡成功 2"]
    assert all(c["json"]["msg_id"] == "ROBOT1.0_msg1" and c["json"]["msg_type"] == 0 for c in sent)
    assert sent[0]["json"]["msg_seq"] != sent[1]["json"]["msg_seq"]
    assert sent[0]["headers"]["authorization"] == "QQBot qq-token-1"


def test_a_rendered_message_mentions_qq_people_with_at_segments():
    """The names directory renders `{mention:…}` into pieces (gateway.chatdir.render); QQ ones become `at`."""
    from gateway.actions.qq import segments

    rendered = [{"type": "text", "text": "恭喜 "},
                {"type": "mention", "person_id": "qq:10001", "user_id": "10001", "name": "李一天", "text": "@李一天"},
                {"type": "text", "text": " 和 "},
                {"type": "mention", "person_id": "wecom:zhang", "user_id": "zhang", "name": "张", "text": "@张"}]
    assert segments("恭喜 李一天 和 张", rendered=rendered) == [
        {"type": "text", "data": {"text": "恭喜 "}}, {"type": "at", "data": {"qq": "10001"}},
        {"type": "text", "data": {"text": " 和 "}}, {"type": "text", "data": {"text": "@张"}}]
    assert segments("{mention:qq:10002} 加油", mention_all=True) == [
        {"type": "at", "data": {"qq": "all"}}, {"type": "text", "data": {"text": " "}},
        {"type": "at", "data": {"qq": "10002"}}, {"type": "text", "data": {"text": " 加油"}}]


async def test_qq_bot_answers_the_groups_latest_message_when_the_action_names_none(
        gw, admin_headers, stand_in, outbox_events, eventually, publish):
    connector_id = await qq_connector(gw, admin_headers)
    body, headers = qq_signed(at_message("e-latest", "ROBOT1.0_latest", "打卡 第2天"))
    assert (await gw.client.post(f"/webhooks/chat/{connector_id}", content=body, headers=headers)).json() == {
        "op": 12, "d": 0}
    await publish(gw.app, "chat.action.requested", ChatActionRequested(
        action_id="qq-ack", action="send_message", group_id="qq:GROUPOPENID0001", text="打卡成功",
        requested_by="engagement"), COMMUNITY)

    await settled(gw, outbox_events, eventually, 1)
    (sent,) = [c for c in stand_in.calls if c["path"] == "/v2/groups/GROUPOPENID0001/messages"]
    assert (sent["json"]["msg_id"], sent["json"]["content"]) == ("ROBOT1.0_latest", "打卡成功")


async def test_a_qq_token_about_to_expire_is_refreshed_first(gw, admin_headers, stand_in, outbox_events, eventually,
                                                               publish):
    await qq_connector(gw, admin_headers)
    stand_in.expires_in = "45"  # inside the refresh margin (60 s): every use fetches a new one
    for n in (1, 2):
        await publish(gw.app, "chat.action.requested", ChatActionRequested(
            action_id=f"qq-exp-{n}", action="send_message", group_id="qq:GROUPOPENID0001", text="hi",
            reply_to_message_id="m-1", requested_by="engagement"), COMMUNITY)
    done = await settled(gw, outbox_events, eventually, 2)
    assert {e.type for e in done.values()} == {"chat.action.completed"}
    assert stand_in.tokens_issued == 2
    sent = [c for c in stand_in.calls if c["path"].endswith("/messages")]
    assert [c["headers"]["authorization"] for c in sent] == ["QQBot qq-token-1", "QQBot qq-token-2"]


async def test_an_open_free_community_lets_strangers_in_and_an_unreachable_membership_decides_nothing(
        tmp_path, standalone_gateway, stand_in, admin_headers, outbox_events, eventually, metric_value):
    import httpx

    membership = {"up": True, "policies": ["free"]}

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/communities/{COMMUNITY}":
            if not membership["up"]:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(200, json={"id": COMMUNITY, "entry_policies": membership["policies"]})
        return httpx.Response(200, json={"status": "ok"})

    async with standalone_gateway(tmp_path, respond=respond, action_backoff_s=0.01, upstream_retries=0) as gw:
        connector_id = await onebot_connector(gw, admin_headers, stand_in)

        def request(user_id: int, flag: str) -> bytes:
            return checked(base("request", request_type="group", sub_type="add", group_id=int(GROUP),
                                user_id=user_id, comment="", flag=flag))

        assert (await post_onebot(gw, connector_id, request(30001, "f-open"))).json()["events"] == 1
        membership["policies"] = ["free", "application"]
        assert (await post_onebot(gw, connector_id, request(30002, "f-application"))).json()["events"] == 1
        membership["up"] = False
        assert (await post_onebot(gw, connector_id, request(30003, "f-down"))).json() == {
            "status": "ignored", "events": 0}

        decisions = [e for e in await outbox_events(gw.app) if e.type == "chat.action.requested"]
        assert [(e.data["member_id"], e.data["approve"]) for e in decisions] == [
            ("qq:30001", True), ("qq:30002", False)]
        assert metric_value(gw.app, "qunzhu_gateway_join_requests_total", platform="onebot", decision="approved",
                            why="admit_policy") == 1
        assert metric_value(gw.app, "qunzhu_gateway_join_requests_total", platform="onebot", decision="undecided",
                            why="membership_unavailable") == 1
        await settled(gw, outbox_events, eventually, 2)
        assert [c["approve"] for c in stand_in.onebot("set_group_add_request")] == [True, False]
