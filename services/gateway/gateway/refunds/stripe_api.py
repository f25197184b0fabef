"""Stripe refunds with the official library: POST /v1/refunds on the PaymentIntent (or charge), the
request id as Idempotency-Key, so a repeated call returns the first refund instead of making a second."""

from __future__ import annotations

import stripe

from gateway.models import RefundOrder
from gateway.refunds.result import Result

ALREADY_REFUNDED = frozenset({"charge_already_refunded"})
# Stripe's own advice: these are worth retrying with the same idempotency key.
RETRYABLE_STATUSES = frozenset({409, 429})


def new_client(*, secret_key: str, api_base: str, http_client: stripe.HTTPXClient) -> stripe.StripeClient:
    """A client of its own (api key and base address per client, never the library's globals); our worker
    retries, not the library, so attempts and backoff are ours to count."""
    return stripe.StripeClient(
        secret_key, base_addresses={"api": api_base.rstrip("/")}, max_network_retries=0, http_client=http_client,
    )


def _params(order: RefundOrder) -> dict:
    params: dict = {
        "amount": order.amount_fen,
        "metadata": {"request_id": order.request_id, "community_id": order.community_id,
                     "reason_code": order.reason_code, "reason": order.reason[:500]},
    }
    # A Checkout payment is known by its PaymentIntent; an old-style charge by its ch_ id.
    params["charge" if order.payment_id.startswith(("ch_", "py_")) else "payment_intent"] = order.payment_id
    if order.reason_code == "self_service":
        params["reason"] = "requested_by_customer"
    return params


async def refund(client: stripe.StripeClient, order: RefundOrder) -> Result:
    try:
        created = await client.v1.refunds.create_async(
            params=_params(order),  # type: ignore[arg-type]
            options={"idempotency_key": order.request_id},
        )
    except stripe.APIConnectionError as exc:  # timeouts and refused connections
        return Result("retry", f"stripe: {exc.user_message or type(exc).__name__}")
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        message = f"stripe {status}: {exc.code + ': ' if exc.code else ''}{exc.user_message or type(exc).__name__}"
        if exc.code in ALREADY_REFUNDED:
            return Result("already_refunded", message)
        if status >= 500 or status in RETRYABLE_STATUSES or status == 0:
            retry_after = (exc.headers or {}).get("retry-after")
            return Result("retry", message, retry_after_s=float(retry_after) if _number(retry_after) else None)
        return Result("failed", message)
    status = getattr(created, "status", None)  # StripeObject is not a dict: absent fields raise AttributeError
    if status in ("failed", "canceled"):
        reason = getattr(created, "failure_reason", None) or "no reason given"
        return Result("failed", f"stripe: refund {created.id} is {status}: {reason}", refund_id=created.id)
    return Result("submitted", refund_id=created.id)


def _number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True
