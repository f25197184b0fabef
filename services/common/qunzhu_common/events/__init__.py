"""Event contracts shared by all services: the envelope, the topics and the typed payload registry."""

from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.events.registry import EventRegistry, EventSpec, InvalidEvent, default_registry

__all__ = ["Envelope", "EventRegistry", "EventSpec", "InvalidEvent", "default_registry", "new_envelope"]
