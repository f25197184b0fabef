"""Typed payloads of every event, one module per producing domain.

A breaking change makes a new version (or a `.v2` topic); adding an optional field is not breaking.
"""

from qunzhu_common.events.contracts.chat import CHAT_SPECS
from qunzhu_common.events.contracts.content import CONTENT_SPECS
from qunzhu_common.events.contracts.engagement import ENGAGEMENT_SPECS
from qunzhu_common.events.contracts.membership import MEMBERSHIP_SPECS
from qunzhu_common.events.contracts.payments import PAYMENT_SPECS
from qunzhu_common.events.registry import EventSpec

ALL_SPECS: tuple[EventSpec, ...] = (
    *MEMBERSHIP_SPECS,
    *CHAT_SPECS,
    *PAYMENT_SPECS,
    *CONTENT_SPECS,
    *ENGAGEMENT_SPECS,
)

__all__ = ["ALL_SPECS"]
