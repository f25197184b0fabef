"""The security suite's stack and cast: one real stack (Kafka, PostgreSQL, services as processes) with
two communities and a person for each role, plus a second gateway process with tight limits.

The main gateway runs with a generous rate limit so the authorization matrix and the fuzzer are never
throttled; the `limits` gateway (same database, consumes and relays nothing) has the small limits the
resource-limit tests probe. Background jobs run rarely, so row counts only move when a test acts.
"""

from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from qunzhu_common.testing import wechatpay_certificate
from tests.integration.actions import bearer, owner_token
from tests.integration.stack import GATEWAY_OPERATOR_KEY, Kafka, Postgres, ServiceProcess, Stack

WECHATPAY_APIV3_KEY = "0123456789abcdef0123456789abcdef"
WECHATPAY_SERIAL = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
# The limits gateway: a small bucket, a short read deadline for slow clients.
LIMITS_RATE_PER_S = 1.0
LIMITS_BURST = 5
LIMITS_READ_TIMEOUT_S = 2.0


class SecurityStack(Stack):
    def __init__(self, kafka: Kafka, postgres: Postgres, log_dir: Path) -> None:
        super().__init__(kafka, postgres, log_dir)
        self.wechatpay_key, pem = wechatpay_certificate(WECHATPAY_SERIAL)
        gateway = self.services["gateway"]
        gateway.env.update({
            "GATEWAY_WECHATPAY_APIV3_KEY": WECHATPAY_APIV3_KEY,
            "GATEWAY_WECHATPAY_PLATFORM_CERTIFICATES": pem,
            "GATEWAY_RATE_LIMIT_PER_S": "1000", "GATEWAY_RATE_LIMIT_BURST": "5000",
            # Loopback only: bot actions for Telegram/WeCom connectors go nowhere (port 9, discard).
            "GATEWAY_TELEGRAM_API_BASE": "http://127.0.0.1:9", "GATEWAY_WECOM_ROBOT_BASE": "http://127.0.0.1:9",
            "GATEWAY_STRIPE_API_BASE": "http://127.0.0.1:9", "GATEWAY_WECHATPAY_API_BASE": "http://127.0.0.1:9",
        })
        # Quiet background work: row counts must only move when a test acts.
        self.services["engagement"].env["ENGAGEMENT_JOBS_INTERVAL_S"] = "3600"
        self.services["membership"].env["MEMBERSHIP_SCHEDULER_INTERVAL_S"] = "3600"
        limits_env = {**gateway.env, "GATEWAY_RATE_LIMIT_PER_S": str(LIMITS_RATE_PER_S),
                      "GATEWAY_RATE_LIMIT_BURST": str(LIMITS_BURST), "GATEWAY_RUN_CONSUMERS": "false",
                      "GATEWAY_RUN_RELAY": "false", "GATEWAY_RUN_ACTIONS": "false",
                      "QUNZHU_HTTP_HEADER_TIMEOUT_S": str(LIMITS_READ_TIMEOUT_S),
                      "GATEWAY_BODY_READ_TIMEOUT_S": str(LIMITS_READ_TIMEOUT_S), "GATEWAY_API_MAX_BODY_BYTES": "65536"}
        self.limits = ServiceProcess("gateway", limits_env, log_dir)
        self.limits.log_path = log_dir / "gateway-limits.log"

    def start(self) -> None:
        super().start()
        # After the main gateway migrated the shared database.
        self.limits.start()
        self.limits.wait_ready()

    def stop(self) -> None:
        self.limits.kill(signal.SIGTERM)
        super().stop()

    @property
    def gateway(self) -> str:
        return self.services["gateway"].url

    @property
    def data_dir(self) -> Path:
        return Path(self.services["gateway"].env["GATEWAY_DATA_DIR"])


@dataclass
class Community:
    id: str
    owner: str
    people: dict[str, str] = field(default_factory=dict)  # role → person id
    group: str = field(default_factory=lambda: f"telegram:-100{uuid.uuid4().int % 10**9}")


@dataclass
class Cast:
    """Who plays each role. `a` is the community under test, `b` another one (its member is the outsider)."""

    a: Community
    b: Community
    headers: dict[str, dict[str, str]]  # role → credentials (anonymous: {})
    bot_key_id: str
    connector_id: str  # a connector of community A (for BOLA through B's path)

    @property
    def roles(self) -> list[str]:
        return list(self.headers)


ROLES = ("anonymous", "outsider", "member", "guest", "admin", "owner", "bot")


def _eventually(call, *, until, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    value = call()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {value!r}")
        time.sleep(0.2)
        value = call()
    return value


def _person() -> str:
    return f"telegram:{uuid.uuid4().int % 10**9 + 10**9}"


def build_cast(stack: SecurityStack) -> Cast:
    """Two free communities; in A an admin, a guest and an active member, and an owner's bot key (admin)."""
    gw = stack.gateway
    token = {}

    def headers_of(person: str) -> dict[str, str]:
        if person not in token:
            token[person] = owner_token(stack.data_dir, person)
        return bearer(token[person])

    with httpx.Client(timeout=15) as client:

        def community(owner: str) -> Community:
            body = {"name": f"安全 {uuid.uuid4().hex[:6]}", "positioning": "授权矩阵", "owner_id": owner}
            created = client.post(f"{gw}/api/v1/communities", json=body, headers={"X-API-Key": GATEWAY_OPERATOR_KEY})
            assert created.status_code == 201, created.text
            return Community(created.json()["id"], owner)

        def join(c: Community, person: str) -> None:
            joined = client.post(f"{gw}/api/v1/membership/communities/{c.id}/join", json={"accepted_rules_version": 1},
                                 headers=headers_of(person))
            assert joined.status_code in (200, 201), joined.text

        def member_state(c: Community, person: str) -> dict:
            answer = client.get(f"{gw}/api/v1/membership/communities/{c.id}/members/{person}",
                                headers=headers_of(c.owner))
            return answer.json() if answer.status_code == 200 else {}

        a, b = community(_person()), community(_person())
        a.people = {"admin": _person(), "guest": _person(), "member": _person()}
        b.people = {"member": _person()}
        for c in (a, b):
            for person in c.people.values():
                join(c, person)
        for role in ("admin", "guest"):
            granted = client.put(f"{gw}/api/v1/membership/communities/{a.id}/members/{a.people[role]}/role",
                                 json={"role": role}, headers=headers_of(a.owner))
            assert granted.status_code == 200, granted.text
        for c in (a, b):
            for role, person in c.people.items():
                _eventually(lambda c=c, p=person: member_state(c, p), what=f"{role} {person} active",
                            until=lambda s, r=role: s.get("status") == "active" and s.get("role") == r)

        owner_a = headers_of(a.owner)
        # The gateway's projection must know A's owner (and roles) before its own routes authorize them.
        key = _eventually(
            lambda: client.post(f"{gw}/api/v1/communities/{a.id}/api-keys", json={"name": "bot", "kind": "bot"},
                                headers=owner_a),
            until=lambda r: r.status_code == 201, what="A's owner projected into the gateway")
        connector = client.post(f"{gw}/api/v1/communities/{a.id}/connectors", headers=owner_a, json={
            "platform": "generic", "groups": [f"authz-{a.id}"],
            "secrets": {"signing_secrets": ["whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"]}})
        assert connector.status_code == 201, connector.text
        headers = {"anonymous": {}, "outsider": headers_of(b.people["member"]),
                   **{role: headers_of(a.people[role]) for role in ("member", "guest", "admin")},
                   "owner": owner_a, "bot": {"X-API-Key": key.json()["key"]}}
        # Admin rights in the gateway's own routes come from its projection: wait until it has them.
        _eventually(lambda: client.get(f"{gw}/api/v1/communities/{a.id}/connectors", headers=headers["admin"]),
                    until=lambda r: r.status_code == 200, what="A's admin projected into the gateway")
        for c in (a, b):
            _eventually(lambda c=c: client.put(f"{gw}/api/v1/content/communities/{c.id}/groups",
                                               json={"group_id": c.group}, headers=headers_of(c.owner)),
                        until=lambda r: r.status_code == 200, what="content knows the community")
    return Cast(a=a, b=b, headers=headers, bot_key_id=key.json()["id"], connector_id=connector.json()["id"])
