"""The orders' resources (provider clients for the channels) and background jobs: unpaid orders expire,
the providers' records are reconciled. Built in the gateway's lifespan, at app.state.orders."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import stripe
from fastapi import FastAPI, Request
from sqlalchemy import select

from gateway.models import PaymentOrder
from gateway.orders import (  # noqa: F401 - registers the channels and reconcilers
    reconcile,
    stripe_checkout,
    wechatpay_bill,
    wechatpay_pay,
)
from gateway.orders.channels import ChannelDeps, channel_of
from gateway.refunds import stripe_api, wechatpay_api
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from qunzhu_common.background import BackgroundLoop
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 100
FIRST_RECONCILIATION_AFTER_S = 600.0


@dataclass
class OrdersRuntime:
    state: GatewayState
    deps: ChannelDeps
    loops: list[BackgroundLoop] = field(default_factory=list)
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _started_reconciling: bool = False

    async def expire_due(self) -> int:
        """Mark unpaid orders past their expiry `expired` and close them at the provider."""
        sessions = self.state.runtime.session_maker
        async with sessions() as session, session.begin():
            due = list((await session.execute(
                select(PaymentOrder).where(PaymentOrder.status == "created", PaymentOrder.expires_at <= utcnow())
                .order_by(PaymentOrder.expires_at).limit(BATCH).with_for_update(skip_locked=True)
            )).scalars().all())
            for order in due:
                order.status, order.updated_at = "expired", utcnow()
        for order in due:
            self.deps.count(order, "expired")
            channel = channel_of(order.provider, order.channel)
            if channel is None:
                continue
            try:
                await channel.close(self.deps, order)
            except Exception as exc:  # noqa: BLE001 - the provider expires it anyway; log and go on
                log.warning("closing order %s at %s failed: %r", order.id, order.provider, exc)
        return len(due)

    async def _expiry_pass(self) -> float:
        return 0 if await self.expire_due() == BATCH else self.state.settings.order_expiry_interval_s

    async def reconcile(self) -> dict[str, list[reconcile.Difference]]:
        return await reconcile.run(self.state.runtime.session_maker, self.deps, self.state.metrics)

    async def _reconcile_pass(self) -> float:
        interval = self.state.settings.reconcile_interval_s
        if not self._started_reconciling:  # not at every start: the first run a while after it
            self._started_reconciling = True
            return min(interval, FIRST_RECONCILIATION_AFTER_S)
        await self.reconcile()
        return interval


def _stripe_client(settings: GatewaySettings, on_close: list) -> stripe.StripeClient | None:
    if not settings.stripe_secret_key.get_secret_value():
        return None
    http = stripe.HTTPXClient(timeout=settings.refund_timeout_s)
    on_close.append(http.close_async)
    return stripe_api.new_client(secret_key=settings.stripe_secret_key.get_secret_value(),
                                 api_base=settings.stripe_api_base, http_client=http)


def orders_lifespan(settings: GatewaySettings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.refund_timeout_s, connect=min(5.0, settings.refund_timeout_s))
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            on_close: list = []
            deps = ChannelDeps(settings=settings, http=http, metrics=app.state.gateway.metrics)
            client = _stripe_client(settings, on_close)
            if client is not None:
                deps.clients["stripe"] = client
            # The WeChat Pay merchant, or the sentence saying why there is none (its checkouts are refused).
            deps.clients[wechatpay_pay.CLIENT] = wechatpay_api.merchant_from(settings)
            orders = OrdersRuntime(state=app.state.gateway, deps=deps, on_close=on_close)
            metrics = app.state.gateway.metrics
            for provider, reconciler in reconcile.RECONCILERS.items():  # exported at 0 before the first run
                for kind in reconciler.kinds:
                    metrics.reconciliation_differences.labels(provider, kind)
                for outcome in ("ok", "failed"):
                    metrics.reconciliation_runs.labels(provider, outcome)
            orders.loops.append(BackgroundLoop("order-expiry", orders._expiry_pass, logger=log))
            orders.loops.append(BackgroundLoop("reconciliation", orders._reconcile_pass, logger=log,
                                               backoff_s=60.0, max_backoff_s=3600.0))
            app.state.orders = orders
            if settings.run_orders:
                for loop in orders.loops:
                    loop.start()
            try:
                yield
            finally:
                for loop in orders.loops:
                    await loop.stop()
                for close in on_close:
                    await close()

    return lifespan


async def orders_of(request: Request) -> OrdersRuntime:
    return request.app.state.orders  # type: ignore[no-any-return]
