"""AsyncAPI 3.0 document of every topic, key and payload, generated from the event registry."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from qunzhu_common.events.envelope import Envelope
from qunzhu_common.events.registry import EventRegistry, EventSpec
from qunzhu_common.events.topics import TOPIC_CONSUMERS, TOPIC_PRODUCERS, dlq_topic

REF_TEMPLATE = "#/components/schemas/{model}"


def _camel(text: str) -> str:
    parts = re.split(r"[^a-zA-Z0-9]+", text)
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _message_name(spec: EventSpec) -> str:
    return _camel(f"{spec.type}.v{spec.version}")


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """JSON schemas of the models, with nested definitions lifted into components/schemas."""
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def asyncapi_document(registry: EventRegistry, *, version: str = "0.1.0") -> dict[str, Any]:
    specs = registry.specs()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in sorted({s.topic for s in specs}):
        channel_id = _camel(topic)
        topic_specs = [s for s in specs if s.topic == topic]
        channel_messages = {}
        for spec in topic_specs:
            name = _message_name(spec)
            messages[name] = {
                "name": spec.type,
                "title": f"{spec.type} v{spec.version}",
                "summary": spec.description,
                "contentType": "application/json",
                "headers": {"type": "object"},
                "payload": {
                    "allOf": [
                        {"$ref": REF_TEMPLATE.format(model="Envelope")},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": spec.type},
                                "version": {"const": spec.version},
                                "data": {"$ref": REF_TEMPLATE.format(model=spec.payload.__name__)},
                            },
                        },
                    ]
                },
                "bindings": {"kafka": {"key": {"type": "string", "description": spec.key_description}}},
            }
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[channel_id] = {
            "address": topic,
            "title": topic,
            "description": (
                f"Written by {', '.join(TOPIC_PRODUCERS.get(topic, ('?',)))}; "
                f"read by {', '.join(TOPIC_CONSUMERS.get(topic, ('?',)))}. "
                f"Keyed by {topic_specs[0].key_description}. Records that fail go to {dlq_topic(topic)}."
            ),
            "messages": channel_messages,
            "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}},
        }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in channel_messages]
        operations[_camel(f"send {topic}")] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Published through the outbox of {', '.join(TOPIC_PRODUCERS.get(topic, ('?',)))}.",
            "messages": refs,
        }
        operations[_camel(f"receive {topic}")] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Consumed (inbox, exactly-once effects) by {', '.join(TOPIC_CONSUMERS.get(topic, ('?',)))}.",
            "messages": refs,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Qunzhu events",
            "version": version,
            "description": "Every topic, key and payload of the Qunzhu platform, generated from the registry.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": _schemas([Envelope, *{s.payload for s in specs}]),
        },
    }
