"""Typed payloads of every event, one module per producing domain."""

from qunzhu_common.events.contracts.membership import MEMBERSHIP_SPECS
from qunzhu_common.events.registry import EventSpec

ALL_SPECS: tuple[EventSpec, ...] = (*MEMBERSHIP_SPECS,)

__all__ = ["ALL_SPECS"]
