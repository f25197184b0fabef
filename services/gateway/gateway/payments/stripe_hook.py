"""Stripe: verification with the official library (Webhook.construct_event, 300 s tolerance) and the
mapping of Stripe events to payments.events.v1. Checkout/PaymentIntent metadata names the community,
plan and payer: {community_id, plan_id, payer_id, referrer_id?}."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import stripe

from gateway.errors import WebhookUnauthorized
from gateway.webhooks.commands import Unnormalisable
from qunzhu_common import jsonbody

TOLERANCE_S = 300


def verify(body: bytes, signature: str | None, secrets: Sequence[str], *,
           tolerance_s: int | None = TOLERANCE_S) -> dict[str, Any]:
    """The event as a plain dict; WebhookUnauthorized(reason) when no secret verifies it. `tolerance_s=None`
    checks the signature only (the stripe library skips the timestamp window then): an ops replay."""
    if not signature:
        raise WebhookUnauthorized("missing")
    if not secrets:
        raise WebhookUnauthorized("not_configured", "no Stripe webhook secret is configured")
    if jsonbody.too_deep(body):  # construct_event parses before it verifies: json.loads would recurse away
        raise WebhookUnauthorized("payload", f"the body nests deeper than {jsonbody.MAX_DEPTH} levels")
    reason = "signature"
    for secret in secrets:  # several during a rotation
        try:
            event = stripe.Webhook.construct_event(body, signature, secret, tolerance=tolerance_s)  # type: ignore[arg-type]
        except stripe.SignatureVerificationError as exc:
            if "tolerance" in str(exc).lower():
                reason = "timestamp"
            continue
        except ValueError:  # not JSON: construct_event parses before it verifies
            raise WebhookUnauthorized("payload", "the body is not JSON") from None
        return event.to_dict()
    raise WebhookUnauthorized(reason)


def _at(seconds: Any) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat()


def _payer(metadata: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("community_id", "plan_id", "payer_id") if not metadata.get(k)]
    if missing:
        raise Unnormalisable(f"metadata lacks {', '.join(missing)}")
    return metadata


def normalise(event: dict[str, Any], *, community_of: dict[str, str]) -> list[tuple[str, str | None, dict]]:
    """(type, community id, payload fields) for each payments event this Stripe event means."""
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    created = _at(event.get("created", 0))
    meta = obj.get("metadata") or {}
    checkout = kind == "checkout.session.completed"
    if (checkout and obj.get("payment_status") == "paid") or kind == "payment_intent.succeeded":
        meta = _payer(meta)
        # A checkout session names its PaymentIntent: the same payment id as payment_intent.succeeded.
        payment_id = (obj.get("payment_intent") or obj.get("id")) if checkout else obj.get("id")
        amount = obj.get("amount_total") if checkout else obj.get("amount_received")
        return [("payment.succeeded", meta["community_id"], dict(
            payment_id=payment_id, provider="stripe", payer_id=meta["payer_id"], plan_id=meta["plan_id"],
            amount_fen=amount, currency=str(obj.get("currency", "cny")).upper(),
            referrer_id=meta.get("referrer_id") or None, paid_at=created))]
    if kind == "payment_intent.payment_failed":
        meta = _payer(meta)
        error = obj.get("last_payment_error") or {}
        return [("payment.failed", meta["community_id"], dict(
            payment_id=obj.get("id"), provider="stripe", payer_id=meta["payer_id"], plan_id=meta["plan_id"],
            reason=str(error.get("message") or error.get("code") or "")[:500], failed_at=created))]
    if kind == "charge.refunded":
        payment_id = obj.get("payment_intent") or obj.get("id")
        refunds = (obj.get("refunds") or {}).get("data") or []
        community_id = meta.get("community_id") or community_of.get(payment_id)
        return [("payment.refunded", community_id, dict(
            payment_id=payment_id, refund_id=refunds[0]["id"] if refunds else f"{obj.get('id')}:refund",
            provider="stripe", amount_fen=obj.get("amount_refunded"), currency=str(obj.get("currency", "cny")).upper(),
            reason=str((refunds[0] if refunds else {}).get("reason") or "")[:500], refunded_at=created))]
    return []


def payment_ids(event: dict[str, Any]) -> list[str]:
    """Payments a refund may refer to, looked up in our payment references."""
    obj = (event.get("data") or {}).get("object") or {}
    return [p for p in (obj.get("payment_intent"), obj.get("id")) if p]
