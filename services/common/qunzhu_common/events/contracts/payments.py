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


PAYMENT_SPECS = (
    EventSpec(type="payment.succeeded", version=1, topic=PAYMENTS_EVENTS, payload=PaymentSucceeded,
              description="A payment for a plan was captured."),
    EventSpec(type="payment.refunded", version=1, topic=PAYMENTS_EVENTS, payload=PaymentRefunded,
              description="A payment was refunded (fully or partly)."),
    EventSpec(type="payment.failed", version=1, topic=PAYMENTS_EVENTS, payload=PaymentFailed,
              description="A payment attempt failed."),
)
