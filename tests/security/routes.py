"""The gateway's route table as the authorization matrix sees it: every operation of the aggregated OpenAPI
document (the gateway's own routes and every service's routes through `/api/v1/<service>/…`), the role
each one needs — read from the permission matrix membership publishes and the route's own documentation —
and a minimal valid request for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Webhooks have their own suite; login routes and probes are public by design.
SKIPPED_PREFIXES = ("/webhooks/", "/api/v1/auth/", "/services", "/healthz", "/readyz", "/asyncapi.json")
RANK = {"member": 1, "guest": 2, "admin": 3, "owner": 4}
FAKE_ID = "00000000-0000-4000-8000-000000000000"
FAKE_PERSON = "telegram:4242424242"
# Route documentation → who may call it, for routes that do not name a matrix action.
PHRASES = [
    (re.compile(r"platform operators"), "platform"),
    (re.compile(r"owners?, admins,? (and )?guests|owner/admin/guest"), "guest"),
    (re.compile(r"owner/admin|admins and the owner|owner, admins|owner or an admin|owner/an admin"), "admin"),
    (re.compile(r"owner only|\(the owner\)|the owner only"), "owner"),
]
PUBLIC = re.compile(r"\bpublic\b|anyone sees", re.I)
MASS_ASSIGNED = {"role": "owner", "tier": "mass-assigned-tier", "status": "active",
                 "expires_at": "2099-12-31T00:00:00Z"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # template
    description: str
    body_schema: dict[str, Any] | None
    params: tuple[dict[str, Any], ...]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def service(self) -> str:
        parts = self.path.split("/")
        return parts[3] if len(parts) > 3 and parts[3] in ("membership", "content", "engagement") else "gateway"


def operations(document: dict[str, Any]) -> list[Operation]:
    ops = []
    for path, items in document["paths"].items():
        if path.startswith(SKIPPED_PREFIXES) or "{community_id}" not in path and path != "/api/v1/communities":
            continue
        for method, op in items.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            body = ((op.get("requestBody") or {}).get("content") or {}).get("application/json", {}).get("schema")
            text = f"{op.get('summary', '')} {op.get('description', '')}"
            ops.append(Operation(method.upper(), path, text, body, tuple(op.get("parameters", []))))
    return sorted(ops, key=lambda o: (o.path, o.method))


# Engagement has no caller of its own: the gateway's rule (members take part, guests grade, staff manage).
ENGAGEMENT_PARTICIPATION = re.compile(
    r"/[a-z_]+/\{[a-z_]+\}/(submissions|entries|votes|signups|registrations|checkins|responses|cancellations)$")
# Content's documented defaults: managing is staff's, asking and commenting every member's.
CONTENT_MEMBER_WRITES = re.compile(r"/(questions|comments)$")


def requirement(op: Operation, matrix: dict[str, Any]) -> str:
    """The least role that may call `op`: 'public', 'member', 'guest', 'admin', 'owner', or 'platform'.

    A matrix action named in the route's documentation decides (its lowest unconditional role); else the
    documented phrase; else a read marked public is public; anything else needs a member of the community.
    """
    if op.service == "engagement" and op.method != "GET":
        if op.path.endswith("/grade"):
            return "guest"
        return "member" if ENGAGEMENT_PARTICIPATION.search(op.path) else "admin"
    if op.service == "content" and op.method != "GET" and CONTENT_MEMBER_WRITES.search(op.path):
        return "member"
    # `member.remove.<target role>`: the path names nobody in the community, so the target is a member.
    described = re.sub(r"\.<target role>`", ".member`", op.description)
    actions = [a for a in re.findall(r"`([a-z_]+\.[a-z_.]+)`", described) if a in matrix["actions"]]
    if actions:
        rule = matrix["actions"][actions[0]]
        roles = [r for r in rule["roles"] if r not in rule["conditional"]]
        return min(roles, key=RANK.__getitem__)
    for pattern, role in PHRASES:
        if pattern.search(op.description):
            return role
    if op.method == "GET" and PUBLIC.search(op.description):
        return "public"
    return "admin" if op.service == "content" and op.method != "GET" else "member"


def allowed(need: str, role: str, service: str = "gateway", method: str = "GET") -> bool:
    if need == "public":
        return True
    if role in ("anonymous", "outsider"):
        return False
    if role == "bot":
        # An admin-role API key acts as an admin in its community: in the gateway's own routes, and in
        # content and engagement, which authorize it themselves from its signed actor (kind, scope, role).
        # Membership knows persons only and refuses `apikey:…` actors (a gap, not a hole).
        if service == "membership":
            return False
        role = "admin"
    return need != "platform" and RANK[role] >= RANK[need]


def expected_refusal(role: str) -> int:
    return 401 if role == "anonymous" else 403


# -- minimal valid requests -------------------------------------------------------------------------

def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


STRING_CANDIDATES = ["telegram:4242424242", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=20;BYMINUTE=30", "Asia/Shanghai",
                     "effective_message", "A", "x"]


def example(schema: dict[str, Any] | None, document: dict[str, Any], name: str = "") -> Any:
    """A minimal instance: required properties only, the first enum value, formats honoured."""
    if schema is None:
        return None
    schema = _resolve(schema, document)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, document).get("type") != "null"]
            return example(options[0], document, name) if options else None
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema.get("type") != "object":
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: example(props[k], document, k) for k in schema.get("required", []) if k in props}
    if kind == "array":
        count = schema.get("minItems", 0)
        return [example(schema.get("items", {}), document, name) for _ in range(count)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), int(schema.get("exclusiveMinimum", 0)) + 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return (datetime.now(UTC) + timedelta(days=3)).isoformat()
        if fmt == "date":
            return (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
        low, high = schema.get("minLength", 1), schema.get("maxLength", 1000)
        pattern = schema.get("pattern")
        for candidate in STRING_CANDIDATES:
            if low <= len(candidate) <= high and (pattern is None or re.search(pattern, candidate)):
                return candidate
        return "x" * max(low, 1)
    return None


# Bodies whose rules span fields (the schema alone does not make them valid), by method and path suffix.
EXAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/connectors"): {"platform": "generic", "groups": ["matrix-group"],
                              "secrets": {"signing_secrets": ["whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"]}},
    ("PUT", "/content-mix"): {"beginner_pct": 30, "intermediate_pct": 50, "advanced_pct": 20},
    ("POST", "/content/communities/{community_id}/rituals"): {
        "title": "周五福利夜", "text": "福利夜开始了", "rrule": "FREQ=WEEKLY;BYDAY=FR;BYHOUR=21;BYMINUTE=0",
        "starts_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
    ("POST", "/engagement/communities/{community_id}/campaigns"): {
        "title": "满 400 人发红包", "trigger": "group_size", "threshold": 400, "reward_fen": 50000},
    ("POST", "/membership/communities/{community_id}/campaigns"): {
        "kind": "member_goal", "title": "满 400 人发红包", "reward": "¥500 红包", "goal": 400},
}


def body_example(method: str, path: str, schema: dict[str, Any] | None, document: dict[str, Any]) -> Any:
    for (m, suffix), body in EXAMPLES.items():
        if m == method and path.endswith(suffix):
            return dict(body)
    return example(schema, document) if schema is not None else None


def fill_path(op: Operation, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return values.get(match.group(1), FAKE_ID)

    return re.sub(r"\{([a-z_]+)\}", one, op.path)


def required_query(op: Operation, document: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    query = {}
    for param in op.params:
        if param.get("in") == "query" and param.get("required"):
            name = param["name"]
            query[name] = values.get(name) or example(param.get("schema"), document, name)
    return query
