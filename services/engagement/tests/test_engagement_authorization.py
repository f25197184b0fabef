"""Engagement authorizes every route itself (issue #15): the caller is the one the gateway vouches for,
the community the one in the path engagement received, the role the one in engagement's own projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute

from engagement.api import ROUTERS
from qunzhu_common.actor import ACTOR_HEADER, ASSERTION_HEADER, Actor, sign
from qunzhu_common.events.contracts.membership import CommunityCreated, CommunityUpdated
from qunzhu_common.testing import app_internal_key

OWNER, ADMIN, GUEST, ALICE, BOB, CAROL = (
    "telegram:owner", "telegram:admin", "telegram:guest", "telegram:alice", "telegram:bob", "telegram:carol")
T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
NEW_RULES = {"rules": {"points": {"checkin": 7}}, "effective_from": "2020-01-01T00:00:00Z"}

# Who may call each route: the rules the gateway applied alone until now (its read_guard / engagement_guard).
C = "/communities/{community_id}"
EXPECTED = {
    ("GET", C): "member",
    ("POST", C + "/replay"): "admin",
    ("GET", C + "/rules"): "member",
    ("POST", C + "/rules"): "admin",
    ("GET", C + "/members/{person_id}/points"): "member",
    ("GET", C + "/members/{person_id}/activities"): "member",
    ("GET", C + "/members/{person_id}/standing"): "member",
    ("GET", C + "/leaderboard"): "member",
    ("POST", C + "/goals"): "admin",
    ("GET", C + "/goals"): "member",
    ("GET", C + "/goals/{goal_id}"): "member",
    ("POST", C + "/challenges"): "admin",
    ("GET", C + "/challenges"): "member",
    ("GET", C + "/challenges/{challenge_id}"): "member",
    ("GET", C + "/challenges/{challenge_id}/leaderboard"): "member",
    ("GET", C + "/challenges/{challenge_id}/members/{person_id}"): "member",
    ("POST", C + "/assignments"): "admin",
    ("GET", C + "/assignments"): "member",
    ("GET", C + "/assignments/{assignment_id}"): "member",
    ("POST", C + "/assignments/{assignment_id}/submissions"): "member",
    ("GET", C + "/assignments/{assignment_id}/submissions"): "guest",
    ("POST", C + "/assignments/{assignment_id}/submissions/{submission_id}/grade"): "guest",
    ("POST", C + "/assignments/{assignment_id}/scholarships"): "admin",
    ("POST", C + "/jobs/{name}"): "admin",
    ("GET", C + "/lurkers"): "admin",
    ("GET", C + "/removal-recommendations"): "admin",
    ("GET", C + "/key-people"): "admin",
    ("GET", C + "/groups/health"): "admin",
    ("GET", C + "/groups/{group_id}/ab-candidates"): "admin",
    ("POST", C + "/lotteries"): "admin",
    ("GET", C + "/lotteries"): "member",
    ("GET", C + "/lotteries/{lottery_id}"): "member",
    ("POST", C + "/lotteries/{lottery_id}/entries"): "member",
    ("GET", C + "/lotteries/{lottery_id}/entrants"): "member",
    ("POST", C + "/lotteries/{lottery_id}/draw"): "admin",
    ("POST", C + "/polls"): "admin",
    ("GET", C + "/polls"): "member",
    ("GET", C + "/polls/{poll_id}"): "member",
    ("POST", C + "/polls/{poll_id}/votes"): "member",
    ("GET", C + "/polls/{poll_id}/results"): "member",
    ("POST", C + "/polls/{poll_id}/close"): "admin",
    ("POST", C + "/surveys"): "admin",
    ("GET", C + "/surveys"): "member",
    ("GET", C + "/surveys/{survey_id}"): "member",
    ("POST", C + "/surveys/{survey_id}/responses"): "member",
    ("GET", C + "/surveys/{survey_id}/responses"): "admin",
    ("GET", C + "/surveys/{survey_id}/export.csv"): "admin",
    ("POST", C + "/chains"): "admin",
    ("GET", C + "/chains"): "member",
    ("GET", C + "/chains/{chain_id}"): "member",
    ("POST", C + "/chains/{chain_id}/signups"): "member",
    ("POST", C + "/chains/{chain_id}/cancellations"): "member",
    ("POST", C + "/chains/{chain_id}/close"): "admin",
    ("POST", C + "/campaigns"): "admin",
    ("GET", C + "/campaigns"): "member",
    ("GET", C + "/campaigns/{campaign_id}"): "member",
    ("GET", C + "/campaigns/{campaign_id}/rewards"): "admin",
    ("POST", C + "/campaigns/{campaign_id}/rewards/{reward_id}/paid"): "admin",
    ("POST", C + "/meetups"): "admin",
    ("GET", C + "/meetups"): "member",
    ("GET", C + "/meetups/{meetup_id}"): "member",
    ("POST", C + "/meetups/{meetup_id}/registrations"): "member",
    ("POST", C + "/meetups/{meetup_id}/cancellations"): "member",
    ("POST", C + "/meetups/{meetup_id}/codes"): "admin",
    ("POST", C + "/meetups/{meetup_id}/checkins"): "member",
    ("GET", C + "/meetups/{meetup_id}/attendance"): "admin",
    ("GET", C + "/celebrations/settings"): "admin",
    ("PUT", C + "/celebrations/settings"): "admin",
    ("GET", C + "/celebrations"): "admin",
}


def _required_role(route: APIRoute) -> str | None:
    names = [d.call.__name__ for d in route.dependant.dependencies if d.call is not None]
    roles = [name.removeprefix("require_") for name in names
             if name.startswith("require_") and name != "require_actor"]
    assert len(roles) <= 1, (route.path, roles)
    return roles[0] if roles else None


def as_(person: str) -> dict[str, str]:
    return {ACTOR_HEADER: person}


def signed(engagement, actor: Actor, method: str, path: str, query: list[tuple[str, str]] | None = None):
    return sign(app_internal_key(engagement.app), actor, method=method, path=path, query=query or [])


def unsigned_client(engagement) -> httpx.AsyncClient:
    """Straight to engagement's port, bypassing the gateway: nobody signs anything."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=engagement.app), base_url="http://t")


async def two_communities(engagement) -> tuple[str, str]:
    a = await engagement.community(owner=OWNER)
    b = await engagement.community(owner="telegram:owner-b")
    await engagement.member(a, ADMIN, role="admin")
    await engagement.member(a, GUEST, role="guest")
    for person in (ALICE, BOB):
        await engagement.member(a, person)
    await engagement.member(b, CAROL)
    return a, b


async def rule_versions(engagement, cid: str) -> list[dict]:
    return (await engagement.get(f"/communities/{cid}/rules"))["versions"]


def test_every_route_says_who_may_call_it():
    routes = {(method, route.path): _required_role(route)
              for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)
              for method in route.methods}
    assert routes == EXPECTED  # every route is in a community, and needs the role the table says


async def test_a_caller_the_gateway_did_not_vouch_for_is_refused(engagement):
    a, _ = await two_communities(engagement)
    path = f"/communities/{a}/leaderboard"
    async with unsigned_client(engagement) as client:
        assert (await client.get(path)).status_code == 401  # no caller at all
        assert (await client.get(path, headers=as_(ALICE))).status_code == 401  # claimed, not signed
        assert (await client.get(path, headers=as_("platform-operator"))).status_code == 401
        forged = {ACTOR_HEADER: ALICE, ASSERTION_HEADER: "v1.1.e30.deadbeef"}
        assert (await client.get(path, headers=forged)).status_code == 401
        # Signed for another path (the gateway checked one thing, engagement is asked another): refused.
        other = signed(engagement, Actor(id=ALICE), "GET", f"/communities/{a}/rules")
        assert (await client.get(path, headers=other)).status_code == 401
        valid = signed(engagement, Actor(id=ALICE), "GET", path)
        assert (await client.get(path, headers=valid)).status_code == 200
        before = await rule_versions(engagement, a)
        assert (await client.post(f"/communities/{a}/rules", json=NEW_RULES)).status_code == 401
        assert await rule_versions(engagement, a) == before


async def test_a_member_of_one_community_cannot_write_another_communitys_rules(engagement):
    a, b = await two_communities(engagement)
    before = await rule_versions(engagement, a)
    response = await engagement.client.post(f"/communities/{a}/rules", json=NEW_RULES, headers=as_(CAROL))
    assert response.status_code == 403, response.text
    assert await rule_versions(engagement, a) == before
    # Nor can a plain member of A, nor can B's member read A at all; A's admin can write them.
    assert (await engagement.client.post(f"/communities/{a}/rules", json=NEW_RULES,
                                         headers=as_(ALICE))).status_code == 403
    assert (await engagement.client.get(f"/communities/{a}/rules", headers=as_(CAROL))).status_code == 403
    assert await rule_versions(engagement, a) == before
    response = await engagement.client.post(f"/communities/{a}/rules", json=NEW_RULES, headers=as_(ADMIN))
    assert response.status_code == 201, response.text
    assert len(await rule_versions(engagement, a)) == len(before) + 1
    assert (await engagement.client.get(f"/communities/{b}/rules", headers=as_(CAROL))).status_code == 200


async def test_operators_tooling_is_for_staff_and_leaderboards_for_members(engagement):
    a, _ = await two_communities(engagement)
    assert (await engagement.client.get(f"/communities/{a}/lurkers", headers=as_(ALICE))).status_code == 403
    assert (await engagement.client.get(f"/communities/{a}/lurkers", headers=as_(GUEST))).status_code == 403
    assert (await engagement.client.get(f"/communities/{a}/lurkers", headers=as_(ADMIN))).status_code == 200
    assert (await engagement.client.get(f"/communities/{a}/lurkers", headers=as_(OWNER))).status_code == 200
    assert (await engagement.client.get(f"/communities/{a}/leaderboard", headers=as_(ALICE))).status_code == 200
    assert (await engagement.client.get(f"/communities/{a}/leaderboard", headers=as_(CAROL))).status_code == 403
    assert (await engagement.client.get(f"/communities/{a}/leaderboard",
                                        headers=as_("telegram:stranger"))).status_code == 403


async def test_a_member_enters_a_lottery_only_as_themself(engagement):
    a, _ = await two_communities(engagement)
    lottery = await engagement.client.post(f"/communities/{a}/lotteries", json={
        "title": "周五福利夜", "closes_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert lottery.status_code == 201, lottery.text
    entries = f"/communities/{a}/lotteries/{lottery.json()['id']}/entries"

    for_bob = await engagement.client.post(entries, json={"person_id": BOB}, headers=as_(ALICE))
    assert for_bob.status_code == 403, for_bob.text
    entrants = await engagement.get(f"/communities/{a}/lotteries/{lottery.json()['id']}/entrants")
    assert entrants["entrants"] == []
    for_herself = await engagement.client.post(entries, json={"person_id": ALICE}, headers=as_(ALICE))
    assert for_herself.status_code == 201, for_herself.text
    # Staff may enter someone else (e.g. from a list taken offline); a member of B may not enter at all.
    assert (await engagement.client.post(entries, json={"person_id": BOB}, headers=as_(ADMIN))).status_code == 201
    assert (await engagement.client.post(entries, json={"person_id": CAROL},
                                         headers=as_(CAROL))).status_code == 403
    entrants = await engagement.get(f"/communities/{a}/lotteries/{lottery.json()['id']}/entrants")
    assert entrants["entrants"] == sorted([ALICE, BOB])


async def test_a_lottery_is_created_by_staff_only(engagement):
    a, _ = await two_communities(engagement)
    body = {"title": "抽奖", "closes_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "created_by": ALICE}
    assert (await engagement.client.post(f"/communities/{a}/lotteries", json=body,
                                         headers=as_(ALICE))).status_code == 403
    assert (await engagement.client.get(f"/communities/{a}/lotteries", headers=as_(ALICE))).json() == []


async def test_guests_grade_as_themselves_and_read_submissions(engagement):
    a, _ = await two_communities(engagement)
    created = await engagement.client.post(f"/communities/{a}/assignments", json={"title": "第1周", "code": "W1"},
                                           headers=as_(ADMIN))
    assert created.status_code == 201, created.text
    submissions = f"/communities/{a}/assignments/{created.json()['id']}/submissions"
    assert (await engagement.client.post(submissions, json={"person_id": BOB, "content": "代交"},
                                         headers=as_(ALICE))).status_code == 403
    mine = await engagement.client.post(submissions, json={"person_id": ALICE, "content": "我的作业"},
                                        headers=as_(ALICE))
    assert mine.status_code == 201, mine.text

    assert (await engagement.client.get(submissions, headers=as_(ALICE))).status_code == 403
    assert (await engagement.client.get(submissions, headers=as_(GUEST))).status_code == 200
    grade = f"{submissions}/{mine.json()['id']}/grade"
    assert (await engagement.client.post(grade, json={"grade": 5, "graded_by": ALICE},
                                         headers=as_(ALICE))).status_code == 403
    assert (await engagement.client.post(grade, json={"grade": 5, "graded_by": ADMIN},
                                         headers=as_(GUEST))).status_code == 403
    graded = await engagement.client.post(grade, json={"grade": 4, "graded_by": GUEST}, headers=as_(GUEST))
    assert graded.status_code == 200, graded.text
    assert graded.json()["grade"] == 4


async def test_an_api_key_acts_with_its_role_in_its_own_community_only(engagement):
    a, b = await two_communities(engagement)
    key = Actor(id="apikey:k1", kind="bot", scope=a, role="admin")
    async with unsigned_client(engagement) as client:
        path = f"/communities/{a}/replay"
        response = await client.post(path, headers=signed(engagement, key, "POST", path))
        assert response.status_code == 200, response.text
        assert response.json()["equal"] is True
        query = [("apply", "true")]
        response = await client.post(path, params=query, headers=signed(engagement, key, "POST", path, query))
        assert response.status_code == 200, response.text
        other = f"/communities/{b}/replay"
        response = await client.post(other, headers=signed(engagement, key, "POST", other))
        assert response.status_code == 403, response.text
        leaderboard = f"/communities/{b}/leaderboard"
        assert (await client.get(leaderboard, headers=signed(engagement, key, "GET", leaderboard))).status_code == 403

        member_key = Actor(id="apikey:k2", kind="bot", scope=a, role="member")
        response = await client.post(path, headers=signed(engagement, member_key, "POST", path))
        assert response.status_code == 403, response.text


@pytest.mark.parametrize("first", ["community", "member"])
async def test_the_owner_holds_the_owner_role_until_the_community_is_dissolved(engagement, first):
    """The owner is projected from community.created whatever arrived first; dissolution ends the role."""
    if first == "member":
        # A member.* event about the owner that arrives before community.created (or is newer) is kept.
        cid = "6f0c1d6e-0000-4000-8000-000000000001"
        await engagement.member(cid, OWNER, role="owner", joined_at=T0 - timedelta(days=100))
        await engagement.feed("community.created", CommunityCreated(
            community_id=cid, name="增长实验室", positioning="每天一个增长实验", owner_id=OWNER,
            created_at=T0 - timedelta(days=90)), community_id=cid)
    else:
        cid = await engagement.community(owner=OWNER)
    replay = f"/communities/{cid}/replay"
    assert (await engagement.client.post(replay, headers=as_(OWNER))).status_code == 200

    await engagement.feed("community.dissolved", CommunityUpdated(
        community_id=cid, name="增长实验室", positioning="每天一个增长实验", owner_id=OWNER, timezone="Asia/Shanghai",
        entry_policies=["free"], status="dissolved", rules_version=0, changed_at=T0,
    ), community_id=cid)
    assert (await engagement.client.post(replay, headers=as_(OWNER))).status_code == 403

