"""Member figures for the owner's overview: by status, role and tier; joins, renewals, expiries; staff only."""

from __future__ import annotations

from datetime import timedelta

from conftest import OWNER

ALICE, BOB, CAROL = "wecom:alice", "wecom:bob", "wecom:carol"


async def test_member_stats_count_statuses_joins_renewals_and_expiries(h):
    community = await h.community(entry_policies=["paid"])
    cid = community["id"]
    plan = await h.plan(cid)
    for person in (ALICE, BOB):
        await h.join(cid, person)
        await h.pay(cid, person, plan["id"], plan["price_fen"])
    await h.join(cid, CAROL)  # never pays
    path = f"/communities/{cid}/member-stats"

    now = await h.ok("GET", path, OWNER)
    assert now["by_status"] == {"active": 3, "pending_payment": 1}  # the owner is an active member too
    assert (now["members"], now["live"], now["joined"], now["renewed"], now["expired"]) == (4, 3, 3, 0, 0)
    assert now["by_role"] == {"owner": 1, "member": 2}
    expires = h.clock() + timedelta(days=365)

    h.clock.advance(days=360)  # both paid terms end within the next 7 days
    soon = await h.ok("GET", path, OWNER)
    assert (soon["joined"], soon["expiring_soon"]) == (0, 2)
    await h.pay(cid, ALICE, plan["id"], plan["price_fen"])  # Alice renews, Bob does not
    renewed = await h.ok("GET", path, OWNER)
    assert (renewed["renewed"], renewed["expiring_soon"]) == (1, 1)

    h.clock.advance(days=60)
    await h.run_scheduler()
    period = {"since": (expires - timedelta(days=1)).isoformat(), "until": h.clock().isoformat()}
    later = await h.ok("GET", path, OWNER, params=period)
    assert later["expired"] == 1 and later["by_status"].get("expired") == 1, later


async def test_member_stats_are_for_staff_and_check_the_period(h):
    community = await h.community()
    cid = community["id"]
    await h.join(cid, ALICE)
    path = f"/communities/{cid}/member-stats"
    assert (await h.call("GET", path, ALICE)).status_code == 403
    assert (await h.call("GET", path)).status_code == 401
    until = h.clock()
    bad = await h.call("GET", path, OWNER, params={"since": until.isoformat(), "until": until.isoformat()})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    naive = await h.call("GET", path, OWNER, params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    for edge in ({"until": "0001-01-01T00:00:00Z"}, {"until": "9999-12-31T23:59:59Z"},
                 {"since": "0001-01-01T00:00:00Z"}, {"since": "9999-12-31T00:00:00+14:00"}):
        assert (await h.call("GET", path, OWNER, params=edge)).status_code == 422, edge  # never a 500
