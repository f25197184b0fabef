"""The Stripe channel: a Checkout Session (mode=payment) through the official library.

The order id is the session's client_reference_id and, with the community, plan and payer, its metadata
and the PaymentIntent's (`payment_intent_data.metadata`): Checkout copies neither to the PaymentIntent or
the Charge by itself. The session's Idempotency-Key is derived from the order id, so a retried checkout
gets the same session back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import stripe

from gateway.models import PaymentOrder
from gateway.orders.channels import ChannelDeps, Checkout, Opened, ProviderRefused, ProviderUnavailable, register

CLIENT = "stripe"
MIN_SESSION_LIFETIME = timedelta(minutes=31)


def client_of(deps: ChannelDeps) -> stripe.StripeClient:
    client = deps.clients.get(CLIENT)
    if client is None:
        raise ProviderRefused("Stripe is not configured: set GATEWAY_STRIPE_SECRET_KEY")
    return client  # type: ignore[no-any-return]


def order_metadata(order: PaymentOrder) -> dict[str, str]:
    meta = {"order_id": order.id, "community_id": order.community_id, "plan_id": order.plan_id,
            "payer_id": order.payer_id}
    if order.referrer_id:
        meta["referrer_id"] = order.referrer_id
    return meta


def _url(template: str, order: PaymentOrder) -> str:
    return template.replace("{ORDER_ID}", order.id)


def session_params(deps: ChannelDeps, order: PaymentOrder, checkout: Checkout) -> dict[str, Any]:
    meta = order_metadata(order)
    return {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": order.currency.lower(), "unit_amount": order.amount_fen,
            "product_data": {"name": checkout.plan_name[:200] or order.plan_id},
        }}],
        "client_reference_id": order.id,
        "metadata": meta,
        "payment_intent_data": {"metadata": meta},
        "success_url": _url(deps.settings.stripe_checkout_success_url, order),
        "cancel_url": _url(deps.settings.stripe_checkout_cancel_url, order),
        "expires_at": session_expiry(order),
    }


def session_expiry(order: PaymentOrder) -> int:
    """The order's expiry, but at least Stripe's minimum of 30 minutes after the session is created (a
    minute's margin for the call itself); from the order's creation, so a retried call sends the same value.
    The expiry job closes the session when the order expires anyway."""
    return int(max(order.expires_at, order.created_at + MIN_SESSION_LIFETIME).timestamp())


def _failure(exc: stripe.StripeError) -> Exception:
    status = exc.http_status or 0
    message = f"stripe {status}: {exc.code + ': ' if exc.code else ''}{exc.user_message or str(exc)[:300]}"
    if isinstance(exc, stripe.APIConnectionError) or status == 0 or status >= 500 or status in (409, 429):
        return ProviderUnavailable(message)
    return ProviderRefused(message)


class StripeCheckout:
    provider: ClassVar[str] = "stripe"
    channel: ClassVar[str] = "checkout"

    def check(self, deps: ChannelDeps, checkout: Checkout) -> None:
        client_of(deps)

    async def open(self, deps: ChannelDeps, order: PaymentOrder, checkout: Checkout) -> Opened:
        try:
            session = await client_of(deps).v1.checkout.sessions.create_async(
                params=session_params(deps, order, checkout),  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout-{order.id}"},
            )
        except stripe.StripeError as exc:
            raise _failure(exc) from None
        return Opened(provider_order_id=session.id, client={"checkout_url": session.url, "session_id": session.id})

    async def close(self, deps: ChannelDeps, order: PaymentOrder) -> None:
        """Expire the session at once (it would at expires_at anyway); one already completed stays so."""
        if not order.provider_order_id:
            return
        try:
            await client_of(deps).v1.checkout.sessions.expire_async(order.provider_order_id)
        except stripe.InvalidRequestError:
            pass  # already expired or completed: nothing to close


register(StripeCheckout())
