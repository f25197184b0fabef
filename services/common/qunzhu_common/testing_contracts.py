"""A test helper (never imported by service code): request bodies name people and chat groups with the
contract's types (`PersonId`, `GroupId`), so a request the events would refuse is a 422 at the door.

`identity_fields_off_contract(app.openapi())` lists every request-body field named like an identity field of
the event contracts (`person_id`, `group_id`, `target_group_ids`…, nested bodies included) whose schema does
not carry the contract's pattern and length. A service test asserts the list is empty, so a new request model
that forgets the type is caught without a test per route.
"""

from __future__ import annotations

from typing import Any

from qunzhu_common.events.contracts.identity import GroupId, PersonId

PERSON_PATTERN: str = PersonId.__metadata__[0].pattern  # type: ignore[attr-defined]
GROUP_PATTERN: str = GroupId.__metadata__[0].pattern  # type: ignore[attr-defined]
MAX_ID_LENGTH = 200

# Body field names that events carry as PersonId / GroupId (a list of them for the plural names).
PERSON_FIELDS = frozenset({"person_id", "member_id", "referrer_id", "guest_id", "host_id", "inviter_id",
                           "invitee_id", "payer_id", "owner_id"})
GROUP_FIELDS = frozenset({"group_id", "source_group_id", "group_ids", "target_group_ids"})


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a value may take (anyOf/oneOf flattened), without null and the empty constant
    ('' = no group, where a route accepts it)."""
    schema = _resolve(schema, components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [b for s in schema[key] for b in _branches(s, components)]
    if len(schema.get("allOf", [])) == 1:
        return _branches(schema["allOf"][0], components)
    if schema.get("type") == "null" or schema.get("const") == "" or schema.get("enum") == [""]:
        return []
    return [schema]


def _typed(schema: dict[str, Any], pattern: str, components: dict[str, Any]) -> bool:
    for branch in _branches(schema, components):
        if branch.get("type") == "array":
            if not _typed(branch.get("items", {}), pattern, components):
                return False
        elif branch.get("pattern") != pattern or branch.get("maxLength", MAX_ID_LENGTH + 1) > MAX_ID_LENGTH:
            return False
    return True


def _walk(schema: dict[str, Any], where: str, components: dict[str, Any], seen: set[int], out: list[str]) -> None:
    schema = _resolve(schema, components)
    if id(schema) in seen:
        return
    seen.add(id(schema))
    for branch in _branches(schema, components):
        if branch.get("type") == "array":
            _walk(branch.get("items", {}), where, components, seen, out)
        for name, prop in branch.get("properties", {}).items():
            expected = PERSON_PATTERN if name in PERSON_FIELDS else GROUP_PATTERN if name in GROUP_FIELDS else None
            if expected is not None and not _typed(prop, expected, components):
                out.append(f"{where}: {name}")
            _walk(prop, f"{where}.{name}", components, seen, out)


def identity_fields_off_contract(openapi: dict[str, Any]) -> list[str]:
    """`METHOD path: field` for each request-body identity field not typed as the contract's PersonId/GroupId."""
    components = openapi.get("components", {}).get("schemas", {})
    out: list[str] = []
    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            content = (operation.get("requestBody") or {}).get("content") or {}
            schema = (content.get("application/json") or {}).get("schema")
            if schema is not None:
                _walk(schema, f"{method.upper()} {path}", components, set(), out)
    return sorted(set(out))
