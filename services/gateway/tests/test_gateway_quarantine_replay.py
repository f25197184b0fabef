"""Ops replay of a quarantined chat delivery: after the fix (here, the group mapped to the community), the
stored body is verified again with its stored headers — a day later, past the freshness window — and goes
through like a delivery; an altered stored body is refused and stays."""

from __future__ import annotations

import time

from test_gateway_chat_webhooks import COMMUNITY, message, register_generic, signed, whsec  # same folder


async def test_a_quarantined_chat_delivery_is_replayed_after_the_group_is_mapped(
    gateway, admin_headers, outbox_events, metric_value,
):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    body, headers = signed(message("早上好", group_id="g-late"), [secret], msg_id="late-1")
    first = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)
    assert first.json()["status"] == "quarantined"
    (kept,) = (await gateway.client.get("/api/v1/ops/quarantine", params={"source": f"chat:{connector}"},
                                        headers=admin_headers)).json()["data"]
    assert kept["replayable"] and "not mapped" in kept["reason"]
    replay_url = f"/api/v1/ops/quarantine/{kept['id']}/replay"

    still = await gateway.client.post(replay_url, headers=admin_headers)  # nothing fixed yet: quarantined again
    assert still.json()["status"] == "quarantined"
    (kept,) = (await gateway.client.get("/api/v1/ops/quarantine", params={"source": f"chat:{connector}"},
                                        headers=admin_headers)).json()["data"]
    assert kept["replayable"]  # kept again with what verifies it

    mapped = await gateway.client.patch(f"/api/v1/communities/{COMMUNITY}/connectors/{connector}",
                                        json={"groups": ["g-1", "g-late"]}, headers=admin_headers)
    assert mapped.status_code == 200, mapped.text
    stale = int(time.time()) - 86400  # the signature's timestamp is a day old by now: replays skip the window
    async with gateway.app.state.runtime.session_maker() as session, session.begin():
        from gateway.models import QuarantinedWebhook

        row = await session.get(QuarantinedWebhook, kept["id"])
        _, old_headers = signed(message("早上好", group_id="g-late"), [secret], msg_id="late-1", at=stale)
        row.headers = {**row.headers, "headers": {**row.headers["headers"], **{
            k: v for k, v in old_headers.items() if k.startswith("webhook-")}}}
    replayed = await gateway.client.post(f"/api/v1/ops/quarantine/{kept['id']}/replay", headers=admin_headers)
    resent = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)

    assert replayed.json() == {"status": "accepted", "events": 1, "reason": ""}
    assert resent.json()["status"] == "duplicate"  # deduplicated as usual
    (event,) = await outbox_events(gateway.app)
    assert (event.type, event.community_id, event.data["text"]) == ("chat.message.posted", COMMUNITY, "早上好")
    assert metric_value(gateway.app, "qunzhu_gateway_quarantine_replays_total", platform="generic",
                        outcome="accepted") == 1


async def test_an_altered_stored_chat_delivery_is_not_replayed(gateway, admin_headers, outbox_events):
    from gateway.models import QuarantinedWebhook

    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret], groups=("g-1", "g-2"))
    body, headers = signed({"type": "poke", "group_id": "g-1"}, [secret], msg_id="poke-1")
    assert (await gateway.client.post(f"/webhooks/chat/{connector}", content=body,
                                      headers=headers)).json()["status"] == "quarantined"
    async with gateway.app.state.runtime.session_maker() as session, session.begin():
        row = (await session.execute(__import__("sqlalchemy").select(QuarantinedWebhook))).scalar_one()
        row.payload = body.replace(b"poke", b"message")  # what someone with database access might try
        row_id = row.id

    refused = await gateway.client.post(f"/api/v1/ops/quarantine/{row_id}/replay", headers=admin_headers)

    assert (refused.status_code, refused.json()["reason"]) == (401, "signature")
    listed = (await gateway.client.get("/api/v1/ops/quarantine", headers=admin_headers)).json()
    assert [q["id"] for q in listed["data"]] == [row_id]  # a refused replay keeps it
    assert await outbox_events(gateway.app) == []
