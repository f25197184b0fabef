"""Message-level dedupe and @-mentions by name (#17): Telegram updates built from python-telegram-bot's
own objects, bridge deliveries signed as Standard Webhooks."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from datetime import UTC, datetime

from telegram import Chat, Message, MessageEntity, Update, User

from gateway.webhooks.verify import sign_standard

COMMUNITY = "c-reading"
TG_SECRET = "tg-secret-token-0123456789"
GROUP = Chat(id=-1001, type=Chat.SUPERGROUP, title="晨读营")
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def connector(gw, admin_headers, platform: str, secrets: dict, groups: list[str]) -> str:
    response = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/connectors", headers=admin_headers, json={
        "community_id": COMMUNITY, "platform": platform, "groups": groups, "secrets": secrets})
    assert response.status_code == 201, response.text
    return f"/webhooks/chat/{response.json()['id']}"


def tg(update_id: int, *, sender: User | None = None, text: str = "", entities=(), joined=()) -> bytes:
    message = Message(message_id=update_id, date=AT, chat=GROUP, from_user=sender, text=text or None,
                      entities=tuple(entities), new_chat_members=tuple(joined))
    return Update(update_id=update_id, message=message).to_json().encode()


def mention(text: str, name: str) -> MessageEntity:
    """A `mention` entity over "@name" in text, in UTF-16 code units as Telegram counts them."""
    start = text.index("@" + name)
    utf16 = lambda s: len(s.encode("utf-16-le")) // 2  # noqa: E731
    return MessageEntity(type=MessageEntity.MENTION, offset=utf16(text[:start]), length=utf16("@" + name))


def signed(body: dict, secret: str, webhook_id: str) -> tuple[bytes, dict]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    stamp = int(time.time())
    return raw, {"webhook-id": webhook_id, "webhook-timestamp": str(stamp), "content-type": "application/json",
                 "webhook-signature": sign_standard(secret, webhook_id, stamp, raw)}


async def test_a_message_re_sent_under_a_new_webhook_id_has_no_second_effect(gateway, admin_headers, outbox_events):
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    url = await connector(gateway, admin_headers, "generic", {"signing_secrets": [secret]}, ["g-1", "g-2"])
    homework = {"type": "message", "group_id": "g-1", "message_id": "m-1", "sender_id": "wxid_li",
                "sender_name": "李一天", "text": "作业 第一周：读书笔记", "timestamp": "2026-11-26T12:00:00Z"}

    # The issue's case: a bridge re-sends the same chat message with a new webhook-id, twice.
    answers = [await gateway.client.post(url, content=b, headers=h)
               for b, h in (signed(homework, secret, f"bridge-{n}") for n in range(3))]
    # And another message whose copies arrive together (one group commit): the first copy wins.
    copies = [signed({**homework, "message_id": "m-2", "text": "打卡"}, secret, f"burst-{n}") for n in range(6)]
    burst = await asyncio.gather(*(gateway.client.post(url, content=b, headers=h) for b, h in copies))

    assert [a.json() for a in answers] == [{"status": "accepted", "events": 1},
                                           {"status": "duplicate", "events": 0}, {"status": "duplicate", "events": 0}]
    assert sorted(a.json()["status"] for a in burst) == ["accepted"] + ["duplicate"] * 5
    events = await outbox_events(gateway.app)
    assert [(e.type, e.data["group_id"], e.data["message_id"]) for e in events] == [
        ("chat.command.issued", "generic:g-1", "m-1"), ("chat.command.issued", "generic:g-1", "m-2")]
    # The same message id in another group is another message.
    raw, headers = signed({**homework, "group_id": "g-2"}, secret, "other-group")
    assert (await gateway.client.post(url, content=raw, headers=headers)).json()["status"] == "accepted"


async def test_telegram_mention_entities_are_resolved_through_the_names_seen(gateway, admin_headers, outbox_events):
    url = await connector(gateway, admin_headers, "telegram",
                          {"bot_token": "123456:AAE-bot-token", "secret_token": TG_SECRET}, ["-1001"])
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    li = User(id=1910239988, first_name="李一天", is_bot=False, username="liyitian")
    dave = User(id=77, first_name="Dave", is_bot=False, username="dave")
    carol = User(id=88, first_name="Carol", is_bot=False, username="CarolW")

    async def send(body: bytes) -> dict:
        response = await gateway.client.post(url, content=body, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    await send(tg(1, sender=dave, text="早上好"))  # the directory learns @dave from his message
    thanks = "谢谢 @dave 👍 还有 @CAROLW 和 @nobody"  # the emoji counts two UTF-16 units
    await send(tg(2, sender=li, text=thanks, entities=[mention(thanks, "dave"), mention(thanks, "CAROLW"),
                                                         mention(thanks, "nobody")]))
    await send(tg(3, sender=li, joined=[carol]))  # Carol arrives later: her username resolves the pending one
    again = await send(tg(4, sender=li, joined=[carol]))  # seen again: nothing left to resolve
    replay = await send(tg(2, sender=li, text=thanks, entities=[mention(thanks, "dave")]))

    events = await outbox_events(gateway.app)
    posted = next(e for e in events if e.type == "chat.message.posted" and e.data["message_id"] == "2")
    assert posted.data["mentions"] == ["telegram:77"]
    (resolved,) = [e for e in events if e.type == "chat.mention.resolved"]
    assert resolved.data | {"resolved_at": None} == {
        "platform": "telegram", "group_id": "telegram:-1001", "delivery_id": "update:3", "message_id": "2",
        "sender_id": "telegram:1910239988", "mentioned_id": "telegram:88", "name": "CAROLW", "resolved_at": None}
    assert again["events"] == 1 and replay["status"] == "duplicate"


async def test_bridge_mention_names_resolve_by_group_name_and_ambiguity_is_never_guessed(
        gateway, admin_headers, outbox_events):
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    url = await connector(gateway, admin_headers, "generic", {"signing_secrets": [secret]}, ["g-1", "g-2"])
    n = iter(range(100))

    async def send(**event) -> None:
        body = {"group_id": "g-1", "timestamp": "2026-11-26T12:00:00Z", **event}
        raw, headers = signed(body, secret, f"d-{next(n)}")
        assert (await gateway.client.post(url, content=raw, headers=headers)).json()["status"] == "accepted"

    await send(type="member_joined", member_id="wxid_li", display_name="李一天")
    await send(type="member_joined", group_id="g-2", member_id="wxid_wang1", display_name="小王")
    await send(type="member_joined", group_id="g-2", member_id="wxid_wang2", display_name="小王")
    await send(type="message", message_id="m-1", sender_id="wxid_zhao", sender_name="赵六", text="@李一天 @小王 早",
               mention_names=["李一天", "@小王"])

    events = await outbox_events(gateway.app)
    posted = next(e for e in events if e.type == "chat.message.posted")
    assert posted.data["mentions"] == ["generic:wxid_li"]  # two 小王 in the community: no guess


async def test_the_issues_homework_re_sent_by_a_bridge_scores_once(platform, member_headers, eventually):
    """Embedded mode, every service: the owner's homework re-sent twice under new webhook-ids keeps its
    points; a check-in after it (same partition, so scored after the copies) adds exactly its own."""
    owner = member_headers(platform.app, "telegram:42")
    created = await platform.client.post("/api/v1/communities", headers=owner,
                                         json={"name": "增长黑客", "positioning": "每天一个增长实验"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()

    async def connected():
        answer = await platform.client.post(f"/api/v1/communities/{cid}/connectors", headers=owner, json={
            "platform": "generic", "identity_platform": "telegram", "groups": ["g-1"],
            "secrets": {"signing_secrets": [secret]}})
        return answer.json()["id"] if answer.status_code == 201 else None

    connector_id = await eventually(connected, what="the community known to the gateway", within=30)
    url = f"/webhooks/chat/{connector_id}"

    async def points() -> int:
        board = await platform.client.get(f"/api/v1/engagement/communities/{cid}/leaderboard", headers=owner)
        return next((r["points"] for r in board.json().get("data", []) if r["person_id"] == "telegram:42"), 0)

    async def send(body: dict, webhook_id: str) -> str:
        raw, headers = signed({"group_id": "g-1", "sender_id": "42", "sender_name": "群主", "type": "message",
                               **body}, secret, webhook_id)
        return (await platform.client.post(url, content=raw, headers=headers)).json()["status"]

    homework = {"message_id": "m-1", "text": "作业 第一周：注册页改版的实验记录"}
    assert await send(homework, "bridge-1") == "accepted"
    first = await eventually(lambda: _positive(points), what="the homework scored", within=30)
    assert [await send(homework, f"bridge-{n}") for n in (2, 3)] == ["duplicate", "duplicate"]
    assert await send({"message_id": "m-2", "text": "打卡 第1天"}, "bridge-4") == "accepted"
    later = await eventually(lambda: _more_than(points, first), what="the check-in scored", within=30)
    assert later - first == 5  # the check-in's own 5 points; the copies of the homework added nothing


async def _positive(points):
    value = await points()
    return value if value > 0 else None


async def _more_than(points, before: int):
    value = await points()
    return value if value > before else None


async def test_a_name_first_seen_after_the_pending_window_resolves_nothing(gateway, admin_headers, outbox_events):
    from datetime import timedelta

    from sqlalchemy import func, select

    from gateway.chatdir.directory import PENDING_DAYS
    from gateway.chatdir.models import ChatPendingMention
    from qunzhu_common.timeutil import utcnow

    url = await connector(gateway, admin_headers, "telegram",
                          {"bot_token": "123456:AAE-bot-token", "secret_token": TG_SECRET}, ["-1001"])
    async with gateway.app.state.runtime.session_maker() as session, session.begin():
        session.add(ChatPendingMention(community_id=COMMUNITY, group_id="telegram:-1001", message_id="old-1",
                                       sender_id="telegram:1", name="carolw", name_key="carolw",
                                       created_at=utcnow() - timedelta(days=PENDING_DAYS + 1)))
    carol = User(id=88, first_name="Carol", is_bot=False, username="CarolW")
    answer = await gateway.client.post(url, content=tg(1, sender=carol, joined=[carol]),
                                       headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})

    assert answer.json()["status"] == "accepted"
    assert [e.type for e in await outbox_events(gateway.app)] == ["chat.member.joined"]
    async with gateway.app.state.runtime.session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(ChatPendingMention)) == 0


async def test_a_message_whose_recall_arrived_first_never_counts(gateway, admin_headers, outbox_events):
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    url = await connector(gateway, admin_headers, "generic", {"signing_secrets": [secret]}, ["g-1"])
    homework = {"type": "message", "group_id": "g-1", "message_id": "m-9", "sender_id": "wxid_li",
                "sender_name": "李一天", "text": "作业 第一周：读书笔记", "timestamp": "2026-11-26T12:00:00Z"}
    recall = {"type": "message_recalled", "group_id": "g-1", "message_id": "m-9", "sender_id": "wxid_li",
              "timestamp": "2026-11-26T12:01:00Z"}
    recall_again = {**recall, "message_id": "m-10"}
    later = {**homework, "message_id": "m-10", "text": "打卡"}

    # A retried delivery brings the recall before its message; the message then counts for nothing.
    first = await gateway.client.post(url, content=(r := signed(recall, secret, "recall-1"))[0], headers=r[1])
    late = await gateway.client.post(url, content=(m := signed(homework, secret, "late-1"))[0], headers=m[1])
    # In the usual order the message counts and its recall follows it (engagement reverses what it earned).
    usual = [await gateway.client.post(url, content=b, headers=h)
             for b, h in (signed(later, secret, "m-10"), signed(recall_again, secret, "recall-2"))]

    assert first.json()["status"] == "accepted" and late.json()["status"] == "duplicate"
    assert [a.json()["status"] for a in usual] == ["accepted", "accepted"]
    events = [(e.type, e.data["message_id"]) for e in await outbox_events(gateway.app)]
    assert events == [("chat.message.recalled", "m-9"), ("chat.command.issued", "m-10"),
                      ("chat.message.recalled", "m-10")]
