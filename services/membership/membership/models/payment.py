"""Payments, refunds and the revenue/commission ledger (fen). Each is keyed by the provider's id.

A payment row exists once per `payment_id` whatever arrives first: `payment.refunded` before
`payment.succeeded` creates the row as `awaiting_success` and the success then finds the refund waiting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import BigInteger, CheckConstraint, Column, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel, new_id
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.timeutil import utcnow

PaymentOutcome = Literal["awaiting_success", "granted", "rejected", "refunded"]
LedgerAccount = Literal["owner", "platform", "referrer", "suspense"]


class Payment(MembershipModel, table=True):
    __table_args__ = (
        CheckConstraint("refunded_fen >= 0 AND (amount_fen IS NULL OR refunded_fen <= amount_fen)",
                        name="refund_within_amount"),
    )

    payment_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(index=True, max_length=36)
    provider: str = Field(max_length=20)
    outcome: str = Field(max_length=20)
    reject_code: str | None = Field(default=None, max_length=30)
    payer_id: str | None = Field(default=None, max_length=200, index=True)
    plan_id: str | None = Field(default=None, max_length=100)
    amount_fen: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, max_length=3)
    referrer_id: str | None = Field(default=None, max_length=200)
    paid_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    refunded_fen: int = Field(default=0, ge=0)
    # What the payment bought, fixed when it was applied (later plan edits don't change it).
    kind: str | None = Field(default=None, max_length=10, description="new, renewal")
    tier: str | None = Field(default=None, max_length=50)
    term_type: str | None = Field(default=None, max_length=20)
    duration_days: int | None = None
    refund_window_ends_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    platform_fee_fen: int = Field(default=0, ge=0)
    referral_commission_fen: int = Field(default=0, ge=0)
    owner_fen: int = Field(default=0, ge=0)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class Refund(MembershipModel, table=True):
    refund_id: str = Field(primary_key=True, max_length=200)
    payment_id: str = Field(index=True, max_length=200)
    community_id: str = Field(index=True, max_length=36)
    amount_fen: int = Field(ge=0)
    applied_fen: int = Field(default=0, ge=0, description="Part applied to the ledger (≤ what is left).")
    applied: bool = Field(default=False, description="False while the payment's success has not arrived.")
    reason: str = Field(default="", max_length=500)
    refunded_at: datetime = Field(sa_type=AwareDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class LedgerEntry(MembershipModel, table=True):
    """One signed movement of one account for one payment or refund; never updated, never deleted."""

    __tablename__ = "ledger_entry"
    __table_args__ = (UniqueConstraint("payment_id", "source_id", "account"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                       autoincrement=True),
    )
    community_id: str = Field(index=True, max_length=36)
    payment_id: str = Field(max_length=200)
    source_id: str = Field(max_length=200, description="The payment id, or the refund id for reversals.")
    kind: str = Field(max_length=10, description="payment or refund")
    account: str = Field(max_length=10)
    beneficiary_id: str | None = Field(default=None, max_length=200, index=True)
    amount_fen: int
    currency: str = Field(max_length=3)
    occurred_at: datetime = Field(sa_type=AwareDateTime)


class RefundRequest(MembershipModel, table=True):
    """A refund command sent to the payments side; at most one per payment."""

    __tablename__ = "refund_request"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    payment_id: str = Field(unique=True, max_length=200)
    community_id: str = Field(index=True, max_length=36)
    payer_id: str = Field(max_length=200)
    amount_fen: int = Field(ge=0)
    reason_code: str = Field(max_length=30)
    reason: str = Field(default="", max_length=500)
    requested_at: datetime = Field(sa_type=AwareDateTime)


class RefundRequestCreate(Body):
    payment_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=500)


class RefundRequestPublic(SQLModel):
    id: str
    payment_id: str
    community_id: str
    amount_fen: int
    reason_code: str
    reason: str
    requested_at: datetime


class PaymentPublic(SQLModel):
    payment_id: str
    community_id: str
    provider: str
    outcome: PaymentOutcome
    reject_code: str | None
    payer_id: str | None
    plan_id: str | None
    amount_fen: int | None
    currency: str | None
    refunded_fen: int
    paid_at: datetime | None
    kind: str | None
    refund_window_ends_at: datetime | None


class PaymentsPage(SQLModel):
    data: list[PaymentPublic]
    count: int


class LedgerEntryPublic(SQLModel):
    payment_id: str
    source_id: str
    kind: str
    account: LedgerAccount
    beneficiary_id: str | None
    amount_fen: int
    currency: str
    occurred_at: datetime


class LedgerSummary(SQLModel):
    """Totals that must reconcile: captured − refunded = owner + platform + referrers + suspense."""

    community_id: str
    currency: str
    captured_fen: int
    refunded_fen: int
    net_fen: int
    owner_fen: int
    platform_fee_fen: int
    referral_commission_fen: int
    suspense_fen: int
    reconciled: bool


class LedgerPage(SQLModel):
    summary: list[LedgerSummary]
    entries: list[LedgerEntryPublic]
    count: int
