"""Executes pending refunds: claim, call the provider, settle and emit.

The model is the bot-action worker: a claim moves `next_attempt_at` forward by a lease under an optimistic
check on `attempts`, so two replicas never run the same attempt and a crashed worker's claim expires. The
settlement and its `refund.submitted` / `refund.failed` event commit together, and only if the row is still
ours. A provider may be called again after a crash between its answer and our commit; the request id is its
idempotency key, so that call returns the first refund instead of making a second.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import stripe
from fastapi import FastAPI
from sqlalchemy import select, update

from gateway.models import PaymentRef, RefundOrder
from gateway.orders import notify
from gateway.refunds import stripe_api, wechatpay_api
from gateway.refunds.result import Result
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from qunzhu_common.background import BackgroundLoop
from qunzhu_common.context import correlation_id_var
from qunzhu_common.events.contracts.payments import RefundFailed, RefundSubmitted
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 50
MAX_BACKOFF_S = 3600.0


class RefundWorker:
    def __init__(self, state: GatewayState, client: httpx.AsyncClient) -> None:
        self.state = state
        self.settings: GatewaySettings = state.settings
        self.client = client
        self.stripe: stripe.StripeClient | None = None
        self._stripe_http: stripe.HTTPXClient | None = None
        self.merchant: wechatpay_api.Merchant | None = None
        self.merchant_problem = "WeChat Pay refunds are not configured: set GATEWAY_WECHATPAY_MCHID, " \
            "GATEWAY_WECHATPAY_MERCHANT_SERIAL_NO and GATEWAY_WECHATPAY_MERCHANT_PRIVATE_KEY"
        self._loop = BackgroundLoop("refunds", self._pass, logger=log, traceback=True)
        self._configure()

    def _configure(self) -> None:
        s = self.settings
        if s.stripe_secret_key.get_secret_value():
            self._stripe_http = stripe.HTTPXClient(timeout=s.refund_timeout_s)
            self.stripe = stripe_api.new_client(secret_key=s.stripe_secret_key.get_secret_value(),
                                                api_base=s.stripe_api_base, http_client=self._stripe_http)
        merchant = wechatpay_api.merchant_from(s)
        if isinstance(merchant, wechatpay_api.Merchant):
            self.merchant = merchant
        elif merchant != wechatpay_api.NOT_CONFIGURED:  # refunds fail with it; the rest of the gateway starts
            self.merchant_problem = merchant
            log.error("%s", merchant)

    @property
    def _sessions(self):
        return self.state.runtime.session_maker

    async def run_once(self) -> int:
        """One pass over the due pending refunds, oldest first; returns how many were attempted."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(RefundOrder).where(RefundOrder.status == "pending", RefundOrder.next_attempt_at <= utcnow())
                .order_by(RefundOrder.next_attempt_at, RefundOrder.request_id).limit(BATCH)
            )).scalars().all()
        attempted = 0
        for row in rows:
            attempted += await self._attempt(row)
        return attempted

    async def _attempt(self, row: RefundOrder) -> int:
        lease = timedelta(seconds=self.settings.refund_timeout_s * 3)
        async with self._sessions() as session, session.begin():
            claimed = await session.execute(update(RefundOrder).where(
                RefundOrder.request_id == row.request_id, RefundOrder.attempts == row.attempts,
                RefundOrder.status == "pending",
            ).values(attempts=row.attempts + 1, next_attempt_at=utcnow() + lease))
        if claimed.rowcount != 1:
            return 0  # another replica has it
        attempts = row.attempts + 1
        try:
            result = await self._execute(row)
        except Exception as exc:  # a bug or an unexpected answer: retried like a 5xx, then failed
            log.exception("refund %s: unexpected error", row.request_id)
            result = Result("retry", f"{row.provider}: {type(exc).__name__}: {exc}")
        final = result.outcome != "retry" or attempts >= self.settings.refund_max_attempts
        outcome = result.outcome if result.outcome != "retry" else ("failed" if final else "retried")
        if await self._settle(row, attempts, result, final=final):
            self.state.metrics.refunds.labels(row.provider, outcome).inc()
        return 1

    async def _execute(self, row: RefundOrder) -> Result:
        if row.provider == "manual":
            return Result("manual")  # the operator refunds by hand; nothing to call
        if row.provider == "stripe":
            if self.stripe is None:
                return Result("failed", "Stripe refunds are not configured: set GATEWAY_STRIPE_SECRET_KEY")
            return await stripe_api.refund(self.stripe, row)
        if row.provider == "wechatpay":
            if self.merchant is None:
                return Result("failed", self.merchant_problem)
            async with self._sessions() as session:  # read, released before the call
                ref = await session.get(PaymentRef, row.payment_id)
                order = None if ref is not None else await notify.find_order(
                    session, "wechatpay", provider_payment_id=row.payment_id)  # refunded after a review
            # WeChat Pay wants the order's total; a refund of a payment we never saw is taken as full.
            total = ref.amount_fen if ref is not None and ref.amount_fen else (
                order.paid_amount_fen if order is not None and order.paid_amount_fen else row.amount_fen)
            return await wechatpay_api.refund(self.client, self.merchant, row, total_fen=total)
        return Result("failed", f"unknown payment provider {row.provider!r}")

    async def _settle(self, row: RefundOrder, attempts: int, result: Result, *, final: bool) -> bool:
        """Write the attempt's fate (and the event, when final); False if the row is no longer ours."""
        now = utcnow()
        mine = (RefundOrder.request_id == row.request_id, RefundOrder.attempts == attempts,
                RefundOrder.status == "pending")
        token = correlation_id_var.set(f"refund:{row.request_id}"[:200])
        try:
            async with self._sessions() as session, session.begin():
                if not final:
                    backoff = self.settings.refund_backoff_s * 2 ** (attempts - 1) * (1 + random.random() / 4)
                    delay = min(MAX_BACKOFF_S, max(backoff, result.retry_after_s or 0.0))
                    changed = await session.execute(update(RefundOrder).where(*mine).values(
                        next_attempt_at=now + timedelta(seconds=delay), last_error=result.error[:2000]))
                    return changed.rowcount == 1
                status = "failed" if result.outcome == "retry" else result.outcome
                changed = await session.execute(update(RefundOrder).where(*mine).values(
                    status=status, settled_at=now, last_error=result.error[:2000],
                    provider_refund_id=result.refund_id))
                if changed.rowcount != 1:
                    return False
                common = dict(request_id=row.request_id, payment_id=row.payment_id, provider=row.provider,
                              amount_fen=row.amount_fen, currency=row.currency, attempts=attempts)
                if status == "failed":
                    await self.state.runtime.outbox.emit(
                        session, type="refund.failed", community_id=row.community_id,
                        data=RefundFailed(**common, reason=result.error[:2000] or "unknown error", failed_at=now))
                else:
                    await self.state.runtime.outbox.emit(
                        session, type="refund.submitted", community_id=row.community_id,
                        data=RefundSubmitted(**common, outcome=status, refund_id=result.refund_id,
                                             submitted_at=now))
        finally:
            correlation_id_var.reset(token)
        if status == "failed":
            log.warning("refund %s of payment %s failed after %d attempts: %s", row.request_id, row.payment_id,
                        attempts, result.error)
        return True

    async def _pass(self) -> float:
        return 0 if await self.run_once() else self.settings.refund_poll_interval_s

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._stripe_http is not None:
            await self._stripe_http.close_async()


def refunds_lifespan(settings: GatewaySettings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.refund_timeout_s, connect=min(5.0, settings.refund_timeout_s))
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            worker = RefundWorker(app.state.gateway, client)
            app.state.refund_worker = worker
            if settings.run_refunds:
                worker.start()
            try:
                yield
            finally:
                await worker.stop()

    return lifespan
