"""Field types shared by events and by the API requests that cause them.

A request model uses the same type as the event it leads to, so a request the contract would refuse is a
422 at the door and never a 500 when the event is written to the outbox.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

# ISO 4217 alphabetic code: three upper-case letters (CNY, USD, HKD).
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
