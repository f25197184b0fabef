"""People who arrive from the chat (#17): the per-community chat join/leave policy, and the owner deciding an
unpaid-join flag at any time (the grace only delays the automatic action)."""

from __future__ import annotations

import pytest
from conftest import OWNER

BOB = "wecom:bob"


async def paid_community_with_unpaid_join(h, policy: str = "remove") -> tuple[str, dict]:
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"unpaid_join_policy": policy})
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:paid-g", BOB)
    (flag,) = await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER, params={"state": "pending"})
    return cid, flag


@pytest.mark.parametrize("decision,state,removals", [("remove", "removed", 1), ("dismiss", "dismissed", 0),
                                                     ("keep", "dismissed", 0)])
async def test_the_owner_decides_a_flag_during_its_grace_and_the_sweep_then_does_nothing(h, decision, state,
                                                                                        removals):
    cid, flag = await paid_community_with_unpaid_join(h)

    decided = await h.ok("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                         json={"decision": decision})
    assert decided["state"] == state
    assert len(await h.actions("remove_member", BOB)) == removals
    (resolved,) = await h.emitted("unpaid_join.resolved")
    assert (resolved.data["flag_id"], resolved.data["state"]) == (flag["id"], state)

    h.clock.advance(minutes=16)
    assert (await h.run_scheduler())["unpaid_joins"] == 0  # the grace ended: nothing left to act on
    assert len(await h.actions("remove_member", BOB)) == removals  # exactly once
    assert await h.emitted("unpaid_join.flagged") == []
    again = await h.call("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                         json={"decision": "remove"})
    assert again.status_code == 409 and "already" in again.json()["detail"]


async def test_after_the_sweep_removed_someone_a_decision_is_409(h):
    cid, flag = await paid_community_with_unpaid_join(h)
    h.clock.advance(minutes=16)
    await h.run_scheduler()
    response = await h.call("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                            json={"decision": "dismiss"})
    assert response.status_code == 409
    assert len(await h.actions("remove_member", BOB)) == 1
