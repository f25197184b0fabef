"""Through the real in-process bus: membership subscribes to payments, chat and engagement events and
publishes its own, keyed as the architecture says."""

from __future__ import annotations

import httpx
from conftest import OWNER, Harness, membership_settings

from membership.app import create_app
from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.envelope import Envelope
from qunzhu_common.events.topics import CHAT_ACTIONS, MEMBERSHIP_EVENTS, PAYMENTS_EVENTS


async def test_a_payment_published_on_the_bus_activates_and_the_results_are_published(
    tmp_path, bus, clock, eventually
):
    app = create_app(membership_settings(tmp_path), bus=bus, clock=clock)  # consumers and relay on
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            h = Harness(app, client, clock)
            cid = (await h.community(entry_policies=["paid"]))["id"]
            plan = await h.plan(cid)
            await h.group(cid, "g1")
            await h.join(cid, "wecom:alice")
            payment = h.payment(cid, "wecom:alice", plan["id"], 100_000, payment_id="bus-1")

            await bus.publish([OutgoingRecord(topic=PAYMENTS_EVENTS, key=cid, value=payment.to_bytes())] * 2)

            async def active() -> bool:
                return (await h.member(cid, "wecom:alice"))["status"] == "active"

            await eventually(active, what="the payment consumed from the bus")
            await h.deliver(h.refund(cid, "bus-1", 100_000))

            async def published() -> list:
                return [r for r in await bus.read_all(CHAT_ACTIONS)]

            (action,) = await eventually(published, what="the bot action on chat.actions.v1")
            assert action.key == "wecom:g1"  # keyed by group
            assert Envelope.from_bytes(action.value).data["action"] == "remove_member"
            types = [Envelope.from_bytes(r.value).type for r in await bus.read_all(MEMBERSHIP_EVENTS)
                     if r.key == cid]
            assert types.count("member.activated") == 1 and "member.removed" in types
            metrics = (await client.get("/metrics")).text
            assert ('events_consumed_total{outcome="duplicate",topic="payments.events.v1",'
                    'type="payment.succeeded"} 1.0') in metrics
    assert OWNER
