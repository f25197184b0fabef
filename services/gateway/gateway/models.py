"""Gateway's tables: connectors, webhook deliveries and quarantine, the role projection, credentials,
payment references, bot actions and refunds (plus its outbox and inbox)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.timeutil import utcnow

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class GatewayModel(SQLModel, registry=registry):
    """Base of the gateway's tables: its own metadata, apart from the other services'."""


def _uuid() -> str:
    return str(uuid.uuid4())


class Connector(GatewayModel, table=True):
    """A chat platform account (a bot, a WeCom app, a bridge) feeding one community's groups."""

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    community_id: str = Field(max_length=100, index=True)
    platform: str = Field(max_length=20, description="Adapter: generic, telegram or wecom.")
    identity_platform: str = Field(max_length=20, description="Prefix of person and group ids.")
    name: str = Field(default="", max_length=100)
    secrets_sealed: str = Field(description="Fernet token of the secrets the gateway must reuse.")
    secret_token_hash: str | None = Field(default=None, max_length=64, description="Telegram secret, hashed.")
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class ConnectorGroup(GatewayModel, table=True):
    """A platform chat group mapped to a community; one connector per group, so actions know their bot."""

    __tablename__ = "connector_group"

    group_id: str = Field(primary_key=True, max_length=200, description="e.g. telegram:-1001234")
    connector_id: str = Field(max_length=36, index=True)
    community_id: str = Field(max_length=100)


class WebhookDelivery(GatewayModel, table=True):
    """One accepted delivery per (source, platform delivery id): the deduplication record."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("source", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=100, description="chat:<connector id>, stripe or wechatpay.")
    delivery_id: str = Field(max_length=200)
    outcome: str = Field(max_length=20, description="accepted, ignored or quarantined.")
    event_count: int = 0
    received_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class QuarantinedWebhook(GatewayModel, table=True):
    """A verified payload that could not be processed: kept with the reason for ops, who may replay it."""

    __tablename__ = "quarantined_webhook"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=100, index=True)
    platform: str = Field(max_length=20)
    delivery_id: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True), description=(
        "The signature headers the payload came with (payments), so a replay re-verifies the stored body."))
    retry_requested: bool = Field(default=False, description=(
        "Kept while the provider was asked to retry (cannot decrypt, order not found yet): replayable by ops "
        "if the provider gives up; removed when a retry is accepted."))
    received_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class MemberRole(GatewayModel, table=True):
    """Projection of membership.events.v1: who holds which role in which community."""

    __tablename__ = "member_role"

    community_id: str = Field(primary_key=True, max_length=100)
    member_id: str = Field(primary_key=True, max_length=200)
    role: str = Field(max_length=20)
    status: str = Field(max_length=30)
    status_reason: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""}, description=(
        "Why the membership is in its status (the QQ door readmits who was removed for leaving every group)."))
    changed_at: datetime = Field(sa_type=AwareDateTime)


class CommunityDoor(GatewayModel, table=True):
    """Projection of community events: what the door (a QQ join request) needs to decide without asking."""

    __tablename__ = "community_door"

    community_id: str = Field(primary_key=True, max_length=100)
    entry_policies: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    chat_join_policy: str | None = Field(default=None, max_length=10, description=(
        "admit, flag or ignore as in force; None from events older than the field (the door then asks)."))
    status: str = Field(default="active", max_length=20)
    changed_at: datetime = Field(sa_type=AwareDateTime)


class DoorGroup(GatewayModel, table=True):
    """Projection of group.registered / group.updated: whether a group is paid (admit never opens one)."""

    __tablename__ = "door_group"

    group_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(max_length=100)
    paid: bool = False
    active: bool = True
    changed_at: datetime = Field(sa_type=AwareDateTime)


class PaymentRef(GatewayModel, table=True):
    """Which community a provider's payment belongs to, for refunds that do not say it again."""

    __tablename__ = "payment_ref"

    payment_id: str = Field(primary_key=True, max_length=200)
    provider: str = Field(max_length=20)
    community_id: str = Field(max_length=100)
    payer_id: str = Field(max_length=200)
    plan_id: str = Field(max_length=100)
    amount_fen: int | None = Field(default=None, description="Captured amount: WeChat Pay refunds repeat it.")


class LoginCode(GatewayModel, table=True):
    __tablename__ = "login_code"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    member_id: str = Field(max_length=200, index=True)
    # The community whose connector delivered the code: the token it gives acts there only.
    community_id: str | None = Field(default=None, max_length=100)
    code_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=AwareDateTime)
    attempts: int = 0
    used_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class ApiKey(GatewayModel, table=True):
    """A key for a bot or an operator, scoped to one community with a role; the secret is hashed."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32, description="Public part of the key.")
    secret_hash: str = Field(max_length=64)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=20, description="bot or operator")
    community_id: str = Field(max_length=100, index=True)
    role: str = Field(max_length=20)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class BotAction(GatewayModel, table=True):
    """A requested bot action and its fate; the action id is the idempotency key."""

    __tablename__ = "bot_action"

    action_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(max_length=100)
    group_id: str = Field(max_length=200, index=True)
    connector_id: str | None = Field(default=None, max_length=36, description="Else found from the group.")
    action: str = Field(max_length=30)
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=20, index=True, description="pending, completed, failed")
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    last_error: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class RefundOrder(GatewayModel, table=True):
    """A `refund.requested` command and its fate at the payment provider; the request id is the
    idempotency key (Stripe's Idempotency-Key, WeChat Pay's out_refund_no)."""

    __tablename__ = "refund_order"

    request_id: str = Field(primary_key=True, max_length=100)
    community_id: str = Field(max_length=100)
    payment_id: str = Field(max_length=200, index=True)
    provider: str = Field(max_length=20, description="stripe, wechatpay or manual")
    amount_fen: int
    currency: str = Field(max_length=3)
    reason_code: str = Field(default="", max_length=40, description="Membership's why: self_service, blacklisted…")
    reason: str = Field(default="", max_length=500, description="The person's own words, if any.")
    status: str = Field(default="pending", max_length=20, index=True,
                        description="pending, submitted, already_refunded, manual, failed")
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    last_error: str = Field(default="", max_length=2000)
    provider_refund_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class PaymentOrder(GatewayModel, table=True):
    """A payment Qunzhu started (POST /communities/{id}/checkout): its id is the provider's reference
    (Stripe client_reference_id, WeChat Pay out_trade_no and attach), so a notification finds the order,
    and through it the community, plan and payer, without any metadata the provider may drop."""

    __tablename__ = "payment_order"
    __table_args__ = (UniqueConstraint("payer_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=32, description="qz + 24 hex: WeChat Pay's out_trade_no rules.")
    community_id: str = Field(max_length=100, index=True)
    plan_id: str = Field(max_length=100)
    payer_id: str = Field(max_length=200)
    referrer_id: str | None = Field(default=None, max_length=200)
    provider: str = Field(max_length=20, description="stripe or wechatpay")
    channel: str = Field(max_length=20, description="stripe: checkout; wechatpay: jsapi, native, h5")
    kind: str = Field(max_length=20, description="new or renewal: which price of the plan")
    amount_fen: int
    currency: str = Field(max_length=3)
    status: str = Field(default="created", max_length=20, index=True,
                        description="created, paid, expired, closed, review, failed")
    review_reason: str = Field(default="", max_length=500)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str = Field(max_length=64, description="sha256 of the request: one key, one request.")
    provider_order_id: str | None = Field(default=None, max_length=200,
                                          description="Stripe Checkout Session id, WeChat Pay prepay_id.")
    provider_payment_id: str | None = Field(default=None, max_length=200, index=True,
                                            description="Stripe PaymentIntent id, WeChat Pay transaction_id.")
    client: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True),
                                          description="What the front end needs: checkout_url, code_url…")
    paid_amount_fen: int | None = None
    paid_currency: str | None = Field(default=None, max_length=3)
    last_error: str = Field(default="", max_length=2000)
    expires_at: datetime = Field(sa_type=AwareDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class ProviderRefund(GatewayModel, table=True):
    """Every refund the providers told us about, by the provider's refund id: deduplicates refund events
    whatever their event ids, adds partial refunds up, and keeps a refund whose payment is not known yet
    (`held`) until the payment arrives."""

    __tablename__ = "provider_refund"

    provider: str = Field(primary_key=True, max_length=20)
    refund_id: str = Field(primary_key=True, max_length=200,
                           description="re_…; `<charge>:refunded:<cumulative fen>` when Stripe names none.")
    payment_id: str = Field(max_length=200, index=True, description="PaymentIntent (or charge) / transaction id.")
    charge_id: str | None = Field(default=None, max_length=200, index=True)
    order_id: str | None = Field(default=None, max_length=32, index=True)
    amount_fen: int = Field(description="What this refund adds to the payment's refunded total.")
    currency: str = Field(max_length=3)
    derived: bool = Field(default=False, description="Made up from charge.refunded's amount_refunded.")
    claimed_fen: int = Field(default=0, description="Of a derived refund: how much later refund ids explained.")
    status: str = Field(max_length=20, index=True, description="emitted or held (payment not known yet)")
    reason: str = Field(default="", max_length=500)
    refunded_at: datetime = Field(sa_type=AwareDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class ReconciliationDifference(GatewayModel, table=True):
    """One difference the daily reconciliation found between our records and the provider's."""

    __tablename__ = "reconciliation_difference"
    __table_args__ = (UniqueConstraint("provider", "kind", "reference"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20, index=True)
    kind: str = Field(max_length=40, description="e.g. payment_missing_here, refund_amount_differs")
    reference: str = Field(max_length=200, description="The payment, refund or order the difference is about.")
    detail: str = Field(default="", max_length=2000)
    window_start: datetime = Field(sa_type=AwareDateTime)
    window_end: datetime = Field(sa_type=AwareDateTime)
    found_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
