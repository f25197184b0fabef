"""WeCom as documented (#17 part 6): callbacks answered with an empty body; customer-group changes from the
self-built app's callback (change_external_chat create / update add_member, del_member / dismiss), every
callback encrypted and signed by wechatpy, WeChat's own SDK."""

from __future__ import annotations

import base64
import os
import time

import pytest
from wechatpy.enterprise.crypto import WeChatCrypto

COMMUNITY = "c-wecom"
CORP, TOKEN = "ww0123456789", "wecom-token"
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.fixture
def crypto() -> WeChatCrypto:
    return WeChatCrypto(TOKEN, AES_KEY, CORP)


def change(chat: str, change_type: str, *, detail: str = "", items=(), at: int = 1790000000, **extra) -> str:
    """A 客户群变更事件 as WeCom documents it."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    members = f"<MemChangeCnt>{len(items)}</MemChangeCnt><MemChangeList>" + "".join(
        f"<Item><![CDATA[{m}]]></Item>" for m in items) + "</MemChangeList>" if items else ""
    return (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{chat}]]></ChatId>"
            f"<ChangeType><![CDATA[{change_type}]]></ChangeType>"
            + (f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>" if detail else "") + fields + members
            + "</xml>")


async def post(gw, url: str, crypto: WeChatCrypto, xml: str, nonce: str):
    stamp = str(int(time.time()))
    envelope = crypto.encrypt_message(xml, nonce, stamp)
    encrypted = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = envelope.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    return await gw.client.post(url, params={"msg_signature": signature, "timestamp": stamp, "nonce": nonce},
                                content=f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>"
                                        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode(),
                                headers={"content-type": "text/xml"})


async def test_customer_group_created_registered_joined_left_and_dismissed(
        gateway, admin_headers, outbox_events, crypto):
    created = await gateway.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": "wecom", "groups": [], "secrets": {
            "token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP, "register_external_chats": True}})
    assert created.status_code == 201, created.text
    url = f"/webhooks/chat/{created.json()['id']}"

    # The URL check still answers the decrypted echostr.
    stamp, nonce = str(int(time.time())), "echo-nonce"
    echo = crypto.encrypt_message("echo-4711", nonce, stamp)
    echostr = echo.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = echo.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    check = await gateway.client.get(url, params={"msg_signature": signature, "timestamp": stamp, "nonce": nonce,
                                                  "echostr": echostr})
    assert (check.status_code, check.text) == (200, "echo-4711")

    answers = [
        await post(gateway, url, crypto, change("wrOgQhDgAAnew", "create"), "n1"),
        await post(gateway, url, crypto, change("wrOgQhDgAAnew", "update", detail="add_member", JoinScene=3,
                                                items=["wmLi", "wmWang"]), "n2"),
        await post(gateway, url, crypto, change("wrOgQhDgAAnew", "update", detail="del_member", QuitScene=1,
                                                items=["wmWang"], at=1790000100), "n3"),
        await post(gateway, url, crypto, change("wrOgQhDgAAnew", "update", detail="change_name"), "n4"),
        await post(gateway, url, crypto, change("wrOgQhDgAAnew", "dismiss", at=1790000200), "n5"),
    ]
    assert [(a.status_code, a.content) for a in answers] == [(200, b"")] * 5  # as WeCom documents

    fetched = await gateway.client.get(f"/api/v1/communities/{COMMUNITY}/connectors/{created.json()['id']}",
                                       headers=admin_headers)
    assert fetched.json()["groups"] == ["wrOgQhDgAAnew"]
    events = await outbox_events(gateway.app)
    assert [(e.type, e.community_id, e.data["group_id"]) for e in events] == [
        ("chat.group.created", COMMUNITY, "wecom:wrOgQhDgAAnew"),
        ("chat.member.joined", COMMUNITY, "wecom:wrOgQhDgAAnew"),
        ("chat.member.joined", COMMUNITY, "wecom:wrOgQhDgAAnew"),
        ("chat.member.left", COMMUNITY, "wecom:wrOgQhDgAAnew"),
        ("chat.group.dismissed", COMMUNITY, "wecom:wrOgQhDgAAnew")]
    assert [(e.data["member_id"], e.data["joined_via"]) for e in events[1:3]] == [
        ("wecom:wmLi", "qr_code"), ("wecom:wmWang", "qr_code")]
    assert (events[3].data["member_id"], events[3].data["left_via"], events[3].data["removed_by"]) == (
        "wecom:wmWang", "removed", None)


async def test_a_customer_group_is_not_registered_unless_the_connector_says_so(
        gateway, admin_headers, outbox_events, crypto):
    created = await gateway.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": "wecom", "groups": [], "secrets": {
            "token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP}})
    url = f"/webhooks/chat/{created.json()['id']}"

    answer = await post(gateway, url, crypto, change("wrOgQhDgAAother", "create"), "n1")

    assert (answer.status_code, answer.content) == (200, b"")  # acknowledged, kept in quarantine for ops
    assert await outbox_events(gateway.app) == []
    listed = await gateway.client.get("/api/v1/ops/quarantine", headers=admin_headers)
    assert "not mapped" in listed.json()["data"][0]["reason"]


def robot_message(user: str, name: str, text: str, msg_id: str) -> str:
    return (f"<xml><WebhookUrl>https://qyapi.weixin.qq.com/x</WebhookUrl><ChatId>wrkSFfCgAA</ChatId>"
            f"<ChatType>group</ChatType><From><UserId>{user}</UserId><Name>{name}</Name></From>"
            f"<MsgType>text</MsgType><Text><Content><![CDATA[{text}]]></Content></Text><MsgId>{msg_id}</MsgId>"
            f"<CreateTime>1790000000</CreateTime></xml>")


async def test_an_at_name_in_a_wecom_message_names_the_person_the_group_knows_by_it(
        gateway, admin_headers, outbox_events, crypto):
    created = await gateway.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": "wecom", "groups": ["wrkSFfCgAA"], "secrets": {
            "token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP}})
    url = f"/webhooks/chat/{created.json()['id']}"

    await post(gateway, url, crypto, robot_message("liyitian", "李一天", "大家早", "m-1"), "n1")
    await post(gateway, url, crypto, robot_message("zhangsan", "张三", "@李一天\u2005作业写完了吗？@all\u2005", "m-2"),
               "n2")

    events = await outbox_events(gateway.app)
    assert [(e.data["message_id"], e.data["mentions"]) for e in events] == [
        ("m-1", []), ("m-2", ["wecom:liyitian"])]
