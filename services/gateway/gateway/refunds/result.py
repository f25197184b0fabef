"""What one call to a payment provider came to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["submitted", "already_refunded", "manual", "retry", "failed"]


@dataclass(frozen=True)
class Result:
    """`retry`: worth another attempt (5xx, timeout, rate limit); `failed`: permanent (4xx, not configured)."""

    outcome: Outcome
    error: str = ""
    refund_id: str | None = None
    retry_after_s: float | None = None
