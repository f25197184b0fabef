"""Content authorizes every route itself, from the caller the gateway vouches for (issue #15).

A caller is trusted only with the gateway's assertion for exactly the request content received; its role
comes from content's own projection of membership's roles, in the community of the path content routed.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from content.app import SPEC
from content.models import Broadcast, Schedule
from qunzhu_common.actor import ACTOR_HEADER, ASSERTION_HEADER, Actor, actor_of, require_actor, sign
from qunzhu_common.testing import app_internal_key

# Who may call each route (the rule table; reads were the gateway's, writes keep content's role rules):
# "anyone" = signed in or not (the post paywall decides what each reader gets), else the least role in
# the path's community.
RULES = {
    ("GET", "/communities/{community_id}"): "member",
    ("PUT", "/communities/{community_id}/groups"): "admin",
    ("GET", "/communities/{community_id}/groups"): "admin",
    ("POST", "/communities/{community_id}/posts"): "guest",
    ("POST", "/communities/{community_id}/questions"): "member",
    ("GET", "/communities/{community_id}/posts"): "anyone",
    ("GET", "/communities/{community_id}/posts/{post_id}"): "signed-in",
    ("PATCH", "/communities/{community_id}/posts/{post_id}"): "guest",
    ("POST", "/communities/{community_id}/posts/{post_id}/publish"): "guest",
    ("POST", "/communities/{community_id}/posts/{post_id}/schedule"): "guest",
    ("POST", "/communities/{community_id}/posts/{post_id}/archive"): "guest",
    ("PUT", "/communities/{community_id}/posts/{post_id}/featured"): "admin",
    ("POST", "/communities/{community_id}/posts/{post_id}/comments"): "member",
    ("GET", "/communities/{community_id}/posts/{post_id}/comments"): "signed-in",
    ("GET", "/communities/{community_id}/content-mix"): "admin",
    ("PUT", "/communities/{community_id}/content-mix"): "admin",
    ("POST", "/communities/{community_id}/schedules"): "admin",
    ("GET", "/communities/{community_id}/schedules"): "admin",
    ("GET", "/communities/{community_id}/schedules/{schedule_id}"): "admin",
    ("POST", "/communities/{community_id}/schedules/{schedule_id}/pause"): "admin",
    ("POST", "/communities/{community_id}/schedules/{schedule_id}/resume"): "admin",
    ("DELETE", "/communities/{community_id}/schedules/{schedule_id}"): "admin",
    ("PUT", "/communities/{community_id}/schedules/{schedule_id}/end"): "admin",
    ("POST", "/communities/{community_id}/schedules/{schedule_id}/exceptions"): "admin",
    ("DELETE", "/communities/{community_id}/schedules/{schedule_id}/exceptions"): "admin",
    ("GET", "/communities/{community_id}/schedules/{schedule_id}/occurrences"): "admin",
    ("POST", "/communities/{community_id}/rituals"): "admin",
    ("GET", "/communities/{community_id}/rituals/{ritual_id}"): "admin",
    ("POST", "/communities/{community_id}/rituals/{ritual_id}/{change}"): "admin",
    ("POST", "/communities/{community_id}/digests"): "admin",
    ("POST", "/communities/{community_id}/sessions"): "admin",
    ("GET", "/communities/{community_id}/sessions"): "member",
    ("GET", "/communities/{community_id}/sessions/{session_id}"): "member",
    ("GET", "/communities/{community_id}/sessions/{session_id}/questions"): "member",
    ("POST", "/communities/{community_id}/sessions/{session_id}/cancel"): "admin",
    ("POST", "/communities/{community_id}/sessions/{session_id}/summary/approve"): "member",
    ("POST", "/communities/{community_id}/broadcasts"): "admin",
    ("GET", "/communities/{community_id}/broadcasts/{broadcast_id}"): "admin",
    ("GET", "/communities/{community_id}/broadcasts"): "admin",
}


def _who_may_call(route: APIRoute) -> str | None:
    """The rule a route's own signature states: `Anyone` (the verified optional actor), `SignedIn` (any
    verified actor) or an authorizer."""
    for dependency in route.dependant.dependencies:
        if dependency.call is actor_of:
            return "anyone"
        if dependency.call is require_actor:
            return "signed-in"
        name = getattr(dependency.call, "__name__", "")
        if name.startswith("require_"):
            return name.removeprefix("require_")
    return None


def test_every_route_says_who_may_call_it():
    declared = {
        (method, route.path): _who_may_call(route)
        for router in SPEC.routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert declared == RULES


@pytest.fixture
async def env(bus, start_content_at, seed_community, member_event, eventually, clock):
    """Communities A and B (the same staff in both, as seeded) and a person who is a member of B only."""
    async with start_content_at() as content:
        a = await seed_community(bus, content, clock, name="a", groups=1)
        b = await seed_community(bus, content, clock, name="b", groups=1)
        b_only = "wecom:b-only"
        await member_event(bus, b.id, b_only)
        await eventually(lambda: _status(b.get("", actor=b_only), 200), what="b-only projected into B")
        yield a, b, b_only


async def _status(response, expected: int) -> bool:
    return (await response).status_code == expected


def signed(app, actor: Actor, method: str, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """The headers the gateway sends for `actor` on exactly this request."""
    return sign(app_internal_key(app), actor, method=method, path=path, query=query or [])


def api_key(community_id: str, role: str, key_id: str = "k1") -> Actor:
    return Actor(id=f"apikey:{key_id}", kind="bot", scope=community_id, role=role)


async def test_an_actor_without_the_gateways_assertion_is_refused(env):
    a, _, _ = env
    app = a.content.app
    path = f"/communities/{a.id}/schedules"
    # The same request signed properly (by the test client, as the gateway would) goes through…
    assert (await a.get("/schedules", actor=a.owner)).status_code == 200
    # …but the owner's id alone, reaching content's port directly, names nobody.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as direct:
        bare = await direct.get(path, headers={ACTOR_HEADER: a.owner})
        public = await direct.get(f"/communities/{a.id}/posts", headers={ACTOR_HEADER: a.owner})
    assert bare.status_code == 401 and bare.headers["content-type"] == "application/problem+json"
    assert public.status_code == 401  # even on a public read: a claimed caller must be a vouched-for one
    forged = await a.content.client.get(path, headers={ACTOR_HEADER: a.owner, ASSERTION_HEADER: "v1.0.x.y"})
    assert forged.status_code == 401


async def test_an_assertion_for_another_request_is_refused(env):
    a, _, _ = env
    owner = Actor(id=a.owner)
    client = a.content.client
    schedules = f"/communities/{a.id}/schedules"
    # Signed for the public post list, replayed on the admin read (the dot-segment attack's shape).
    for_posts = signed(a.content.app, owner, "GET", f"/communities/{a.id}/posts")
    assert (await client.get(f"/communities/{a.id}/posts", headers=for_posts)).status_code == 200
    assert (await client.get(schedules, headers=for_posts)).status_code == 401
    # Signed for a read, used for a write of the same path.
    for_read = signed(a.content.app, owner, "GET", schedules)
    body = {"text": "x", "starts_at": (a.t0 + timedelta(days=1)).isoformat()}
    assert (await client.post(schedules, json=body, headers=for_read)).status_code == 401
    # Signed for other query parameters.
    for_kind = signed(a.content.app, owner, "GET", schedules, [("kind", "broadcast")])
    assert (await client.get(schedules, params={"kind": "ritual"}, headers=for_kind)).status_code == 401
    assert (await client.get(schedules, params={"kind": "broadcast"}, headers=for_kind)).status_code == 200
    # Claims for one person, header naming another.
    other = {**signed(a.content.app, Actor(id=a.member), "GET", schedules), ACTOR_HEADER: a.owner}
    assert (await client.get(schedules, headers=other)).status_code == 401


async def test_members_read_their_community_but_not_its_operators_tooling(env):
    a, b, b_only = env
    await a.post("/schedules", {"text": "周日分享", "starts_at": (a.t0 + timedelta(days=1)).isoformat()})
    # A member of B only is nobody in A.
    assert (await a.get("/schedules", actor=b_only)).status_code == 403
    assert (await a.get("", actor=b_only)).status_code == 403
    assert (await b.get("", actor=b_only)).status_code == 200
    # A's own member reads A, but not A's operators' tooling.
    assert (await a.get("", actor=a.member)).status_code == 200
    for admin_read in ("/schedules", "/groups", "/content-mix"):
        denied = await a.get(admin_read, actor=a.member)
        assert denied.status_code == 403, (admin_read, denied.text)
        assert (await a.get(admin_read, actor=a.admin)).status_code == 200, admin_read
    # Nobody at all: 401, not 403.
    assert (await a.get("/schedules", actor="")).status_code == 401


async def test_an_admin_api_key_acts_as_staff_in_its_community_only(env):
    a, b, _ = env
    await a.post("/schedules", {"text": "周日分享", "starts_at": (a.t0 + timedelta(days=1)).isoformat()})
    client, app = a.content.client, a.content.app
    key = api_key(a.id, "admin")

    path = f"/communities/{a.id}/schedules"
    as_key = await client.get(path, headers=signed(app, key, "GET", path))
    assert as_key.status_code == 200, as_key.text
    assert as_key.json() == (await a.get("/schedules", actor=a.owner)).json()  # what the owner sees

    b_path = f"/communities/{b.id}/schedules"
    assert (await client.get(b_path, headers=signed(app, key, "GET", b_path))).status_code == 403

    # It writes as staff there, and is recorded as itself.
    body = {"text": "今晚福利夜", "audience": {"kind": "groups", "group_ids": a.groups}}
    sent = await client.post(
        f"/communities/{a.id}/broadcasts",
        json=body,
        headers=signed(app, key, "POST", f"/communities/{a.id}/broadcasts"),
    )
    assert sent.status_code == 201, sent.text
    async with app.state.runtime.session_maker() as session:
        broadcast = await session.get(Broadcast, sent.json()["id"])
    assert broadcast.created_by == key.id
    b_broadcasts = f"/communities/{b.id}/broadcasts"
    body_b = {"text": "x", "audience": {"kind": "groups", "group_ids": b.groups}}
    assert (
        await client.post(b_broadcasts, json=body_b, headers=signed(app, key, "POST", b_broadcasts))
    ).status_code == 403

    # A member-role key reads member things, not the operators' tooling.
    member_key = api_key(a.id, "member", "k2")
    assert (await client.get(path, headers=signed(app, member_key, "GET", path))).status_code == 403
    community = f"/communities/{a.id}"
    assert (await client.get(community, headers=signed(app, member_key, "GET", community))).status_code == 200


async def test_the_platform_operator_acts_as_owner_and_is_recorded_as_itself(env):
    a, _, _ = env
    created = await a.post(
        "/schedules",
        {"text": "平台通知", "starts_at": (a.t0 + timedelta(days=1)).isoformat()},
        actor="platform-operator",
    )
    assert created.status_code == 201, created.text
    post = await a.post("/posts", {"title": "平台公告", "body_md": "…", "publish": True}, actor="platform-operator")
    assert post.status_code == 201 and post.json()["author_id"] == "platform-operator"
    async with a.content.app.state.runtime.session_maker() as session:
        schedule = (await session.execute(select(Schedule).where(Schedule.id == created.json()["id"]))).scalar_one()
    assert schedule.created_by == "platform-operator"
    assert (await a.get("/schedules", actor="platform-operator")).json() == (await a.get("/schedules")).json()


async def test_posts_are_listed_to_anyone_and_read_through_the_paywall(env):
    a, _, b_only = env
    published = await a.post("/posts", {"title": "入门", "body_md": "正文", "publish": True}, actor=a.guest)
    assert published.status_code == 201, published.text
    post_id = published.json()["id"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=a.content.app), base_url="http://t") as anonymous:
        listed = await anonymous.get(f"/communities/{a.id}/posts")
        read = await anonymous.get(f"/communities/{a.id}/posts/{post_id}")
        comments = await anonymous.get(f"/communities/{a.id}/posts/{post_id}/comments")
    assert listed.status_code == 200, listed.text
    assert listed.json() == (await a.get("/posts", actor=a.member)).json()  # the same teasers for everyone
    assert [p["id"] for p in listed.json()["data"]] == [post_id] and "body_md" not in listed.json()["data"][0]
    assert read.status_code == 401 and "WWW-Authenticate" in read.headers
    assert comments.status_code == 401
    assert (await a.get(f"/posts/{post_id}", actor=a.member)).json()["body_md"] == "正文"
    assert (await a.get(f"/posts/{post_id}", actor=b_only)).status_code == 402  # signed in, not a member of A
