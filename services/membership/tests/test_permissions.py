"""The permission matrix, enforced on every route for every role, and one community never reaching another."""

from __future__ import annotations

import itertools

import pytest

from conftest import OWNER
from membership import permissions

ROLES_IN_ORDER = ("member", "guest", "admin", "owner")  # the owner last: some actions end the community
_seq = itertools.count()


class World:
    """A free community with one person of each role, and fresh targets on demand."""

    def __init__(self, h, cid: str) -> None:
        self.h, self.cid = h, cid
        self.actors = {"owner": OWNER, "admin": "wecom:admin", "guest": "wecom:guest", "member": "wecom:member"}

    @classmethod
    async def build(cls, h, **settings):
        cid = (await h.community())["id"]
        world = cls(h, cid)
        for role in ("admin", "guest", "member"):
            await world.person(role, world.actors[role])
        if settings:
            await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json=settings)
        return world

    async def person(self, role: str, person: str | None = None) -> str:
        person = person or f"wecom:t{next(_seq)}"
        await self.h.join(self.cid, person, contact=f"wx-{person}")
        if role != "member":
            await self.h.ok("PUT", f"/communities/{self.cid}/members/{person}/role", OWNER, json={"role": role})
        return person


async def _attempt(world: World, action: str, actor: str):
    h, cid = world.h, world.cid
    c = f"/communities/{cid}"
    n = next(_seq)
    if action == "community.update":
        return await h.call("PATCH", c, actor, json={"positioning": f"新定位 {n}"})
    if action == "community.billing":
        return await h.call("POST", c + "/plans", actor, json={"name": "季卡", "price_fen": 9900,
                                                                "term_type": "fixed_duration", "duration_days": 90})
    if action == "community.dissolve":
        return await h.call("DELETE", c, actor)
    if action == "group.manage":
        return await h.call("POST", c + "/groups", actor, json={"platform": "wecom", "external_id": f"g{n}"})
    if action == "member.view":
        return await h.call("GET", c + "/members", actor)
    if action == "member.review":
        return await h.call("GET", c + "/applications", actor)
    if action.startswith("member.remove."):
        target = await world.person(action.rsplit(".", 1)[1])
        return await h.call("POST", c + f"/members/{target}/removal", actor, json={"reason": "测试"})
    if action.startswith("member.blacklist."):
        target = await world.person(action.rsplit(".", 1)[1])
        return await h.call("POST", c + f"/members/{target}/blacklist", actor, json={"reason": "测试"})
    if action == "blacklist.manage":
        return await h.call("GET", c + "/blacklist", actor)
    if action.startswith("role.grant."):
        target = await world.person("member")
        return await h.call("PUT", c + f"/members/{target}/role", actor, json={"role": action.rsplit(".", 1)[1]})
    if action.startswith("role.revoke."):
        target = await world.person(action.rsplit(".", 1)[1])
        return await h.call("PUT", c + f"/members/{target}/role", actor, json={"role": "member"})
    if action == "member.view_status":
        other = world.actors["member"] if actor != world.actors["member"] else OWNER
        return await h.call("GET", c + f"/members/{other}", actor)
    if action == "invite.create":
        return await h.call("POST", c + "/invites", actor, json={})
    if action == "invite.manage":
        return await h.call("GET", c + "/invites", actor, params={"scope": "all"})
    if action == "campaign.manage":
        return await h.call("POST", c + "/campaigns", actor, json={"kind": "member_goal", "title": "400人",
                                                                    "reward": "红包", "goal": 400})
    if action == "leaderboard.view":
        return await h.call("GET", c + "/leaderboard", actor)
    if action == "ledger.view":
        return await h.call("GET", c + "/ledger", actor)
    if action == "paywall.check":
        other = world.actors["member"] if actor != world.actors["member"] else OWNER
        return await h.call("GET", c + "/access", actor, params={"member_id": other})
    if action == "reconciliation.view":
        return await h.call("GET", c + "/unpaid-joins", actor)
    # Enforced by the content service and the gateway with this matrix: the service answers for them.
    member_id = actor
    response = await h.call("GET", c + "/authorize", actor, params={"member_id": member_id, "action": action})
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("action", list(permissions.MATRIX))
async def test_every_action_is_allowed_exactly_to_the_roles_of_the_matrix(h, action):
    world = await World.build(h)
    for role in ROLES_IN_ORDER:
        response = await _attempt(world, action, world.actors[role])
        expected = permissions.role_allows(action, role, {"member_list_visible": False, "contact_visible": False})
        if response.request.url.path.endswith("/authorize"):
            allowed = response.json()["allowed"]
        else:
            assert response.status_code in (200, 201, 204, 403), (action, role, response.text)
            allowed = response.status_code != 403
            if not allowed:
                assert response.json()["type"].endswith("permission-denied"), response.text
        assert allowed == expected, (action, role, response.status_code, response.text)


async def test_members_see_the_list_and_contacts_only_when_the_owner_opens_them(h):
    world = await World.build(h)
    member, guest = world.actors["member"], world.actors["guest"]
    path = f"/communities/{world.cid}/members"

    assert (await h.call("GET", path, member)).status_code == 403
    staff_view = {e["member_id"]: e["contact"] for e in (await h.ok("GET", path, "wecom:admin"))["data"]}
    guest_view = {e["member_id"]: e["contact"] for e in (await h.ok("GET", path, guest))["data"]}
    assert staff_view[member] == f"wx-{member}"
    assert guest_view[member] is None and guest_view[guest] == f"wx-{guest}"  # own contact only

    await h.ok("PATCH", f"/communities/{world.cid}/settings", OWNER, json={"member_list_visible": True})
    listed = {e["member_id"]: e["contact"] for e in (await h.ok("GET", path, member))["data"]}
    assert set(listed) >= {OWNER, member, guest} and listed[guest] is None

    await h.ok("PATCH", f"/communities/{world.cid}/settings", OWNER, json={"contact_visible": True})
    listed = {e["member_id"]: e["contact"] for e in (await h.ok("GET", path, member))["data"]}
    assert listed[guest] == f"wx-{guest}"


async def test_only_members_in_good_standing_act(h):
    world = await World.build(h)
    admin = world.actors["admin"]
    await h.ok("POST", f"/communities/{world.cid}/members/{admin}/removal", OWNER, json={"reason": "换人"})

    response = await h.call("GET", f"/communities/{world.cid}/applications", admin)
    stranger = await h.call("GET", f"/communities/{world.cid}/leaderboard", "wecom:stranger")

    assert response.status_code == 403 and response.json()["reason"] == "removed"
    assert stranger.status_code == 403 and stranger.json()["reason"] == "not_a_member"
    member = await h.member(world.cid, admin)
    assert (member["role"], member["status"], member["permissions"]) == ("member", "removed", [])


async def test_the_owner_is_untouchable(h):
    world = await World.build(h)
    c = f"/communities/{world.cid}/members/{OWNER}"
    for actor in (world.actors["admin"], OWNER):
        assert (await h.call("POST", c + "/removal", actor, json={"reason": "x"})).status_code == 403
        assert (await h.call("POST", c + "/blacklist", actor, json={"reason": "x"})).status_code == 403
        assert (await h.call("PUT", c + "/role", actor, json={"role": "member"})).status_code == 403


async def test_the_guest_limit_holds(h):
    world = await World.build(h)  # one guest already
    await h.ok("PATCH", f"/communities/{world.cid}/settings", OWNER, json={"guest_limit": 2})
    await world.person("guest")
    extra = await world.person("member")

    response = await h.call("PUT", f"/communities/{world.cid}/members/{extra}/role", OWNER, json={"role": "guest"})
    lower = await h.call("PATCH", f"/communities/{world.cid}/settings", OWNER, json={"guest_limit": 1})

    assert response.status_code == 409 and response.json()["type"].endswith("guest-limit-reached")
    assert lower.status_code == 409
    await h.ok("PUT", f"/communities/{world.cid}/members/{world.actors['guest']}/role", OWNER, json={"role": "member"})
    await h.ok("PUT", f"/communities/{world.cid}/members/{extra}/role", OWNER, json={"role": "guest"})


async def test_routes_need_an_actor_and_a_well_formed_one(h):
    world = await World.build(h)
    missing = await h.call("GET", f"/communities/{world.cid}/applications")
    malformed = await h.call("GET", f"/communities/{world.cid}/applications", "not a person")
    assert missing.status_code == malformed.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"


async def test_the_matrix_is_published_for_the_gateway(h):
    document = await h.ok("GET", "/permissions")
    assert document["roles"] == ["owner", "admin", "guest", "member"]
    assert document["actions"]["member.remove.admin"]["roles"] == ["owner"]
    assert document["actions"]["mention.all"]["roles"] == ["owner"]
    assert document["actions"]["content.post"]["roles"] == ["owner", "admin", "guest"]
    assert document["actions"]["content.comment"]["roles"] == ["owner", "admin", "guest", "member"]
    assert document["actions"]["member.view"]["conditional"] == {"member": "member_list_visible"}
    world = await World.build(h)
    guest = await h.member(world.cid, world.actors["guest"], actor="service:gateway")
    assert "content.post" in guest["permissions"] and "content.delete" not in guest["permissions"]


# -- isolation: a member of one community never reads or changes another's data ------------------------------

ROUTES = [
    ("PATCH", "", {"positioning": "x"}), ("DELETE", "", None), ("GET", "/settings", None),
    ("PATCH", "/settings", {"guest_limit": 3}), ("PATCH", "/ritual", {"ritual_enabled": True}),
    ("POST", "/rules", {"text": "x"}), ("POST", "/groups", {"platform": "wecom", "external_id": "iso"}),
    ("GET", "/groups", None), ("PATCH", "/groups/wecom:b-group", {"capacity": 9}),
    ("POST", "/plans", {"name": "x", "price_fen": 1, "term_type": "fixed_duration", "duration_days": 1}),
    ("PATCH", "/plans/{plan}", {"price_fen": 1}), ("GET", "/applications", None),
    ("POST", "/applications/{victim}/decision", {"decision": "approve"}), ("GET", "/members", None),
    ("GET", "/members/{victim}", None), ("PATCH", "/members/{victim}", {"display_name": "x"}),
    ("PUT", "/members/{victim}/role", {"role": "admin"}), ("POST", "/members/{victim}/removal", {"reason": "x"}),
    ("POST", "/members/{victim}/blacklist", {"reason": "x"}), ("GET", "/blacklist", None),
    ("DELETE", "/blacklist/{victim}", None), ("PUT", "/members/{victim}/groups", {"group_id": "wecom:b-group"}),
    ("GET", "/members/{victim}/referrals", None), ("GET", "/members/{victim}/payments", None),
    ("GET", "/payments", None), ("GET", "/ledger", None), ("GET", "/access?member_id={victim}", None),
    ("GET", "/authorize?member_id={victim}&action=content.post", None),
    ("POST", "/refund-requests", {"payment_id": "b-pay"}), ("GET", "/invites?scope=all", None),
    ("POST", "/invites", {}),
    ("DELETE", "/invites/{invite}", None), ("GET", "/leaderboard", None),
    ("POST", "/campaigns", {"kind": "member_goal", "title": "x", "reward": "x", "goal": 5}),
    ("GET", "/campaigns", None), ("GET", "/campaigns/{campaign}", None), ("DELETE", "/campaigns/{campaign}", None),
    ("GET", "/unpaid-joins", None), ("POST", "/unpaid-joins/{flag}/decision", {"decision": "dismiss"}),
    ("GET", "/removal-reviews", None), ("POST", "/removal-reviews/{review}/decision", {"decision": "approve"}),
    ("POST", "/trials", {"plan_id": "{plan}"}), ("GET", "/member-stats", None),
]


def test_the_isolation_table_covers_every_community_route(app):
    covered = {(m, "/communities/{community_id}" + p.split("?")[0]) for m, p, _ in ROUTES}
    normalise = {"{victim}": "{member_id}", "{plan}": "{plan_id}", "{invite}": "{invite_id}",
                 "{campaign}": "{campaign_id}", "{flag}": "{flag_id}", "{review}": "{review_id}",
                 "wecom:b-group": "{group_id}"}
    normalised = set()
    for method, path in covered:
        for a, b in normalise.items():
            path = path.replace(a, b)
        normalised.add((method, path.replace("/blacklist/{member_id}", "/blacklist/{person_id}")))
    routes = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
              if path.startswith("/communities/{community_id}")}
    public = {("GET", "/communities/{community_id}"), ("GET", "/communities/{community_id}/rules"),
              ("GET", "/communities/{community_id}/ritual"), ("GET", "/communities/{community_id}/plans"),
              ("POST", "/communities/{community_id}/join")}
    assert routes - public - normalised == set()


async def test_the_owner_of_one_community_cannot_touch_another(h):
    victim, mallory = "wecom:victim", "wecom:mallory"
    a = (await h.community(owner=mallory))["id"]
    b = (await h.community(entry_policies=["application", "paid"]))["id"]
    plan = await h.plan(b, trial_days=3)
    await h.group(b, "b-group")
    await h.join(b, victim)
    invite = await h.ok("POST", f"/communities/{b}/invites", OWNER, json={})
    campaign = await h.ok("POST", f"/communities/{b}/campaigns", OWNER,
                          json={"kind": "member_goal", "title": "t", "reward": "r", "goal": 9})
    before = len(await h.emitted(community_id=b))
    ids = {"victim": victim, "plan": plan["id"], "invite": invite["id"], "campaign": campaign["id"],
           "flag": "none", "review": "none"}

    for method, path, body in ROUTES:
        url = f"/communities/{b}" + path.format(**ids)
        if body is not None:
            body = {k: (v.format(**ids) if isinstance(v, str) else v) for k, v in body.items()}
        response = await h.call(method, url, mallory, json=body)
        # Mallory owns community a — her role there gives her nothing in b.
        assert response.status_code in (403, 404), (method, url, response.status_code, response.text)

    assert len(await h.emitted(community_id=b)) == before  # nothing changed in b
    assert (await h.member(b, victim))["status"] == "applied"
    assert (await h.ok("GET", f"/communities/{a}/members/{mallory}", mallory))["role"] == "owner"


async def test_new_staff_and_blacklist_entries_need_a_person_id(h):
    world = await World.build(h)
    role = await h.call("PUT", f"/communities/{world.cid}/members/not-a-person/role", OWNER, json={"role": "guest"})
    service = await h.call("PUT", f"/communities/{world.cid}/members/service:x/role", OWNER, json={"role": "guest"})
    blacklist = await h.call("POST", f"/communities/{world.cid}/members/nobody/blacklist", OWNER,
                             json={"reason": "x"})
    guest = await h.ok("PUT", f"/communities/{world.cid}/members/telegram:77/role", OWNER, json={"role": "guest"})
    assert (role.status_code, service.status_code, blacklist.status_code) == (422, 422, 422)
    assert (guest["role"], guest["status"]) == ("guest", "active")
