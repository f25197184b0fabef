"""refund.requested → a refund_order row (the request id is the idempotency key); the worker runs it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import RefundOrder
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.events.contracts.membership import RefundRequested
from qunzhu_common.inbox import Event, Handler
from qunzhu_common.timeutil import utcnow


async def on_refund_requested(session: AsyncSession, event: Event[RefundRequested]) -> None:
    # The same request id asked twice (two events, a replayed outbox) is one row, so one refund.
    data = event.data
    await insert_if_absent(session, RefundOrder.__table__, dict(  # type: ignore[attr-defined]
        request_id=data.request_id, community_id=data.community_id or event.community_id,
        payment_id=data.payment_id, provider=data.provider, amount_fen=data.amount_fen,
        currency=data.currency.upper(), reason_code=data.reason_code, reason=data.reason, status="pending",
        attempts=0, next_attempt_at=utcnow(), last_error="", provider_refund_id=None, created_at=utcnow(),
        settled_at=None,
    ))


HANDLERS: dict[str, Handler] = {"refund.requested": on_refund_requested}
