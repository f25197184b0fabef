"""Registry of event types → topic, key and typed payload; validated on publish and on consume."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from qunzhu_common.events.envelope import Envelope


class InvalidEvent(ValueError):
    """The record cannot be processed as it is: unknown type, bad envelope or bad payload.

    Retrying cannot help, so consumers dead-letter it at once.
    """


def key_by_community(envelope: Envelope) -> str:
    return envelope.community_id


def key_by_data_field(name: str) -> Callable[[Envelope], str]:
    def key(envelope: Envelope) -> str:
        return str(envelope.data[name])

    key.__name__ = f"key_by_{name}"
    return key


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    topic: str
    payload: type[BaseModel]
    description: str = ""
    key: Callable[[Envelope], str] = field(default=key_by_community)
    key_description: str = "community id"


class EventRegistry:
    def __init__(self, specs: Iterable[EventSpec] = ()) -> None:
        self._specs: dict[tuple[str, int], EventSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: EventSpec) -> EventSpec:
        identity = (spec.type, spec.version)
        if identity in self._specs:
            raise ValueError(f"event {spec.type} v{spec.version} is already registered")
        self._specs[identity] = spec
        return spec

    def specs(self) -> list[EventSpec]:
        return sorted(self._specs.values(), key=lambda s: (s.topic, s.type, s.version))

    def spec_for(self, type_: str, version: int) -> EventSpec:
        try:
            return self._specs[(type_, version)]
        except KeyError:
            raise InvalidEvent(f"unknown event type {type_!r} version {version}") from None

    def parse_payload(self, envelope: Envelope) -> BaseModel:
        spec = self.spec_for(envelope.type, envelope.version)
        try:
            return spec.payload.model_validate(envelope.data)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid payload for {envelope.type} v{envelope.version}: {exc}") from exc

    def route(self, envelope: Envelope) -> tuple[str, str]:
        """Validate an envelope about to be published and return its (topic, key)."""
        spec = self.spec_for(envelope.type, envelope.version)
        self.parse_payload(envelope)
        return spec.topic, spec.key(envelope)

    def decode(self, raw: bytes) -> Envelope:
        try:
            return Envelope.from_bytes(raw)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid envelope: {exc}") from exc


def default_registry() -> EventRegistry:
    """A registry holding every contract in `qunzhu_common.events.contracts`."""
    from qunzhu_common.events.contracts import ALL_SPECS

    return EventRegistry(ALL_SPECS)
