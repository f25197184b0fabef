"""Plans: price in fen, term type, trial, renewal price, refund window and paywall tier."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import model_validator
from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel, new_id
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.fields import Currency
from qunzhu_common.timeutil import utcnow

TermType = Literal["fixed_term", "fixed_duration"]
DEFAULT_REFUND_WINDOW_HOURS = 72


class PlanFields(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    price_fen: int = Field(ge=0, le=100_000_000)
    currency: str = Field(default="CNY", min_length=3, max_length=3)  # the pattern is checked on PlanCreate
    term_type: str = Field(max_length=20)
    duration_days: int | None = Field(default=None, ge=1, le=3660)
    trial_days: int = Field(default=0, ge=0, le=90)
    renewal_price_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    refund_window_hours: int = Field(default=DEFAULT_REFUND_WINDOW_HOURS, ge=0, le=24 * 90)
    tier: str = Field(max_length=50)


class Plan(PlanFields, MembershipModel, table=True):
    __table_args__ = (CheckConstraint("price_fen >= 0", name="price_not_negative"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(foreign_key="community.id", index=True, max_length=36)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class PlanCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    price_fen: int = Field(ge=0, le=100_000_000)
    currency: Currency = Field(default="CNY", description="ISO 4217 code, upper case (as in plan.changed).")
    term_type: TermType
    duration_days: int | None = Field(default=None, ge=1, le=3660, description="fixed_duration only.")
    trial_days: int = Field(default=0, ge=0, le=90)
    renewal_price_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    refund_window_hours: int = Field(default=DEFAULT_REFUND_WINDOW_HOURS, ge=0, le=24 * 90)
    tier: str | None = Field(default=None, min_length=1, max_length=50, description="Default: lowest tier.")

    @model_validator(mode="after")
    def _duration(self) -> PlanCreate:
        if self.term_type == "fixed_duration" and self.duration_days is None:
            raise ValueError("fixed_duration plans need duration_days")
        if self.term_type == "fixed_term" and self.duration_days is not None:
            raise ValueError("fixed_term plans end on the community's anniversary; duration_days is not used")
        return self


class PlanUpdate(Body):
    """Changes apply to payments from now on; payments already made keep their terms."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    price_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    renewal_price_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    trial_days: int | None = Field(default=None, ge=0, le=90)
    refund_window_hours: int | None = Field(default=None, ge=0, le=24 * 90)
    duration_days: int | None = Field(default=None, ge=1, le=3660)
    active: bool | None = None


class PlanPublic(PlanFields):
    id: str
    community_id: str
    term_type: TermType
    active: bool
    created_at: datetime
