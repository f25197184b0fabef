"""Issue #15: a request is constrained exactly as the event it causes, so what the contract would refuse is a
422 problem at the door (never a 500 when the outbox row is written), and nothing is written.

- campaign `group_id` → campaign.changed (`GroupId`); seat `group_id` → member.groups_changed (`GroupId`);
- the blacklisted person in the path → blacklist.changed (`PersonId`, at most 200 characters);
- removal, blacklist, application and refund reasons → member.*, blacklist.changed, refund.requested (500).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from membership.models.base import metadata
from qunzhu_common.testing_contracts import identity_fields_off_contract

OWNER = "wecom:owner"
ALICE = "wecom:alice"
GROUP = "wecom:g"
BAD_GROUPS = ["g", "WeCom:g", "wecom:", "wecom:" + "g" * 200]
BAD_PEOPLE = ["alice", "wecom:a b", "WeCom:alice", "wecom:a\u0085b", "wecom:" + "1" * 200,
              "abcdefghijklmnopqrstuvwxyz:" + "1" * 180]  # the platform prefix makes it 207 characters
TOO_LONG = "因" * 501  # every reason the events carry is at most 500 characters

# (method, path under the community, body with the value in `field`); `{member}` is a member of it.
CASES = {
    "campaign group": ("POST", "/campaigns", {"kind": "member_goal", "title": "群满 5 人", "reward": "¥500 红包",
                                               "goal": 5}, "group_id", BAD_GROUPS),
    "seat group": ("PUT", "/members/{member}/groups", {}, "group_id", BAD_GROUPS),
    "removal reason": ("POST", "/members/{member}/removal", {}, "reason", [TOO_LONG]),
    "blacklist reason": ("POST", "/members/{member}/blacklist", {}, "reason", [TOO_LONG]),
    "application reason": ("POST", "/applications/{member}/decision", {"decision": "reject"}, "reason", [TOO_LONG]),
    "refund reason": ("POST", "/refund-requests", {"payment_id": "pay-1"}, "reason", [TOO_LONG]),
}
PARAMS = [pytest.param(name, bad, id=f"{name}-{n}") for name, case in CASES.items() for n, bad in enumerate(case[4])]


async def _counts(h) -> dict[str, int]:
    """Rows per table, outbox included: a refused request leaves every one unchanged."""
    async with h.runtime.session_maker() as session:
        return {t.name: await session.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def _assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in map(str, error["loc"]) for error in response.json()["errors"]), response.text


async def _community(h) -> str:
    cid = (await h.community())["id"]
    await h.group(cid, "g")
    await h.join(cid, ALICE)
    return cid


def test_every_request_field_naming_a_person_or_group_has_the_contract_type(app):
    assert identity_fields_off_contract(app.openapi()) == []


@pytest.mark.parametrize(("name", "bad"), PARAMS)
async def test_a_body_the_events_would_refuse_is_a_422_and_nothing_is_written(h, name, bad):
    method, path, body, field, _ = CASES[name]
    cid = await _community(h)
    url = f"/communities/{cid}" + path.format(member=ALICE)
    actor = ALICE if name == "refund reason" else OWNER
    before = await _counts(h)
    _assert_refused(await h.call(method, url, actor, json={**body, field: bad}), field)
    assert await _counts(h) == before


@pytest.mark.parametrize("bad", BAD_PEOPLE)
async def test_blacklisting_a_person_id_the_events_would_refuse_is_a_422_and_nothing_is_written(h, bad):
    cid = await _community(h)
    before = await _counts(h)
    _assert_refused(await h.call("POST", f"/communities/{cid}/members/{bad}/blacklist", OWNER,
                                 json={"reason": "广告"}), "member_id")
    assert await _counts(h) == before


async def test_the_contract_values_are_accepted(h):
    cid = await _community(h)
    campaign = await h.ok("POST", f"/communities/{cid}/campaigns", OWNER, status=201, json={
        "kind": "member_goal", "title": "群满 5 人", "reward": "¥500 红包", "goal": 5, "group_id": GROUP})
    assert campaign["group_id"] == GROUP
    seated = await h.ok("PUT", f"/communities/{cid}/members/{ALICE}/groups", OWNER, json={"group_id": GROUP})
    assert seated["member_id"] == ALICE
    await h.ok("POST", f"/communities/{cid}/members/wecom:{'1' * 190}/blacklist", OWNER, status=204,
               json={"reason": "因" * 500})
    removed = await h.ok("POST", f"/communities/{cid}/members/{ALICE}/removal", OWNER, json={"reason": "因" * 500})
    assert removed["status"] == "removed"
    assert [e.data["reason"] for e in await h.emitted("member.removed")] == ["因" * 500]


async def test_granting_a_role_to_a_person_id_longer_than_the_contract_is_a_422_and_nothing_is_written(h):
    # The role route creates the staff membership (member.role_changed carries it as a PersonId ≤ 200).
    cid = await _community(h)
    before = await _counts(h)
    response = await h.call("PUT", f"/communities/{cid}/members/{BAD_PEOPLE[-1]}/role", OWNER, json={"role": "guest"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert await _counts(h) == before
