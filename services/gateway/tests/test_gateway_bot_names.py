"""Names, not ids, in the group (#17): bot messages name people as the platform last reported them in that
group, with the platform's own mention syntax, against a loopback server playing Telegram and WeCom."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from telegram import Chat, Message, Update, User

from gateway.chatdir.render import mask
from qunzhu_common.events.contracts.chat import ChatActionRequested, mention_token, person_token

COMMUNITY = "c-names"
BOT_TOKEN = "777:bot-token-for-names"
TG_SECRET = "tg-secret-token-0123456789"
LI = "telegram:1910239988"


@pytest.fixture
async def gw(tmp_path, standalone_gateway, fake_platform):
    async with standalone_gateway(tmp_path, telegram_api_base=fake_platform.url, wecom_robot_base=fake_platform.url,
                                  action_backoff_s=0.01) as gateway:
        yield gateway


async def connector(gw, admin_headers, platform: str, secrets: dict, groups: list[str]) -> str:
    response = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": platform, "groups": groups, "secrets": secrets})
    assert response.status_code == 201, response.text
    return f"/webhooks/chat/{response.json()['id']}"


async def settled(gw, outbox_events, eventually, count: int) -> list:
    async def done():
        events = [e for e in await outbox_events(gw.app) if e.type.startswith("chat.action.")]
        return events if len(events) >= count else None

    return await eventually(done, what=f"{count} settled actions")


def tg_update(update_id: int, **fields) -> bytes:
    message = Message(message_id=update_id, date=datetime(2026, 11, 26, 12, tzinfo=UTC),
                      chat=Chat(id=-1001, type=Chat.SUPERGROUP), **fields)
    return Update(update_id=update_id, message=message).to_json().encode()


async def test_the_expiry_reminder_names_and_mentions_the_person_as_telegram_reported_them(
        gw, publish, admin_headers, fake_platform, outbox_events, eventually):
    url = await connector(gw, admin_headers, "telegram", {"bot_token": BOT_TOKEN, "secret_token": TG_SECRET},
                          ["-1001"])
    li = User(id=1910239988, first_name="李一天", is_bot=False)
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    for body in (tg_update(1, from_user=li, new_chat_members=(li,)), tg_update(2, from_user=li, text="大家好 <3")):
        assert (await gw.client.post(url, content=body, headers=headers)).status_code == 200

    # What membership sends (its reminder text, the person as a placeholder) and an unknown person.
    text = (f"{mention_token(LI)} 你在「晨读营」的会员将于 2026-12-20 到期，"
            f"{person_token('telegram:5550001')} 已续费 <b>")
    await publish(gw.app, "chat.action.requested", ChatActionRequested(
        action_id="remind-1", action="send_message", group_id="telegram:-1001", member_id=LI, text=text,
        requested_by="membership"), COMMUNITY)

    await settled(gw, outbox_events, eventually, 1)
    (send,) = fake_platform.calls("/sendMessage")
    assert json.loads(send["body"]) == {
        "chat_id": "-1001", "parse_mode": "HTML",
        "text": '<a href="tg://user?id=1910239988">@李一天</a> 你在「晨读营」的会员将于 2026-12-20 到期，'
                "telegram:55…01 已续费 &lt;b&gt;"}
    assert mask("telegram:1910239988") == "telegram:19…88" and mask("qq:42") == "qq:4…"


async def test_a_renamed_member_is_named_by_the_latest_name_and_wecom_mentions_by_userid(
        gw, publish, admin_headers, fake_platform, outbox_events, eventually):
    import base64
    import os
    import time

    from wechatpy.enterprise.crypto import WeChatCrypto

    aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    crypto = WeChatCrypto("wecom-token", aes_key, "ww0123456789")
    url = await connector(gw, admin_headers, "wecom", {
        "token": "wecom-token", "encoding_aes_key": aes_key, "corp_id": "ww0123456789",
        "robot_keys": {"wrkSFfCgAA": "robot-key"}}, ["wrkSFfCgAA"])

    for n, name in enumerate(("张三", "张三-北京-产品")):  # the group card changes: the latest wins
        xml = (f"<xml><ChatId>wrkSFfCgAA</ChatId><From><UserId>zhangsan</UserId><Name>{name}</Name></From>"
               f"<MsgType>text</MsgType><Text><Content>早</Content></Text><MsgId>m-{n}</MsgId>"
               f"<CreateTime>1790000000</CreateTime></xml>")
        stamp, nonce = str(int(time.time())), f"nonce{n}"
        body = crypto.encrypt_message(xml, nonce, stamp)
        encrypted = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        signature = body.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
        answer = await gw.client.post(url, params={"msg_signature": signature, "timestamp": stamp, "nonce": nonce},
                                      content=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode())
        assert answer.status_code == 200, answer.text

    await publish(gw.app, "chat.action.requested", ChatActionRequested(
        action_id="chain-1", action="send_message", group_id="wecom:wrkSFfCgAA",
        text=f"接龙：1. {person_token('wecom:zhangsan')} 2. {mention_token('wecom:zhangsan')}",
        requested_by="engagement"), COMMUNITY)

    await settled(gw, outbox_events, eventually, 1)
    (send,) = fake_platform.calls("/cgi-bin/webhook/send")
    assert json.loads(send["body"]) == {"msgtype": "text", "text": {
        "content": "接龙：1. 张三-北京-产品 2. @张三-北京-产品", "mentioned_list": ["zhangsan"]}}


async def test_a_bridge_gets_the_rendered_text_and_its_segments(
        tmp_path, standalone_gateway, fake_platform, publish, admin_headers, outbox_events, eventually):
    import base64
    import os
    import time

    from gateway.webhooks.verify import sign_standard

    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    async with standalone_gateway(tmp_path, bridge_allow_http=True, action_backoff_s=0.01) as gw:
        url = await connector(gw, admin_headers, "generic", {
            "signing_secrets": [secret], "outbound_url": fake_platform.url + "/bridge",
            "outbound_secret": "whsec_" + base64.b64encode(os.urandom(24)).decode()}, ["g-1"])
        body = json.dumps({"type": "member_joined", "group_id": "g-1", "member_id": "wxid_li",
                           "display_name": "李一天"}).encode()
        stamp = int(time.time())
        joined = await gw.client.post(url, content=body, headers={
            "webhook-id": "j-1", "webhook-timestamp": str(stamp), "content-type": "application/json",
            "webhook-signature": sign_standard(secret, "j-1", stamp, body)})
        assert joined.json()["status"] == "accepted"

        await publish(gw.app, "chat.action.requested", ChatActionRequested(
            action_id="welcome-1", action="send_message", group_id="generic:g-1",
            text=f"{mention_token('generic:wxid_li')} 欢迎！", requested_by="membership"), COMMUNITY)
        await settled(gw, outbox_events, eventually, 1)

    (bridged,) = fake_platform.calls("/bridge")
    data = json.loads(bridged["body"])["data"]
    assert (data["text"], data["mentions"]) == ("@李一天 欢迎！", ["generic:wxid_li"])
    assert data["segments"] == [
        {"type": "mention", "person_id": "generic:wxid_li", "user_id": "wxid_li", "name": "李一天",
         "text": "@李一天"},
        {"type": "text", "text": " 欢迎！"}]
