"""Checkout: quote the plan from membership, store the order (Idempotency-Key), open it at the provider.

The order is committed before the provider is called, so a crash in between leaves an order a retry with
the same Idempotency-Key finds and opens again (the channel is idempotent on the order id). An order the
provider refused is `failed`; an unreachable provider leaves it `created` without an answer, retried.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.principal import Principal, role_in
from gateway.models import PaymentOrder
from gateway.orders.channels import ChannelDeps, Checkout, ProviderRefused, ProviderUnavailable, channel_of
from gateway.paths import ServicePath
from gateway.upstream import Upstreams
from qunzhu_common.actor import ROLE_RANK
from qunzhu_common.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)

# Membership's rules (membership.service.payments): who may pay, and which price a renewal pays.
PAYABLE = frozenset({"pending_payment", "pending_ritual", "active", "expired"})
RENEWABLE = frozenset({"pending_ritual", "active", "expired"})
OPEN_STATUSES = frozenset({"created"})


class OrderNotFound(NotFound):
    slug, title = "order-not-found", "Order not found"


class IdempotencyKeyReused(Conflict):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with another request"


class MembershipFailed(AppError):
    status, slug, title = 502, "membership-failed", "Membership could not quote the plan"


class NotPayable(Conflict):
    slug, title = "not-payable", "Nothing to pay for"


def new_order_id() -> str:
    """26 characters of [a-z0-9]: a valid WeChat Pay out_trade_no (6–32 of [A-Za-z0-9_-|*]) and Stripe
    client_reference_id."""
    return "qz" + secrets.token_hex(12)


@dataclass(frozen=True)
class Quote:
    plan_name: str
    kind: str  # new or renewal
    amount_fen: int
    currency: str


def request_hash(community_id: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"community_id": community_id, **body}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def quote(upstreams: Upstreams, principal: Principal, *, community_id: str, plan_id: str) -> Quote:
    """The plan's price for this person as membership would check it: the plan is the community's and
    active; the person is on the way in (pending_payment) or renewing; renewals pay the renewal price."""
    try:
        return await _quote(upstreams, principal, community_id=community_id, plan_id=plan_id)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # not membership's documented answers
        raise MembershipFailed(f"membership's answer could not be read: {type(exc).__name__}") from None


async def _quote(upstreams: Upstreams, principal: Principal, *, community_id: str, plan_id: str) -> Quote:
    plans = await upstreams.call_as(principal, "membership", "GET", ServicePath.of("communities", community_id,
                                                                                   "plans"))
    if plans.status_code == 404:
        raise NotFound(f"community {community_id} does not exist")
    _expect_ok(plans, "membership's plans")
    plan = next((p for p in plans.json() if isinstance(p, dict) and p.get("id") == plan_id), None)
    if plan is None or not plan.get("active", True):
        raise InvalidInput(f"plan {plan_id} is not an active plan of community {community_id}")
    member = await upstreams.call_as(principal, "membership", "GET",
                                     ServicePath.of("communities", community_id, "members", principal.subject))
    if member.status_code == 404:
        raise NotPayable("join the community first (POST …/join): a paid join waits in pending_payment")
    _expect_ok(member, "the membership")
    status = str(member.json().get("status"))
    if status not in PAYABLE:
        raise NotPayable(f"a membership in status {status} cannot be paid for", member_status=status)
    kind = "new"
    if status in RENEWABLE and await _has_paid_before(upstreams, principal, community_id):
        kind = "renewal"
    renewal = plan.get("renewal_price_fen")
    amount = int(renewal) if kind == "renewal" and renewal is not None else int(plan["price_fen"])
    if amount <= 0:
        raise InvalidInput(f"plan {plan_id} costs nothing: nothing to pay")
    return Quote(plan_name=str(plan.get("name") or plan_id), kind=kind, amount_fen=amount,
                 currency=str(plan.get("currency") or "CNY").upper())


async def _has_paid_before(upstreams: Upstreams, principal: Principal, community_id: str) -> bool:
    paid = await upstreams.call_as(principal, "membership", "GET", ServicePath.of(
        "communities", community_id, "members", principal.subject, "payments"))
    _expect_ok(paid, "the member's payments")
    return any(p.get("outcome") in ("granted", "refunded") and p.get("kind") for p in paid.json().get("data", []))


def _expect_ok(response: Any, what: str) -> None:
    if response.status_code in (401, 403):
        raise Forbidden(f"membership refused to show {what}")
    if response.status_code >= 300:
        raise MembershipFailed(f"membership answered {response.status_code} for {what}")


async def checkout(
    sessions: async_sessionmaker[AsyncSession], *, upstreams: Upstreams, deps: ChannelDeps, principal: Principal,
    community_id: str, body: dict[str, Any], idempotency_key: str | None, client_ip: str | None = None,
) -> PaymentOrder:
    if principal.kind != "member":
        raise Forbidden("checkout is for the person who pays: sign in as them")
    if principal.community_id is not None and principal.community_id != community_id:
        raise Forbidden(f"this token acts only inside community {principal.community_id}")
    channel = channel_of(body["provider"], body["channel"])
    if channel is None:
        raise InvalidInput(f"provider {body['provider']} has no channel {body['channel']}")
    details = Checkout(plan_name="", payer_openid=body.get("payer_openid"), client_ip=client_ip)
    digest = request_hash(community_id, body)
    order = await _existing(sessions, principal.subject, idempotency_key, digest)
    if order is None:
        found = await quote(upstreams, principal, community_id=community_id, plan_id=body["plan_id"])
        channel.check(deps, details)
        order = await _insert(sessions, PaymentOrder(
            id=new_order_id(), community_id=community_id, plan_id=body["plan_id"], payer_id=principal.subject,
            referrer_id=body.get("referrer"), provider=body["provider"], channel=body["channel"], kind=found.kind,
            amount_fen=found.amount_fen, currency=found.currency, idempotency_key=idempotency_key,
            request_hash=digest, expires_at=utcnow() + timedelta(seconds=deps.settings.order_ttl_s),
        ), idempotency_key=idempotency_key, digest=digest)
        plan_name = found.plan_name
    else:
        plan_name = order.plan_id
        if order.client is None and order.status in OPEN_STATUSES:  # reopened: the same parameters as before
            plan_name = await _plan_name(upstreams, principal, order)
    if order.client is not None or order.status not in OPEN_STATUSES:
        return order  # a retried call: the same order, as it is now
    try:
        opened = await channel.open(deps, order, Checkout(plan_name=plan_name, payer_openid=details.payer_openid,
                                                          client_ip=client_ip))
    except ProviderRefused as exc:
        await _update(sessions, order.id, status="failed", last_error=str(exc.detail or exc)[:2000])
        deps.count(order, "failed")
        raise
    except ProviderUnavailable as exc:
        await _update(sessions, order.id, last_error=str(exc.detail or exc)[:2000])
        deps.count(order, "unavailable")
        raise
    deps.count(order, "opened")
    return await _update(sessions, order.id, provider_order_id=opened.provider_order_id, client=opened.client)


async def _plan_name(upstreams: Upstreams, principal: Principal, order: PaymentOrder) -> str:
    """The name the first attempt showed (the provider's idempotency wants the very same parameters)."""
    try:
        plans = await upstreams.call_as(principal, "membership", "GET",
                                        ServicePath.of("communities", order.community_id, "plans"))
        found = next((p for p in plans.json() if isinstance(p, dict) and p.get("id") == order.plan_id), None)
    except (ValueError, TypeError, AttributeError, AppError):
        found = None
    return str((found or {}).get("name") or order.plan_id)


async def _existing(sessions: async_sessionmaker[AsyncSession], payer_id: str, key: str | None,
                    digest: str) -> PaymentOrder | None:
    if key is None:
        return None
    async with sessions() as session:
        order = (await session.execute(select(PaymentOrder).where(
            PaymentOrder.payer_id == payer_id, PaymentOrder.idempotency_key == key))).scalar_one_or_none()
    if order is not None and order.request_hash != digest:
        raise IdempotencyKeyReused("this Idempotency-Key was used for another checkout request")
    return order


async def _insert(sessions: async_sessionmaker[AsyncSession], order: PaymentOrder, *, idempotency_key: str | None,
                  digest: str) -> PaymentOrder:
    try:
        async with sessions() as session, session.begin():
            session.add(order)
        return order
    except IntegrityError:  # the same key, concurrently: theirs is the order
        existing = await _existing(sessions, order.payer_id, idempotency_key, digest)
        if existing is None:
            raise
        return existing


async def _update(sessions: async_sessionmaker[AsyncSession], order_id: str, **values: Any) -> PaymentOrder:
    async with sessions() as session, session.begin():
        order = await session.get(PaymentOrder, order_id, with_for_update=True)
        assert order is not None
        for name, value in values.items():
            setattr(order, name, value)
        order.updated_at = utcnow()
    return order


async def get_order(session: AsyncSession, principal: Principal, *, community_id: str, order_id: str
                    ) -> PaymentOrder:
    """The payer sees their order; the community's admins and owner see all of its orders."""
    order = await session.get(PaymentOrder, order_id)
    if order is None or order.community_id != community_id:
        raise OrderNotFound(f"no order {order_id} in community {community_id}")
    if order.payer_id == principal.subject or principal.kind == "platform":
        return order
    role = await role_in(session, principal, community_id)
    if role is None or ROLE_RANK[role] < ROLE_RANK["admin"]:
        raise OrderNotFound(f"no order {order_id} in community {community_id}")  # not even its existence
    return order


def public_view(order: PaymentOrder) -> dict[str, Any]:
    return {
        "order_id": order.id, "community_id": order.community_id, "plan_id": order.plan_id,
        "payer_id": order.payer_id, "provider": order.provider, "channel": order.channel, "kind": order.kind,
        "status": order.status, "amount_fen": order.amount_fen, "currency": order.currency,
        "expires_at": _iso(order.expires_at), "paid_at": _iso(order.paid_at),
        **(order.client or {}),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
