"""Payment notifications verified and normalised by the gateway (payments.events.v1). Money in fen."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.events.registry import EventSpec
from qunzhu_common.events.topics import PAYMENTS_EVENTS

Provider = Literal["stripe", "wechatpay", "manual"]


class PaymentSucceeded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: str = Field(max_length=200, description="The provider's id; membership applies it once.")
    provider: Provider
    payer_id: PersonId
    plan_id: str = Field(max_length=100)
    amount_fen: int = Field(ge=0)
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    referrer_id: PersonId | None = None
    paid_at: AwareDatetime


class PaymentRefunded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: str = Field(max_length=200)
    refund_id: str = Field(max_length=200)
    provider: Provider
    amount_fen: int = Field(ge=0)
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    reason: str = Field(default="", max_length=500)
    refunded_at: AwareDatetime


class PaymentFailed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: str = Field(max_length=200)
    provider: Provider
    payer_id: PersonId
    plan_id: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)
    failed_at: AwareDatetime


_PAYMENT_SPECS = (
    EventSpec(type="payment.succeeded", version=1, topic=PAYMENTS_EVENTS, payload=PaymentSucceeded,
              description="A payment for a plan was captured."),
    EventSpec(type="payment.refunded", version=1, topic=PAYMENTS_EVENTS, payload=PaymentRefunded,
              description="A payment was refunded (fully or partly)."),
    EventSpec(type="payment.failed", version=1, topic=PAYMENTS_EVENTS, payload=PaymentFailed,
              description="A payment attempt failed."),
)


class RefundSubmitted(BaseModel):
    """The gateway carried out a `refund.requested` command: the provider accepted the refund (or it was
    already refunded there), or it is a manual refund the operator makes by hand. Access is still revoked
    only by `payment.refunded`, when the provider confirms."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(max_length=100, description="The command's idempotency key.")
    payment_id: str = Field(max_length=200)
    provider: Provider
    amount_fen: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    outcome: Literal["submitted", "already_refunded", "manual"]
    refund_id: str | None = Field(default=None, max_length=200, description="The provider's refund id.")
    attempts: int = Field(ge=0)
    submitted_at: AwareDatetime


class RefundFailed(BaseModel):
    """The gateway could not carry out a `refund.requested` command (refused by the provider, provider not
    configured, or still failing after the last retry): someone has to refund by hand."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(max_length=100)
    payment_id: str = Field(max_length=200)
    provider: Provider
    amount_fen: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    reason: str = Field(max_length=2000)
    attempts: int = Field(ge=0)
    failed_at: AwareDatetime


_REFUND_SPECS = (
    EventSpec(type="refund.submitted", version=1, topic=PAYMENTS_EVENTS, payload=RefundSubmitted,
              description="A requested refund was accepted by the provider (or is manual)."),
    EventSpec(type="refund.failed", version=1, topic=PAYMENTS_EVENTS, payload=RefundFailed,
              description="A requested refund could not be carried out."),
)

PAYMENT_SPECS = (*_PAYMENT_SPECS, *_REFUND_SPECS)
