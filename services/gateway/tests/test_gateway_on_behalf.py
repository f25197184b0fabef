"""Operator keys acting on behalf of a community's owner (#17 part 7): `X-On-Behalf-Of: <person id>` with
the platform operator's key or an operator API key. The services see that person (their own rights apply,
nothing more) and what is recorded names both: `<key> for <person>`."""

from __future__ import annotations

import sqlite3

import pytest

from qunzhu.embedded import embedded_platform
from qunzhu_common import actor as actors
from qunzhu_common.errors import Unauthorized
from qunzhu_common.testing import serving

OPERATOR_KEY = "operator-key-for-on-behalf-tests"
OWNER, STRANGER = "telegram:42", "telegram:99"


@pytest.fixture
async def gw(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_ADMIN_API_KEY", OPERATOR_KEY)
    async with embedded_platform(tmp_path) as app, serving(app, base_url="http://gw") as client:
        yield app, client


def operator(person: str | None = OWNER, key: str = OPERATOR_KEY) -> dict[str, str]:
    headers = {"X-API-Key": key}
    if person is not None:
        headers["X-On-Behalf-Of"] = person
    return headers


async def projected_owner(app, community_id: str, eventually) -> None:
    from gateway.models import MemberRole

    async def projected():
        async with app.state.runtime.session_maker() as session:
            return await session.get(MemberRole, (community_id, OWNER)) is not None

    await eventually(projected, what="the owner projected in the gateway")


async def test_the_quick_start_setup_done_by_the_operator_for_the_owner(gw, eventually, member_headers,
                                                                          tmp_path):
    app, client = gw
    created = await client.post("/api/v1/communities", headers=operator(),
                                json={"name": "增长黑客", "positioning": "每天一个增长实验"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["owner_id"] == OWNER  # the person named, as if they had created it themselves
    await projected_owner(app, cid, eventually)

    # Without X-On-Behalf-Of the operator key is not a person: the quick start used to stop here.
    bare = await client.post(f"/api/v1/membership/communities/{cid}/plans", headers=operator(None),
                             json={"name": "年费", "price_fen": 36500, "term_type": "fixed_duration",
                                   "duration_days": 365})
    assert bare.status_code == 403, bare.text

    group = await client.post(f"/api/v1/membership/communities/{cid}/groups", headers=operator(),
                              json={"platform": "telegram", "external_id": "-1001"})
    assert group.status_code == 201, group.text
    plan = await client.post(f"/api/v1/membership/communities/{cid}/plans", headers=operator(),
                             json={"name": "年费", "price_fen": 36500, "term_type": "fixed_duration",
                                   "duration_days": 365})
    assert plan.status_code == 201, plan.text
    connector = await client.post(f"/api/v1/communities/{cid}/connectors", headers=operator(), json={
        "community_id": cid, "platform": "telegram", "groups": ["-1001"],
        "secrets": {"bot_token": "555:connector-bot", "secret_token": "s" * 20}})
    assert connector.status_code == 201, connector.text

    # An operator API key the owner's back office keeps: it acts for the owner too, recorded by its id.
    key = await client.post(f"/api/v1/communities/{cid}/api-keys", headers=operator(),
                            json={"name": "back office", "kind": "operator"})
    assert key.status_code == 201, key.text
    assert key.json()["created_by"] == f"platform-operator for {OWNER}"
    api_key, key_id = key.json()["key"], key.json()["id"]
    rules = await client.post(f"/api/v1/membership/communities/{cid}/rules", headers=operator(key=api_key),
                              json={"text": "1. 不发广告"})
    assert rules.status_code == 201, rules.text
    with sqlite3.connect(tmp_path / "membership.sqlite3") as db:  # membership's audit of who published
        assert db.execute("SELECT published_by FROM community_rules WHERE community_id = ?", (cid,)).fetchall() == [
            (f"apikey:{key_id} for {OWNER}",)]
    async def content_group_registered():  # content authorizes from its own copy of the owner's role
        response = await client.put(f"/api/v1/content/communities/{cid}/groups", headers=operator(key=api_key),
                                    json={"group_id": "telegram:-1001"})
        return response.status_code == 200
    await eventually(content_group_registered, what="the group registered in content for the owner")
    listed = await client.get(f"/api/v1/membership/communities/{cid}/plans", headers=operator(key=api_key))
    assert [p["name"] for p in listed.json()] == ["年费"]

    from sqlalchemy import select

    from gateway.models import Connector

    async with app.state.runtime.session_maker() as session:
        (row,) = (await session.execute(select(Connector).where(Connector.community_id == cid))).scalars().all()
    assert row.created_by == f"platform-operator for {OWNER}"

    # Someone who is not staff there: through the platform key, exactly the 403 they would get themselves.
    body = {"name": "月费", "price_fen": 3000, "term_type": "fixed_duration", "duration_days": 30}
    plans = f"/api/v1/membership/communities/{cid}/plans"
    as_them = await client.post(plans, headers=member_headers(app, STRANGER), json=body)
    for_them = await client.post(plans, headers=operator(STRANGER), json=body)
    assert as_them.status_code == for_them.status_code == 403
    assert as_them.json()["detail"] == for_them.json()["detail"]
    # An operator API key acts only for its community's staff.
    refused = await client.post(plans, headers=operator(STRANGER, key=api_key), json=body)
    assert refused.status_code == 403 and STRANGER in refused.json()["detail"]
    other = await client.get("/api/v1/membership/communities/elsewhere/plans", headers=operator(key=api_key))
    assert other.status_code == 403


async def test_only_operator_keys_act_on_behalf_and_only_of_a_person(gw, eventually, member_headers):
    app, client = gw
    cid = (await client.post("/api/v1/communities", headers=operator(),
                             json={"name": "晨读营", "positioning": "每天读十页"})).json()["id"]
    await projected_owner(app, cid, eventually)
    bot = (await client.post(f"/api/v1/communities/{cid}/api-keys", headers=operator(),
                             json={"name": "bot", "kind": "bot"})).json()["key"]

    plans = f"/api/v1/membership/communities/{cid}/plans"
    as_bot = await client.get(plans, headers={"X-API-Key": bot, "X-On-Behalf-Of": OWNER})
    as_member = await client.get(plans, headers={**member_headers(app, STRANGER), "X-On-Behalf-Of": OWNER})
    assert as_bot.status_code == as_member.status_code == 403
    assert as_bot.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.get(plans, headers={"X-On-Behalf-Of": OWNER})
    assert anonymous.status_code == 401
    for bad in ["apikey:abc", "service:membership", "platform-operator", "nobody", "telegram:" + "9" * 200, ""]:
        response = await client.get(plans, headers=operator(bad))
        assert response.status_code == 422, (bad, response.status_code, response.text)


def test_the_assertion_carries_the_acting_key_under_its_mac():
    key = b"k" * 32
    acting = actors.Actor(id=OWNER, via="apikey:abc123")
    headers = actors.sign(key, acting, method="POST", path="/communities/c/plans", query=[])
    verified = actors.verify(key, actor_id=headers[actors.ACTOR_HEADER], assertion=headers[actors.ASSERTION_HEADER],
                             method="POST", path="/communities/c/plans", query=[])
    assert verified == acting and verified.recorded_as == f"apikey:abc123 for {OWNER}"

    # Dropping or changing the claim breaks the MAC: a service never records someone else's key.
    version, issued, _payload, mac = headers[actors.ASSERTION_HEADER].split(".")
    forged = actors.sign(key, actors.Actor(id=OWNER), method="POST", path="/communities/c/plans", query=[])
    swapped = ".".join([version, issued, forged[actors.ASSERTION_HEADER].split(".")[2], mac])
    with pytest.raises(Unauthorized):
        actors.verify(key, actor_id=OWNER, assertion=swapped, method="POST", path="/communities/c/plans", query=[])
    # Only a person may be acted for, and only by an operator credential.
    for bad in (actors.Actor(id="apikey:x", kind="operator", via="platform-operator"),
                actors.Actor(id=OWNER, via="telegram:1")):
        signed = actors.sign(key, bad, method="GET", path="/", query=[])
        with pytest.raises(Unauthorized):
            actors.verify(key, actor_id=bad.id, assertion=signed[actors.ASSERTION_HEADER], method="GET", path="/",
                          query=[])
