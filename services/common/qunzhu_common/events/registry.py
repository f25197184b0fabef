"""Registry of event types → topic, key and typed payload; validated on publish and on consume."""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, create_model

from qunzhu_common.events.envelope import Envelope, EnvelopeHead

# How `Envelope.to_bytes` starts every record it writes: the type and version can be read before any
# parsing, to pick the typed envelope that decodes the whole record in one call. Bytes written any
# other way (by hand, by another tool) take the generic path; so does a record the typed envelope
# refuses, for the precise error.
_WIRE_HEAD = re.compile(rb'\{"id":"[^"]{0,64}","type":"([a-z0-9_.]{1,100})","version":([0-9]{1,9}),')


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
        self._typed: dict[tuple[str, int], type[EnvelopeHead]] = {}
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
        """Validate an envelope about to be published and return its (topic, key).

        An envelope built by `new_envelope` from the spec's payload model was validated when that model
        was built: it is not validated again (one validation per event). Any other is validated here.
        """
        spec = self.spec_for(envelope.type, envelope.version)
        if not isinstance(envelope.payload, spec.payload):
            self.parse_payload(envelope)
        return spec.topic, spec.key(envelope)

    def envelope_model(self, spec: EventSpec) -> type[EnvelopeHead]:
        """The envelope of one event type whose `data` is the spec's payload model (built once)."""
        identity = (spec.type, spec.version)
        model = self._typed.get(identity)
        if model is None:
            fields: dict[str, Any] = {
                "type": (Literal[spec.type], ...),  # type: ignore[valid-type]
                "version": (Literal[spec.version], ...),  # type: ignore[valid-type]
                "data": (spec.payload, ...),
            }
            model = create_model(  # type: ignore[call-overload]
                f"Envelope[{spec.type} v{spec.version}]", __base__=EnvelopeHead, **fields)
            self._typed[identity] = model
        return model

    def decode_event(self, raw: bytes, wanted: Container[str]) -> tuple[EnvelopeHead, BaseModel | None]:
        """Decode a consumed record: its envelope and, when its type is in `wanted`, its typed payload
        (None otherwise: an event nobody handles is not validated past its envelope).

        The fast path validates the raw bytes once into the type's typed envelope (`data` is the
        payload model); anything it cannot take goes through `decode` + `parse_payload`, which raise
        `InvalidEvent` with the reason.
        """
        head = _WIRE_HEAD.match(raw)
        if head is not None:
            spec = self._specs.get((head[1].decode(), int(head[2])))
            if spec is not None and spec.type in wanted:
                try:
                    typed = self.envelope_model(spec).model_validate_json(raw)
                except ValidationError:
                    pass  # the generic path says what is wrong
                else:
                    return typed, typed.data  # type: ignore[attr-defined]
        envelope = self.decode(raw)
        if envelope.type not in wanted:
            return envelope, None
        return envelope, self.parse_payload(envelope)

    def decode(self, raw: bytes) -> Envelope:
        try:
            return Envelope.from_bytes(raw)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid envelope: {exc}") from exc


def default_registry() -> EventRegistry:
    """A registry holding every contract in `qunzhu_common.events.contracts`."""
    from qunzhu_common.events.contracts import ALL_SPECS

    return EventRegistry(ALL_SPECS)
