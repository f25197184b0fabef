"""The AsyncAPI document covers every registered event, and nothing is published unregistered."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from qunzhu_common.events.asyncapi import asyncapi_document
from qunzhu_common.events.registry import default_registry

SERVICES = Path(__file__).resolve().parents[2]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_registered_event_is_documented_on_its_topic() -> None:
    registry = default_registry()
    document = asyncapi_document(registry)
    assert document["asyncapi"] == "3.0.0"
    documented = {
        (message["name"], channel["address"])
        for channel in document["channels"].values()
        for message in (_resolve(document, m["$ref"]) for m in channel["messages"].values())
    }
    assert documented == {(spec.type, spec.topic) for spec in registry.specs()}


def test_every_reference_resolves() -> None:
    document = asyncapi_document(default_registry())
    refs = _refs(document)
    assert refs
    for ref in refs:
        _resolve(document, ref)  # KeyError when dangling


def test_message_schemas_are_valid_json_schema() -> None:
    import jsonschema  # a dependency of the [dev] extra: missing means a broken install, not a skip
    document = asyncapi_document(default_registry())
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)  # raises SchemaError naming the fault


def _emitted_types() -> set[tuple[str, str]]:
    """`type="…"` literals passed to emit()/new_envelope() anywhere in the services' code."""
    found = set()
    for path in SERVICES.glob("*/*/**/*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            name = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
            if name not in {"emit", "new_envelope"}:
                continue
            for keyword in call.keywords:
                if keyword.arg == "type" and isinstance(keyword.value, ast.Constant):
                    found.add((str(keyword.value.value), str(path.relative_to(SERVICES))))
    return found


def test_no_service_publishes_an_unregistered_event_type() -> None:
    registered = {spec.type for spec in default_registry().specs()}
    emitted = _emitted_types()
    assert emitted, "the scan found no emit() call at all: it is broken"
    unregistered = sorted(item for item in emitted if item[0] not in registered)
    assert not unregistered, f"published but not in the registry: {unregistered}"
