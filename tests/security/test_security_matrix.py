"""Part 4 — authorization: every operation of the gateway's route table (its aggregated OpenAPI document)
× every role (anonymous, a member of another community, member, guest, admin, owner, an admin API key),
against the expectation derived from membership's published permission matrix and the routes' own
documentation (routes.py); BOLA with real ids of another community; mass assignment on every body.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests import summary
from tests.integration.actions import bearer, owner_token
from tests.security import matrix as mx
from tests.security import routes
from tests.security.harness import Cast, SecurityStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def document(secure_stack: SecurityStack) -> dict:
    doc = httpx.get(f"{secure_stack.gateway}/openapi.json", timeout=30).json()
    assert not doc.get("x-unavailable-services"), doc.get("x-unavailable-services")
    return doc


@pytest.fixture(scope="module")
def permissions(secure_stack: SecurityStack) -> dict:
    return httpx.get(f"{secure_stack.gateway}/api/v1/membership/permissions", timeout=10).json()


def test_every_route_answers_every_role_as_the_permission_matrix_says(secure_stack, cast, document, permissions):
    with httpx.Client(timeout=30) as client:
        outcomes = mx.sweep(client, secure_stack.gateway, cast, document, permissions)
    ops = {o.op for o in outcomes}
    assert len(ops) > 100 and {o.role for o in outcomes} == set(cast.roles)
    assert {o.op.split()[1].split("/")[3] for o in outcomes} >= {"membership", "content", "engagement", "communities"}
    refused = [o for o in outcomes if not o.allowed and o.ok]
    summary.bad_inputs("unauthorized request (role matrix)", len(refused))

    unexpected = [o for o in outcomes if not o.ok]
    assert not unexpected, "\n".join(f"{o.role:9s} {o.status} {o.op} (needs {o.need})" for o in unexpected)


def test_engagement_writes_need_a_role_and_cannot_speak_for_someone_else(secure_stack, cast):
    """The hole closed in the gateway: engagement trusted any caller and the people its bodies name."""
    gw, a = secure_stack.gateway, cast.a
    base = f"{gw}/api/v1/engagement/communities/{a.id}"
    with httpx.Client(timeout=30) as client:
        made = client.post(f"{base}/assignments", headers=cast.headers["admin"],
                           json={"title": "第一周作业", "code": f"w{uuid.uuid4().hex[:4]}"})
        assert made.status_code == 201, made.text
        assignment = made.json()["id"]
        as_other = client.post(f"{base}/assignments/{assignment}/submissions", headers=cast.headers["member"],
                               json={"person_id": a.people["guest"], "content": "冒名提交"})
        own = client.post(f"{base}/assignments/{assignment}/submissions", headers=cast.headers["member"],
                          json={"person_id": a.people["member"], "content": "我的作业"})
        assert own.status_code == 201, own.text
        grade = f"{base}/assignments/{assignment}/submissions/{own.json()['id']}/grade"
        by_member = client.post(grade, headers=cast.headers["member"], json={"grade": 5, "graded_by": a.owner})
        guest_as_owner = client.post(grade, headers=cast.headers["guest"], json={"grade": 5, "graded_by": a.owner})
        outsider_rules = client.post(f"{base}/rules", headers=cast.headers["outsider"],
                                     json={"rules": {"points": {"checkin": 1000}}})
        member_replay = client.post(f"{base}/replay", headers=cast.headers["member"], params={"apply": "true"})
        graded = client.post(grade, headers=cast.headers["guest"], json={"grade": 4, "graded_by": a.people["guest"]})
    for answer in (as_other, by_member, guest_as_owner, outsider_rules, member_replay):
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert graded.status_code == 200 and graded.json()["graded_by"] == a.people["guest"], graded.text
    summary.bad_inputs("engagement write as someone else", 5)


def test_mass_assignment_is_refused_or_ignored_on_every_body(secure_stack, cast, document, permissions):
    """`role`, `tier`, `status`, `expires_at` added to every body (where it does not declare them), sent by the
    least privileged role allowed to call the route: never applied anywhere."""
    gw, a = secure_stack.gateway, cast.a
    before = _memberships(gw, cast)
    sent = 0
    with httpx.Client(timeout=30) as client:
        for op in routes.operations(document):
            if op.body_schema is None or op.key in mx.NEVER_RUN_ALLOWED or op.path == "/api/v1/communities":
                continue
            need = mx.need_of(op, permissions)
            role = next((r for r in mx.PRIVILEGE if mx.is_allowed(op, need, r) and r != "bot"), None)
            if role is None:
                continue
            values = {"community_id": a.id, "member_id": a.people["member"] if role == "member" else routes.FAKE_PERSON,
                      "person_id": a.people["member"] if role == "member" else routes.FAKE_PERSON}
            body = mx.body_for(op, document, mass_assign=True)
            response = client.request(op.method, gw + routes.fill_path(op, values), json=body,
                                      headers=cast.headers[role], params=routes.required_query(op, document, values))
            assert response.status_code < 500, (op.key, response.text)
            sent += 1
        # The direct attempts: a member on their own membership, a joiner, an owner's API key, a creator.
        me = f"{gw}/api/v1/membership/communities/{a.id}/members/{a.people['member']}"
        direct = [
            client.patch(me, headers=cast.headers["member"], json={"display_name": "me", **routes.MASS_ASSIGNED}),
            client.post(f"{gw}/api/v1/membership/communities/{a.id}/join", json={"role": "admin", "status": "active"},
                        headers=bearer(owner_token(secure_stack.data_dir, f"telegram:{uuid.uuid4().int % 10**9}"))),
            client.post(f"{gw}/api/v1/communities/{a.id}/api-keys", headers=cast.headers["owner"],
                        json={"name": "k", "kind": "bot", "role": "owner"}),
            client.post(f"{gw}/api/v1/communities", headers=cast.headers["member"],
                        json={"name": "夺权", "positioning": "x", "owner_id": a.owner}),
        ]
    assert [r.status_code for r in direct] == [422, 422, 422, 403], [r.text for r in direct]
    summary.bad_inputs("mass assignment", sent + len(direct))

    assert _memberships(gw, cast) == before
    keys = httpx.get(f"{gw}/api/v1/communities/{a.id}/api-keys", headers=cast.headers["owner"]).json()
    assert {k["role"] for k in keys} <= {"admin", "guest", "member"}
    found = asyncio.run(_sentinels(secure_stack))
    assert found == {}, f"mass-assigned values were stored: {found}"


def _memberships(gw: str, cast: Cast) -> dict:
    fields = ("role", "status", "tier", "expires_at")
    out = {}
    for person in cast.a.people.values():
        body = httpx.get(f"{gw}/api/v1/membership/communities/{cast.a.id}/members/{person}",
                         headers=cast.headers["owner"]).json()
        out[person] = {k: body.get(k) for k in fields}
    return out


async def _sentinels(stack: SecurityStack) -> dict[str, int]:
    """Rows anywhere that hold the mass-assigned tier or expiry."""
    import asyncpg

    from tests.integration.stack import SERVICES

    found = {}
    for service in SERVICES:
        conn = await asyncpg.connect(stack.postgres.url(service, driver="postgresql"))
        try:
            for row in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
                table = row["tablename"]
                count = await conn.fetchval(
                    f"SELECT count(*) FROM \"{table}\" t WHERE t::text LIKE '%mass-assigned-tier%' "
                    "OR t::text LIKE '%2099-12-31%'")
                if count:
                    found[f"{service}.{table}"] = count
        finally:
            await conn.close()
    return found


def test_ids_of_another_community_are_never_reachable(secure_stack, cast):
    """BOLA: B's owner (and A's bot key in B) names A's real resources through B's path and A's path."""
    gw, a, b = secure_stack.gateway, cast.a, cast.b
    b_owner = bearer(owner_token(secure_stack.data_dir, b.owner))
    owner_a = cast.headers["owner"]
    with httpx.Client(timeout=30) as client:
        plan = client.post(f"{gw}/api/v1/membership/communities/{a.id}/plans", headers=owner_a, json={
            "name": "年费", "price_fen": 9900, "term_type": "fixed_duration", "duration_days": 365}).json()
        post = client.post(f"{gw}/api/v1/content/communities/{a.id}/posts", headers=owner_a,
                           json={"title": "A 的精华", "body_md": "只给 A 的成员", "publish": True}).json()
        starts = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        schedule = client.post(f"{gw}/api/v1/content/communities/{a.id}/schedules", headers=owner_a,
                               json={"text": "A 的预告", "starts_at": starts}).json()
        assignment = client.post(f"{gw}/api/v1/engagement/communities/{a.id}/assignments", headers=owner_a,
                                 json={"title": "A 的作业", "code": f"a{uuid.uuid4().hex[:4]}"}).json()
        attempts = []
        for community in (b.id, a.id):  # through B's path (object of another community), through A's (no role)
            m, c, e = (f"{gw}/api/v1/{s}/communities/{community}" for s in ("membership", "content", "engagement"))
            attempts += [
                ("PATCH", f"{m}/plans/{plan['id']}", {"price_fen": 1}),
                ("PATCH", f"{c}/posts/{post['id']}", {"title": "改掉"}),
                ("POST", f"{c}/posts/{post['id']}/archive", None),
                ("DELETE", f"{c}/schedules/{schedule['id']}", None),
                ("POST", f"{e}/assignments/{assignment['id']}/scholarships", None),
                ("GET", f"{gw}/api/v1/communities/{community}/connectors/{cast.connector_id}", None),
                ("PATCH", f"{gw}/api/v1/communities/{community}/connectors/{cast.connector_id}", {"name": "x"}),
                ("DELETE", f"{gw}/api/v1/communities/{community}/connectors/{cast.connector_id}", None),
                ("DELETE", f"{gw}/api/v1/communities/{community}/api-keys/{cast.bot_key_id}", None),
            ]
        answers = [(method, url, client.request(method, url, json=body, headers=b_owner))
                   for method, url, body in attempts]
        bot_in_b = client.get(f"{gw}/api/v1/communities/{b.id}/connectors", headers=cast.headers["bot"])
        # Everything of A is as it was.
        still_plan = client.get(f"{gw}/api/v1/membership/communities/{a.id}/plans").json()
        still_post = client.get(f"{gw}/api/v1/content/communities/{a.id}/posts/{post['id']}", headers=owner_a)
        still_schedule = client.get(f"{gw}/api/v1/content/communities/{a.id}/schedules/{schedule['id']}",
                                    headers=owner_a)
        still_connector = client.get(f"{gw}/api/v1/communities/{a.id}/connectors/{cast.connector_id}",
                                     headers=owner_a)
        still_key = client.get(f"{gw}/api/v1/communities/{a.id}/connectors", headers=cast.headers["bot"])
    for method, url, answer in answers:
        assert answer.status_code in (403, 404), (method, url, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), (method, url)
    assert bot_in_b.status_code == 403
    assert [p["price_fen"] for p in still_plan if p["id"] == plan["id"]] == [9900]
    assert still_post.status_code == 200 and still_post.json()["title"] == "A 的精华"
    assert still_schedule.status_code == 200 and still_schedule.json()["status"] == "active"
    assert still_connector.status_code == 200 and still_connector.json()["name"] != "x"
    assert still_key.status_code == 200
    summary.bad_inputs("BOLA (another community's ids)", len(answers) + 1)
