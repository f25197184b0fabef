"""Running the authorization matrix: every operation × every role, with the expectation from routes.py.

Writes run the refused roles first, then the allowed ones from the least privileged up, each with the
mass-assignment fields (`role`, `tier`, `status`, `expires_at`) added wherever the body does not declare
them. Path ids other than the community's are ids that do not exist (writes then stop at 404 after the
authorization check), and persons in paths are nobody in the cast, so the cast survives the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.security import routes
from tests.security.harness import ROLES, Cast

# Routes whose documented rule depends on the request: the caller's own data is theirs, staff see others'.
SELF_READS = {  # path suffix → who else may read (the person named in the path always may)
    "/members/{member_id}": "admin",
    "/members/{member_id}/payments": "owner",
    "/members/{member_id}/referrals": "admin",
    "/access": "admin",
    "/authorize": "admin",
}
# Documentation that names the stricter of two cases: the default case decides.
OVERRIDES = {
    "GET /api/v1/membership/communities/{community_id}/invites": "member",  # one's own; scope=all: invite.manage
    # Granting names a role in the body: the generated body grants admin, which only the owner may.
    "PUT /api/v1/membership/communities/{community_id}/members/{member_id}/role": "owner",
    # Any signed-in person may ask to join (an API key is not a person: membership refuses it).
    "POST /api/v1/membership/communities/{community_id}/join": "person",
    # The person who pays (a joiner in pending_payment, or a renewing member); an API key is not a person.
    "POST /api/v1/communities/{community_id}/checkout": "person",
}
# Writes on one's own membership: the path names the caller.
SELF_WRITES = {"PATCH /api/v1/membership/communities/{community_id}/members/{member_id}"}
# Body fields that name the caller (a person below admin may only name themself).
SELF_FIELDS = ("person_id", "member_id", "graded_by", "created_by")
# Not run for allowed roles: dissolving the cast's community; joining (the outsider would become a member).
NEVER_RUN_ALLOWED = {"DELETE /api/v1/membership/communities/{community_id}",
                     "POST /api/v1/membership/communities/{community_id}/join"}
PRIVILEGE = ["anonymous", "outsider", "member", "guest", "bot", "admin", "owner"]


@dataclass
class Outcome:
    op: str
    role: str
    need: str
    allowed: bool
    status: int
    problem: bool

    @property
    def ok(self) -> bool:
        if self.status >= 500:
            return False
        if self.allowed:
            return self.status not in (401, 403)
        refused = routes.expected_refusal(self.role)
        # A path id that does not exist in this community may be reported before the role check: it tells
        # nothing and changes nothing. Everything else must be refused by authorization itself.
        return self.problem and (self.status == refused or (self.status == 404 and self.role != "anonymous"))


def need_of(op: routes.Operation, matrix: dict[str, Any]) -> str:
    return OVERRIDES.get(op.key) or routes.requirement(op, matrix)


def self_rule(op: routes.Operation) -> str | None:
    for suffix, need in SELF_READS.items():
        if op.method == "GET" and op.path.endswith(suffix):
            return need
    return None


def is_allowed(op: routes.Operation, need: str, role: str) -> bool:
    if need == "person":
        return role not in ("anonymous", "bot")
    other = self_rule(op)
    if other is not None:  # reads about A's plain member: theirs, or staff's
        return role == "member" or routes.allowed(other, role, op.service, op.method)
    return routes.allowed(need, role, op.service, op.method)


def body_for(op: routes.Operation, document: dict[str, Any], *, mass_assign: bool = False,
             caller: str | None = None) -> Any:
    body = routes.body_example(op.method, op.path, op.body_schema, document)
    if isinstance(body, dict) and caller:
        body.update({k: caller for k in SELF_FIELDS if k in body})
    if isinstance(body, dict) and mass_assign:
        declared = routes._resolve(op.body_schema, document).get("properties", {})  # noqa: SLF001
        body.update({k: v for k, v in routes.MASS_ASSIGNED.items() if k not in declared})
    return body


def person_of(cast: Cast, role: str) -> str | None:
    if role == "owner":
        return cast.a.owner
    if role == "outsider":
        return cast.b.people["member"]
    return cast.a.people.get(role)


def sweep(client: httpx.Client, gateway: str, cast: Cast, document: dict[str, Any],
          matrix: dict[str, Any]) -> list[Outcome]:
    outcomes = []
    member = cast.a.people["member"]
    for op in routes.operations(document):
        if op.path == "/api/v1/communities":
            continue  # not inside a community: creating one is tested on its own
        need = need_of(op, matrix)
        reading = op.method == "GET"
        values = {"community_id": cast.a.id, "member_id": member if reading else routes.FAKE_PERSON,
                  "person_id": member if reading else routes.FAKE_PERSON, "action": "content.post"}
        order = sorted(ROLES, key=lambda r: (is_allowed(op, need, r), PRIVILEGE.index(r)))
        for role in order:
            allowed = is_allowed(op, need, role)
            if allowed and op.key in NEVER_RUN_ALLOWED:
                continue
            caller = person_of(cast, role)
            path_values = {**values, "member_id": caller or routes.FAKE_PERSON} if op.key in SELF_WRITES else values
            response = client.request(op.method, gateway + routes.fill_path(op, path_values),
                                      headers=cast.headers[role], json=body_for(op, document, caller=caller),
                                      params=routes.required_query(op, document, values))
            problem = response.headers.get("content-type", "").startswith("application/problem+json")
            outcomes.append(Outcome(op.key, role, need, allowed, response.status_code, problem))
    return outcomes
