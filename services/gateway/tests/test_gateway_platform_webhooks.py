"""Telegram updates and WeCom callbacks; connector secrets never come back out."""

from __future__ import annotations

import base64
import json
import os
import time

from sqlalchemy import select

from gateway.models import Connector
from gateway.webhooks.wecom_crypto import encrypt, signature

COMMUNITY = "c-reading"
TG_SECRET = "tg-secret-token-0123456789"
BOT_TOKEN = "123456:AAE-bot-token-value"


async def register(gw, admin_headers, platform: str, secrets: dict, groups: list[str]) -> dict:
    response = await gw.client.post(
        f"/api/v1/communities/{COMMUNITY}/connectors",
        json={"community_id": COMMUNITY, "platform": platform, "groups": groups, "secrets": secrets},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def update(update_id: int, **message) -> bytes:
    base = {"message_id": update_id, "date": 1_790_000_000, "chat": {"id": -1001, "type": "supergroup"},
            "from": {"id": 42, "first_name": "Li", "last_name": "Lei"}}
    return json.dumps({"update_id": update_id, "message": {**base, **message}}).encode()


async def test_telegram_updates_are_verified_deduplicated_and_normalised(gateway, admin_headers, outbox_events):
    connector = await register(gateway, admin_headers, "telegram",
                               {"bot_token": BOT_TOKEN, "secret_token": TG_SECRET}, ["-1001"])
    url = f"/webhooks/chat/{connector['id']}"
    good = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}

    wrong = await gateway.client.post(url, content=update(1, text="hi"),
                                      headers={"X-Telegram-Bot-Api-Secret-Token": "x" * 26})
    missing = await gateway.client.post(url, content=update(1, text="hi"))
    command = await gateway.client.post(url, content=update(2, text="/checkin@qunzhu_bot 第5天"), headers=good)
    replay = await gateway.client.post(url, content=update(2, text="/checkin@qunzhu_bot 第5天"), headers=good)
    joined = await gateway.client.post(url, headers=good, content=update(
        3, new_chat_members=[{"id": 7, "first_name": "Han"}, {"id": 8, "first_name": "Mei"}]))
    photo = await gateway.client.post(url, headers=good, content=update(
        4, photo=[{"file_id": "x"}], caption="作业 第一周", reply_to_message={"message_id": 1, "from": {"id": 9}}))
    reply = await gateway.client.post(url, headers=good, content=update(
        5, text="同意", reply_to_message={"message_id": 1, "from": {"id": 9}},
        entities=[{"type": "text_mention", "offset": 0, "length": 2, "user": {"id": 9}}]))
    edited = await gateway.client.post(url, headers=good, content=json.dumps(
        {"update_id": 6, "edited_message": {"message_id": 1}}).encode())

    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert command.json() == {"status": "accepted", "events": 1}
    assert replay.json()["status"] == "duplicate"
    assert joined.json()["events"] == 2
    assert edited.json() == {"status": "ignored", "events": 0}
    assert photo.status_code == reply.status_code == 200
    events = await outbox_events(gateway.app)
    assert [e.type for e in events] == [
        "chat.command.issued", "chat.member.joined", "chat.member.joined", "chat.command.issued",
        "chat.message.posted"]
    assert events[0].data | {"sent_at": None} == {
        "platform": "telegram", "group_id": "telegram:-1001", "delivery_id": "update:2", "message_id": "2",
        "sender_id": "telegram:42", "sender_name": "Li Lei", "command": "checkin", "argument": "第5天",
        "sent_at": None}
    assert [e.data["member_id"] for e in events[1:3]] == ["telegram:7", "telegram:8"]
    assert events[3].data["command"] == "homework"
    assert events[4].data["reply_to_sender_id"] == "telegram:9"
    assert events[4].data["mentions"] == ["telegram:9"]


AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")
CORP = "ww0123456789"
TOKEN = "wecom-token"


def wecom_query(encrypted: str, *, token: str = TOKEN, at: int | None = None) -> dict:
    stamp, nonce = str(at or int(time.time())), "n0nce"
    return {"msg_signature": signature(token, stamp, nonce, encrypted), "timestamp": stamp, "nonce": nonce}


def wecom_body(xml: str, receive_id: str = CORP) -> tuple[bytes, dict]:
    encrypted = encrypt(AES_KEY, xml.encode(), receive_id)
    body = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return body.encode(), wecom_query(encrypted)


ROBOT_MESSAGE = """<xml><WebhookUrl>https://qyapi.weixin.qq.com/x</WebhookUrl><ChatId>wrkSFfCgAA</ChatId>
<ChatType>group</ChatType><From><UserId>zhangsan</UserId><Name>张三</Name></From><MsgType>text</MsgType>
<Text><Content>{text}</Content></Text><MsgId>{msg_id}</MsgId><CreateTime>1790000000</CreateTime></xml>"""

MEMBER_CHANGE = """<xml><ToUserName>ww0123456789</ToUserName><CreateTime>1790000001</CreateTime>
<MsgType>event</MsgType><Event>change_external_chat</Event><ChatId>wrkSFfCgAA</ChatId>
<ChangeType>update</ChangeType><UpdateDetail>add_member</UpdateDetail><JoinScene>1</JoinScene>
<MemChangeList><Item>wmNew1</Item><Item>wmNew2</Item></MemChangeList></xml>"""


async def test_wecom_url_check_and_encrypted_callbacks(gateway, admin_headers, outbox_events, metric_value):
    connector = await register(gateway, admin_headers, "wecom",
                               {"token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP}, ["wrkSFfCgAA"])
    url = f"/webhooks/chat/{connector['id']}"

    echostr = encrypt(AES_KEY, b"echo-1234567", CORP)
    check = await gateway.client.get(url, params={**wecom_query(echostr), "echostr": echostr})
    bad_check = await gateway.client.get(url, params={**wecom_query(echostr, token="other"), "echostr": echostr})
    assert (check.status_code, check.text) == (200, "echo-1234567")
    assert bad_check.status_code == 401

    body, query = wecom_body(ROBOT_MESSAGE.format(text="打卡 今天跑了5公里", msg_id="msg-1"))
    accepted = await gateway.client.post(url, params=query, content=body)
    replay = await gateway.client.post(url, params=query, content=body)
    forged = await gateway.client.post(url, params={**query, "msg_signature": "0" * 40}, content=body)
    other_corp_body, other_corp_query = wecom_body(ROBOT_MESSAGE.format(text="hi", msg_id="m2"), receive_id="wwOther")
    other_corp = await gateway.client.post(url, params=other_corp_query, content=other_corp_body)
    members_body, members_query = wecom_body(MEMBER_CHANGE)
    members = await gateway.client.post(url, params=members_query, content=members_body)

    # WeCom documents an empty body when there is no passive reply; a replay is answered the same way.
    assert [(r.status_code, r.content) for r in (accepted, replay, members)] == [(200, b"")] * 3
    assert (forged.status_code, other_corp.status_code) == (401, 401)
    events = await outbox_events(gateway.app)
    assert [e.type for e in events] == ["chat.command.issued", "chat.member.joined", "chat.member.joined"]
    assert events[0].data["sender_id"] == "wecom:zhangsan"
    assert events[0].data["group_id"] == "wecom:wrkSFfCgAA"
    assert events[0].data["argument"] == "今天跑了5公里"
    assert events[0].data["delivery_id"] == "msg:msg-1"
    assert [(e.data["member_id"], e.data["joined_via"]) for e in events[1:]] == [
        ("wecom:wmNew1", "invite_link"), ("wecom:wmNew2", "invite_link")]
    name = "qunzhu_gateway_webhook_verification_failures_total"
    assert metric_value(gateway.app, name, platform="wecom", reason="signature") == 2
    assert metric_value(gateway.app, name, platform="wecom", reason="receive_id") == 1


async def test_connector_secrets_are_never_returned_and_stored_sealed(gateway, admin_headers):
    created = await register(gateway, admin_headers, "telegram",
                             {"bot_token": BOT_TOKEN, "secret_token": TG_SECRET}, ["-1001", "-1002"])
    base = f"/api/v1/communities/{COMMUNITY}/connectors"
    fetched = await gateway.client.get(f"{base}/{created['id']}", headers=admin_headers)
    listed = await gateway.client.get(base, headers=admin_headers)
    rotated = await gateway.client.patch(f"{base}/{created['id']}", headers=admin_headers, json={
        "secrets": {"bot_token": "999:new-token-value", "secret_token": "new-secret-token-abcdef"}})

    for response in (fetched, listed, rotated):
        assert response.status_code == 200
        assert BOT_TOKEN not in response.text and TG_SECRET not in response.text
    assert fetched.json()["secrets_set"] == ["bot_token", "secret_token"]
    assert fetched.json()["groups"] == ["-1001", "-1002"]
    async with gateway.app.state.runtime.session_maker() as session:
        row = (await session.execute(select(Connector))).scalars().one()
    assert BOT_TOKEN not in row.secrets_sealed and "new-token" not in row.secrets_sealed
    assert row.secret_token_hash is not None and "new-secret" not in row.secret_token_hash
    # The rotated secret token is the one that works now.
    url = f"/webhooks/chat/{created['id']}"
    old = await gateway.client.post(url, content=update(1, text="hi"),
                                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
    new = await gateway.client.post(url, content=update(1, text="hi"),
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "new-secret-token-abcdef"})
    assert (old.status_code, new.status_code) == (401, 200)

    taken = await gateway.client.post(base, headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": "telegram", "groups": ["-1002"],
        "secrets": {"bot_token": BOT_TOKEN, "secret_token": TG_SECRET}})
    assert taken.status_code == 409
    anonymous = await gateway.client.get(base)
    assert anonymous.status_code == 401
