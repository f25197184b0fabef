"""Chat groups created and dismissed on the platform (#17): chat.group.created registers the chat as a group of
the community the gateway mapped it to; chat.group.dismissed archives the group, releases its seats and clears
its unpaid-join flags — each exactly once."""

from __future__ import annotations

import uuid

from conftest import OWNER
from qunzhu_common.events.contracts.chat import ChatGroupCreated, ChatGroupDismissed


def created(group_id: str, h) -> ChatGroupCreated:
    return ChatGroupCreated(platform="wecom", group_id=group_id, delivery_id=uuid.uuid4().hex, created_at=h.clock())


def dismissed(group_id: str, h) -> ChatGroupDismissed:
    return ChatGroupDismissed(platform="wecom", group_id=group_id, delivery_id=uuid.uuid4().hex,
                              dismissed_at=h.clock())


async def groups(h, cid: str) -> dict[str, dict]:
    listed = await h.ok("GET", f"/communities/{cid}/groups", OWNER)
    return {g["id"]: g for g in (listed["data"] if isinstance(listed, dict) else listed)}


async def test_a_created_chat_becomes_a_group_of_its_community_once(h):
    cid = (await h.community())["id"]
    await h.join(cid, "wecom:alice")  # no group yet: she waits for a seat

    await h.send("chat.group.created", created("wecom:wrChat01", h), cid)
    await h.send("chat.group.created", created("wecom:wrChat01", h), cid)  # re-sent under a new delivery

    group = (await groups(h, cid))["wecom:wrChat01"]
    assert (group["active"], group["role"], group["paid"], group["member_count"]) == (True, "A", False, 1)
    assert [e.data["group_id"] for e in await h.emitted("group.registered", cid)] == ["wecom:wrChat01"]
    other = (await h.community())["id"]
    await h.send("chat.group.created", created("wecom:wrChat01", h), other)  # another community's: not moved
    assert "wecom:wrChat01" not in await groups(h, other)


async def test_a_dismissed_group_is_archived_its_seats_released_and_its_members_seated_elsewhere(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.group(cid, "g-1", capacity=5)
    await h.group(cid, "g-2", capacity=5)
    await h.chat_join(cid, "wecom:g-1", "wecom:stranger")  # an unpaid join: flagged
    assert await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER, params={"state": "pending"})

    await h.send("chat.group.dismissed", dismissed("wecom:g-1", h), cid)
    await h.send("chat.group.dismissed", dismissed("wecom:g-1", h), cid)  # once

    listed = await groups(h, cid)
    assert (listed["wecom:g-1"]["active"], listed["wecom:g-1"]["member_count"]) == (False, 0)
    updates = [e.data for e in await h.emitted("group.updated", cid)]
    assert [(u["group_id"], u["active"]) for u in updates] == [("wecom:g-1", False)]
    assert not await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER, params={"state": "pending"})
    await h.send("chat.group.dismissed", dismissed("wecom:g-2", h), (await h.community())["id"])  # not its group
    assert (await groups(h, cid))["wecom:g-2"]["active"] is True


async def test_members_of_a_dismissed_group_get_a_seat_in_another_open_group(h):
    cid = (await h.community())["id"]
    await h.group(cid, "g-1", capacity=5)
    await h.join(cid, "wecom:alice")
    assert (await groups(h, cid))["wecom:g-1"]["member_count"] == 1
    await h.group(cid, "g-2", capacity=5)

    await h.send("chat.group.dismissed", dismissed("wecom:g-1", h), cid)

    listed = await groups(h, cid)
    assert (listed["wecom:g-1"]["member_count"], listed["wecom:g-2"]["member_count"]) == (0, 1)
    reasons = [e.data["reason"] for e in await h.emitted("member.groups_changed", cid)
               if e.data["member_id"] == "wecom:alice"]
    assert reasons[-2].startswith("wecom:g-1 dismissed") and reasons[-1] == "assigned to wecom:g-2"
