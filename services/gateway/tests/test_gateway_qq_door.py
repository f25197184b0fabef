"""The QQ door follows the community's own chat_join_policy (#17 follow-up), read from the gateway's projection of
community and group events — so a replayed join request is decided the same way, with no question to membership."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import test_gateway_qq as qq  # same folder
from test_gateway_qq import COMMUNITY, GROUP, base, checked, member, onebot_connector, post_onebot, settled

from qunzhu_common.events.contracts.membership import CommunityUpdated, GroupChanged, MemberChanged

gw, stand_in = qq.gw, qq.stand_in  # its fixtures

T0 = datetime(2026, 12, 1, tzinfo=UTC)


async def community(gw, publish, eventually, policy: str | None, entry: list[str], at: datetime) -> None:
    from gateway.models import CommunityDoor

    await publish(gw.app, "community.updated", CommunityUpdated(
        community_id=COMMUNITY, name="QQ 群", positioning="学习", owner_id="qq:1", timezone="Asia/Shanghai",
        entry_policies=entry, status="active", rules_version=0, chat_join_policy=policy, changed_at=at), COMMUNITY)

    async def projected():
        async with gw.app.state.runtime.session_maker() as session:
            row = await session.get(CommunityDoor, COMMUNITY)
            return row is not None and row.changed_at == at

    await eventually(projected, what=f"policy {policy} projected")


def ask(user_id: int, flag: str, group: str = GROUP) -> bytes:
    return checked(base("request", request_type="group", sub_type="add", group_id=int(group), user_id=user_id,
                        comment="", flag=flag))


async def decisions(gw, outbox_events) -> dict[str, tuple[bool, str]]:
    return {e.data["join_flag"]: (e.data["approve"], e.data["reason"])
            for e in await outbox_events(gw.app) if e.type == "chat.action.requested"}


async def test_the_door_follows_the_chat_join_policy_and_the_member_statuses(
        tmp_path, standalone_gateway, stand_in, admin_headers, publish, outbox_events, eventually, metric_value):
    asked: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, json={"id": COMMUNITY, "entry_policies": ["free"]})

    async with standalone_gateway(tmp_path, respond=respond, action_backoff_s=0.01, qq_api_base=stand_in.url,
                                  join_checkout_url_template="https://qunzhu.example/c/{community_id}/join") as gw:
        connector_id = await onebot_connector(gw, admin_headers, stand_in)
        link = f"https://qunzhu.example/c/{COMMUNITY}/join"
        for person, status in (("qq:40001", "paused"), ("qq:40003", "blacklisted"), ("qq:40005", "removed"),
                               ("qq:40008", "active")):
            await member(gw, publish, eventually, person, status)

        # flag (a paid community): the paused member comes back, a stranger is sent to checkout
        await community(gw, publish, eventually, "flag", ["paid"], T0)
        for user, flag in ((40001, "f-paused"), (40002, "f-stranger"), (40003, "f-black")):
            assert (await post_onebot(gw, connector_id, ask(user, flag))).json()["events"] == 1
        # admit (a free community): strangers in, the removed (unless for leaving every group: they may come
        # back, as membership readmits them) and the blacklisted not
        await publish(gw.app, "member.removed", MemberChanged(
            community_id=COMMUNITY, member_id="qq:40010", role="member", status="removed",
            reason="left every chat group", changed_at=datetime.now(UTC)), COMMUNITY)
        await member(gw, publish, eventually, "qq:49998", "active")  # consumed after the removal
        await community(gw, publish, eventually, "admit", ["free"], T0 + timedelta(minutes=1))
        for user, flag in ((40004, "f-admit"), (40005, "f-removed"), (40003, "f-black-2"), (40010, "f-left")):
            assert (await post_onebot(gw, connector_id, ask(user, flag))).json()["events"] == 1
        # … but admit never opens a paid group (membership flags such a joiner): its door stays the paywall
        await publish(gw.app, "group.updated", GroupChanged(
            community_id=COMMUNITY, group_id=f"qq:{GROUP}", platform="qq", external_id=GROUP, capacity=500,
            role="B", paid=True, changed_at=T0), COMMUNITY)

        async def paid_projected():
            from gateway.models import DoorGroup

            async with gw.app.state.runtime.session_maker() as session:
                row = await session.get(DoorGroup, f"qq:{GROUP}")
                return row is not None and row.paid

        await eventually(paid_projected, what="paid group projected")
        assert (await post_onebot(gw, connector_id, ask(40006, "f-paid-group"))).json()["events"] == 1
        # ignore: a stranger's request is left to the group's admins; members still get in
        await community(gw, publish, eventually, "ignore", ["paid"], T0 + timedelta(minutes=2))
        assert (await post_onebot(gw, connector_id, ask(40007, "f-ignored"))).json() == {
            "status": "ignored", "events": 0}
        assert (await post_onebot(gw, connector_id, ask(40008, "f-member"))).json()["events"] == 1
        # an older community event arriving late changes nothing
        await publish(gw.app, "community.updated", CommunityUpdated(
            community_id=COMMUNITY, name="QQ 群", positioning="学习", owner_id="qq:1", timezone="Asia/Shanghai",
            entry_policies=["free"], status="active", rules_version=0, chat_join_policy="admit", changed_at=T0),
            COMMUNITY)
        await member(gw, publish, eventually, "qq:49999", "active")  # the late event was consumed before this one
        assert (await post_onebot(gw, connector_id, ask(40009, "f-ignored-2"))).json()["status"] == "ignored"

        got = await decisions(gw, outbox_events)
        assert {flag: approve for flag, (approve, _) in got.items()} == {
            "f-paused": True, "f-stranger": False, "f-black": False, "f-admit": True, "f-removed": False,
            "f-black-2": False, "f-left": True, "f-paid-group": False, "f-member": True}
        assert got["f-stranger"][1].endswith(link) and got["f-paid-group"][1].endswith(link)
        assert got["f-black"][1] == "你不能加入这个群。"
        assert not [p for p in asked if p.startswith("/communities/")]  # the projection decided every one
        await settled(gw, outbox_events, eventually, 9)
        calls = {c["flag"]: c["approve"] for c in stand_in.onebot("set_group_add_request")}
        assert "f-ignored" not in calls and calls["f-paused"] is True and calls["f-admit"] is True
        for why, decision, count in (("member", "approved", 2), ("admit_policy", "approved", 2),
                                     ("paid_group", "refused", 1), ("ignore_policy", "undecided", 2),
                                     ("no_membership", "refused", 1)):
            assert metric_value(gw.app, "qunzhu_gateway_join_requests_total", platform="onebot",
                                decision=decision, why=why) == count, why


async def test_a_replayed_join_request_is_decided_from_the_projection(
        gw, admin_headers, stand_in, publish, outbox_events, eventually):
    connector_id = await onebot_connector(gw, admin_headers, stand_in)
    await community(gw, publish, eventually, "admit", ["free"], T0)
    late = "736190002"
    assert (await post_onebot(gw, connector_id, ask(50001, "f-late", group=late))).json()["status"] == "quarantined"
    (kept,) = (await gw.client.get("/api/v1/ops/quarantine", params={"source": f"chat:{connector_id}"},
                                   headers=admin_headers)).json()["data"]
    mapped = await gw.client.patch(f"/api/v1/communities/{COMMUNITY}/connectors/{connector_id}",
                                   json={"groups": [GROUP, late]}, headers=admin_headers)
    assert mapped.status_code == 200, mapped.text

    replayed = await gw.client.post(f"/api/v1/ops/quarantine/{kept['id']}/replay", headers=admin_headers)

    assert replayed.json()["status"] == "accepted", replayed.text
    assert (await decisions(gw, outbox_events)) == {"f-late": (True, "")}  # admitted, as a live request would be
