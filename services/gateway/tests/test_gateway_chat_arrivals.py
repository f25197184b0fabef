"""People who arrive from the chat (#17 part 5), from the gateway's side: someone a chat join admitted logs in
with a code the community's connector delivers — through a generic bridge, and through WeCom's self-built app
(`message/send`) — and WeCom's web login (OAuth code → userid through the app) gives a person-wide token.
WeCom is a loopback stand-in (GATEWAY_WECOM_API_BASE)."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime

import jwt
import pytest

from gateway.webhooks.verify import sign_standard
from qunzhu.embedded import embedded_platform
from qunzhu_common.events.contracts.chat import ChatMemberJoined
from qunzhu_common.testing import serving

OPERATOR_KEY = "operator-key-for-arrival-tests"
OWNER = "telegram:42"


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def token_answers(fake, *answers) -> None:
    fake.script.extend([(200, {"errcode": 0, "errmsg": "ok", "access_token": "ACCESS", "expires_in": 7200}),
                        *[(200, a) for a in answers]])


# -- WeCom web login ------------------------------------------------------------------------------------


@pytest.fixture
def wecom_login(tmp_path, standalone_gateway, fake_platform):
    def start(**overrides):
        values = dict(wecom_login_corp_id="ww0123456789", wecom_login_secret="app-secret",
                      wecom_api_base=fake_platform.url)
        values.update(overrides)
        return standalone_gateway(tmp_path, **values)

    return start


async def test_wecom_web_login_gives_a_person_wide_token(wecom_login, fake_platform):
    token_answers(fake_platform, {"errcode": 0, "errmsg": "ok", "userid": "lisi", "user_ticket": "t"},
                  {"errcode": 0, "errmsg": "ok", "userid": "lisi"})
    async with wecom_login() as gw:
        first = await gw.client.post("/api/v1/auth/wecom", json={"code": "CODE1"})
        second = await gw.client.post("/api/v1/auth/wecom", json={"code": "CODE2"})

    assert first.status_code == second.status_code == 200, first.text
    answer = first.json()
    assert (answer["subject"], answer["community_id"]) == ("wecom:lisi", None)
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "wecom:lisi" and "qz_community" not in claims
    gettoken, userinfo, userinfo2 = fake_platform.received
    assert gettoken["path"] == "/cgi-bin/gettoken"
    assert gettoken["query"] == {"corpid": "ww0123456789", "corpsecret": "app-secret"}
    assert userinfo["path"] == "/cgi-bin/auth/getuserinfo"
    assert userinfo["query"] == {"access_token": "ACCESS", "code": "CODE1"}
    assert userinfo2["query"]["code"] == "CODE2"  # the app's token is cached, not fetched per login


async def test_wecom_web_login_refusals(wecom_login, fake_platform, tmp_path, standalone_gateway):
    token_answers(fake_platform,
                  {"errcode": 40029, "errmsg": "invalid code"},
                  {"errcode": 0, "errmsg": "ok", "openid": "o-outsider"},  # not in the enterprise
                  {"errcode": 42001, "errmsg": "access_token expired"})
    fake_platform.script.extend([(200, {"errcode": 0, "access_token": "FRESH", "expires_in": 7200}),
                                 (200, {"errcode": 0, "userid": "wangwu"}),
                                 (503, {"errcode": -1})])
    async with wecom_login() as gw:
        used = await gw.client.post("/api/v1/auth/wecom", json={"code": "USED"})
        outsider = await gw.client.post("/api/v1/auth/wecom", json={"code": "OUT"})
        refreshed = await gw.client.post("/api/v1/auth/wecom", json={"code": "AFTER-EXPIRY"})
        down = await gw.client.post("/api/v1/auth/wecom", json={"code": "DOWN"})
        malformed = [await gw.client.post("/api/v1/auth/wecom", json=body)
                     for body in ({}, {"code": ""}, {"code": "a b"}, {"code": "x" * 600}, {"code": 5})]

    assert (used.status_code, outsider.status_code) == (401, 401)
    assert refreshed.status_code == 200 and refreshed.json()["subject"] == "wecom:wangwu"
    assert fake_platform.received[-2]["query"]["access_token"] == "FRESH"
    assert down.status_code == 503 and down.headers["retry-after"]
    assert [r.status_code for r in malformed] == [422] * 5
    for response in (used, outsider, down, *malformed):
        assert response.headers["content-type"].startswith("application/problem+json")
    async with standalone_gateway(tmp_path / "unconfigured") as gw:
        assert (await gw.client.post("/api/v1/auth/wecom", json={"code": "C"})).status_code == 404


# -- a code through the community's connector for someone a chat join admitted ------------------------------


@pytest.fixture
async def platform(tmp_path, monkeypatch, fake_platform):
    monkeypatch.setenv("GATEWAY_ADMIN_API_KEY", OPERATOR_KEY)
    monkeypatch.setenv("GATEWAY_BRIDGE_ALLOW_HTTP", "true")
    monkeypatch.setenv("GATEWAY_WECOM_API_BASE", fake_platform.url)
    async with embedded_platform(tmp_path) as app, serving(app, base_url="http://gw") as client:
        yield app, client


def as_owner() -> dict[str, str]:
    return {"X-API-Key": OPERATOR_KEY, "X-On-Behalf-Of": OWNER}


async def free_community(client, eventually) -> str:
    created = await client.post("/api/v1/communities", headers=as_owner(),
                                json={"name": "读书会", "positioning": "免费的读书群"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]

    async def groups_registered():
        responses = [await client.post(f"/api/v1/membership/communities/{cid}/groups", headers=as_owner(), json=g)
                     for g in ({"platform": "wecom", "external_id": "chat1", "paid": False},
                               {"platform": "wechat", "external_id": "g-1", "paid": False})]
        return all(r.status_code == 201 for r in responses)

    await eventually(groups_registered, what="the groups registered for the owner")
    settings = await client.get(f"/api/v1/membership/communities/{cid}/settings", headers=as_owner())
    assert settings.json()["chat_join_policy"] == "admit"
    return cid


async def code_login(client, fake_platform, eventually, cid: str, person: str, sent_to: str):
    before = len(fake_platform.calls(sent_to))
    asked = await client.post("/api/v1/auth/codes", json={"community_id": cid, "member_id": person})
    assert asked.status_code == 202
    sent = await eventually(lambda: fake_platform.calls(sent_to)[before:], what=f"a code for {person}")
    body = json.loads(sent[0]["body"])
    text = body["text"]["content"] if "touser" in body else body["data"]["text"]
    code = re.search(r"\d{6}", text).group()
    token = await client.post("/api/v1/auth/token", json={"member_id": person, "code": code})
    assert token.status_code == 200, token.text
    assert token.json()["community_id"] == cid
    return body, {"Authorization": f"Bearer {token.json()['access_token']}"}


async def active_member(client, cid: str, person: str, eventually) -> None:
    async def admitted():
        response = await client.get(f"/api/v1/membership/communities/{cid}/members/{person}", headers=as_owner())
        return response.status_code == 200 and response.json()["status"] == "active"

    await eventually(admitted, what=f"{person} admitted from the chat")


async def test_a_person_admitted_from_a_wecom_group_gets_a_code_through_the_app(platform, fake_platform, eventually,
                                                                                  publish):
    app, client = platform
    cid = await free_community(client, eventually)
    aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    connector = await client.post(f"/api/v1/communities/{cid}/connectors", headers=as_owner(), json={
        "community_id": cid, "platform": "wecom", "groups": ["chat1"],
        "secrets": {"token": "wecom-token", "encoding_aes_key": aes_key, "corp_id": "ww0123456789",
                    "corp_secret": "app-secret", "agent_id": 1000002}})
    assert connector.status_code == 201, connector.text
    # The join as the gateway publishes it from the app's callback (chat.events.v1).
    await publish(app, "chat.member.joined", ChatMemberJoined(
        platform="wecom", group_id="wecom:chat1", delivery_id=uuid.uuid4().hex, member_id="wecom:lisi",
        display_name="李四", joined_at=datetime.now(UTC)), cid)
    await active_member(client, cid, "wecom:lisi", eventually)
    token_answers(fake_platform, {"errcode": 0, "errmsg": "ok", "invaliduser": ""})

    body, headers = await code_login(client, fake_platform, eventually, cid, "wecom:lisi", "/cgi-bin/message/send")

    assert (body["touser"], body["agentid"], body["msgtype"]) == ("lisi", 1000002, "text")
    (gettoken,) = fake_platform.calls("/cgi-bin/gettoken")
    assert gettoken["query"] == {"corpid": "ww0123456789", "corpsecret": "app-secret"}
    me = await client.get(f"/api/v1/membership/communities/{cid}/members/wecom:lisi", headers=headers)
    assert me.status_code == 200 and me.json()["display_name"] == "李四"


async def test_a_person_admitted_from_a_bridged_group_gets_a_code_through_the_bridge(platform, fake_platform,
                                                                                     eventually):
    _app, client = platform
    cid = await free_community(client, eventually)
    inbound, outbound = whsec(), whsec()
    connector = await client.post(f"/api/v1/communities/{cid}/connectors", headers=as_owner(), json={
        "community_id": cid, "platform": "generic", "identity_platform": "wechat", "groups": ["g-1"],
        "secrets": {"signing_secrets": [inbound], "outbound_url": f"{fake_platform.url}/bridge",
                    "outbound_secret": outbound}})
    assert connector.status_code == 201, connector.text
    join = json.dumps({"type": "member_joined", "group_id": "g-1", "member_id": "wxid_new",
                       "member_name": "新人"}).encode()
    stamp = int(time.time())
    delivered = await client.post(f"/webhooks/chat/{connector.json()['id']}", content=join, headers={
        "content-type": "application/json", "webhook-id": "join-1", "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(inbound, "join-1", stamp, join)})
    assert delivered.status_code == 200, delivered.text
    await active_member(client, cid, "wechat:wxid_new", eventually)

    body, headers = await code_login(client, fake_platform, eventually, cid, "wechat:wxid_new", "/bridge")

    assert body["data"]["group_id"] == "wechat:wxid_new"  # the person's private chat, through the bridge
    assert "to_person" not in body["data"]
    me = await client.get(f"/api/v1/membership/communities/{cid}/members/wechat:wxid_new", headers=headers)
    assert me.status_code == 200 and me.json()["status"] == "active"


async def test_a_person_admitted_from_a_qq_group_gets_a_code_through_onebot(platform, fake_platform, eventually,
                                                                             publish):
    app, client = platform
    cid = await free_community(client, eventually)
    registered = await client.post(f"/api/v1/membership/communities/{cid}/groups", headers=as_owner(),
                                   json={"platform": "qq", "external_id": "123456", "paid": False})
    assert registered.status_code == 201, registered.text
    connector = await client.post(f"/api/v1/communities/{cid}/connectors", headers=as_owner(), json={
        "community_id": cid, "platform": "onebot", "groups": ["123456"],
        "secrets": {"secret": "onebot-secret-0123456789", "self_id": "10001", "api_base": f"{fake_platform.url}/ob",
                    "access_token": "ob-token"}})
    assert connector.status_code == 201, connector.text
    await publish(app, "chat.member.joined", ChatMemberJoined(
        platform="qq", group_id="qq:123456", delivery_id=uuid.uuid4().hex, member_id="qq:998877",
        display_name="小明", joined_at=datetime.now(UTC)), cid)
    await active_member(client, cid, "qq:998877", eventually)
    fake_platform.script.append((200, {"status": "ok", "retcode": 0, "data": {"message_id": 7}}))

    before = len(fake_platform.calls("/ob/send_private_msg"))
    assert (await client.post("/api/v1/auth/codes", json={"community_id": cid, "member_id": "qq:998877"})
            ).status_code == 202
    sent = await eventually(lambda: fake_platform.calls("/ob/send_private_msg")[before:], what="the QQ code")
    body = json.loads(sent[0]["body"])
    assert body["user_id"] == 998877 and sent[0]["headers"]["authorization"] == "Bearer ob-token"
    code = re.search(r"\d{6}", "".join(s["data"].get("text", "") for s in body["message"])).group()
    token = await client.post("/api/v1/auth/token", json={"member_id": "qq:998877", "code": code})
    assert token.status_code == 200 and token.json()["community_id"] == cid
