"""Drive a generated community through the gateway, as platforms, providers and the owner reach it.

Everything goes through the gateway's public surface, signed as the real senders sign it:
- chat events: the generic connector's Standard Webhooks deliveries (`webhook-id`, `webhook-timestamp`,
  `webhook-signature: v1,<HMAC-SHA256>`), many events per delivery, in time order;
- payments and refunds: Stripe events signed with the gateway's Stripe webhook secret;
- the owner: logs in with the one-time code the gateway's bot sends to the connector's bot bridge (a
  small HTTP server here, which checks the bridge signature), then creates the plan, rules and homework
  and grades submissions with that member token, as a front end would;
- the platform operator's API key creates the community and registers the connector.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from qunzhu.simulator.generate import PLATFORM, Community

SCORED_METRIC = "qunzhu_engagement_activities_scored_total"
Progress = Callable[[str, int], None]  # (phase, how many more done)


class DriveError(RuntimeError):
    pass


def _secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Target:
    """A running gateway and the secrets it was started with."""

    base_url: str
    api_key: str  # GATEWAY_ADMIN_API_KEY
    stripe_secret: str  # one of GATEWAY_STRIPE_WEBHOOK_SECRETS


@dataclass
class Bridge:
    """The operator's bot bridge: receives the gateway's signed bot actions (login codes, nudges, warnings)."""

    secret: str = field(default_factory=_secret)
    actions: list[dict[str, Any]] = field(default_factory=list)
    forged: int = 0
    url: str = ""


@contextmanager
def bot_bridge() -> Iterator[Bridge]:
    from gateway.webhooks.verify import verify_standard

    bridge = Bridge()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verify_standard(headers, body, [bridge.secret], tolerance_s=300)
            except Exception:  # a forged or stale action: refuse it like a real bridge would
                bridge.forged += 1
                self.send_response(401)
            else:
                bridge.actions.append(json.loads(body).get("data", {}))
                self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    bridge.url = f"http://127.0.0.1:{server.server_address[1]}/actions"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="qunzhu-demo-bridge")
    thread.start()
    try:
        yield bridge
    finally:
        server.shutdown()
        server.server_close()


def stripe_signature(body: str, secret: str) -> str:
    import stripe

    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=int(time.time()))


def metric_sum(text: str, name: str) -> float:
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name)


@dataclass
class Driven:
    """What the driver created and sent, for the report and the checks."""

    community_id: str = ""
    connector_id: str = ""
    plan_id: str = ""
    owner_id: str = ""
    owner_token: str = ""
    assignment_ids: dict[str, str] = field(default_factory=dict)  # code → id
    deliveries: int = 0
    events_accepted: int = 0
    payments_accepted: int = 0
    refunds_accepted: int = 0
    grades: int = 0
    scholarships: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class Driver:
    def __init__(self, client: httpx.AsyncClient, target: Target, community: Community, bridge: Bridge,
                 *, progress: Progress | None = None, batch: int = 100, concurrency: int = 8) -> None:
        self.client, self.target, self.c, self.bridge = client, target, community, bridge
        self.progress = progress or (lambda _phase, _n: None)
        self.batch, self.concurrency = batch, concurrency
        self.signing_secret = _secret()
        self.out = Driven(owner_id=f"{PLATFORM}:owner-{community.tag}")

    # -- HTTP with the gateway's rate limit and a service starting up in mind ---------------------------

    async def call(self, method: str, path: str, *, auth: str | None = "owner", retry_on: tuple[int, ...] = (),
                   timeout_s: float = 60, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if auth == "owner":
            headers["Authorization"] = f"Bearer {self.out.owner_token}"
        elif auth == "operator":
            headers["X-API-Key"] = self.target.api_key
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self.client.request(method, self.target.base_url + path, headers=headers, **kwargs)
            wait = None
            if response.status_code == 429:
                wait = float(response.headers.get("retry-after", "1"))
            elif response.status_code in (502, 503, *retry_on):
                wait = 0.3
            if wait is None or time.monotonic() + wait > deadline:
                return response
            await asyncio.sleep(wait)

    async def expect(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        if response.status_code not in ok:
            raise DriveError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    async def scored(self) -> float:
        response = await self.call("GET", "/services/engagement/metrics", auth=None)
        return metric_sum(response.text, SCORED_METRIC)

    # -- setup: community, connector, owner login, plan, rules, homework ----------------------------------

    async def setup(self) -> None:
        started = time.monotonic()
        c, out = self.c, self.out
        created = await self.expect("POST", "/api/v1/communities", auth="operator", json={
            "name": f"增长实验室 {c.tag}", "positioning": "每天一个增长实验：做实验、交作业、互相复盘",
            "owner_id": out.owner_id, "entry_policies": ["paid"],
        })
        out.community_id = cid = created["id"]
        connector = await self.expect("POST", f"/api/v1/communities/{cid}/connectors", auth="operator", json={
            "platform": "generic", "identity_platform": PLATFORM, "name": "simulated bridge", "groups": c.chats,
            "secrets": {"signing_secrets": [self.signing_secret], "outbound_url": self.bridge.url,
                        "outbound_secret": self.bridge.secret},
        })
        out.connector_id = connector["id"]
        await self.login()
        plan = await self.expect("POST", f"/api/v1/membership/communities/{cid}/plans", json={
            "name": "年费会员", "price_fen": c.config.price_fen, "term_type": "fixed_duration", "duration_days": 365,
        })
        out.plan_id = plan["id"]
        # Engagement learns of the community from membership's event: 404 until then.
        await self.expect("GET", f"/api/v1/engagement/communities/{cid}", retry_on=(404,))
        await self.expect("POST", f"/api/v1/engagement/communities/{cid}/rules", json={
            "rules": {"elimination_window_days": c.config.days, "elimination_bottom_n": 10,
                      "lurker_days": c.config.days},
            "effective_from": (c.start - timedelta(minutes=5)).isoformat(),
            "note": f"demo: judge the simulated {c.config.days} days",
        })
        for a in c.assignments:
            made = await self.expect("POST", f"/api/v1/engagement/communities/{cid}/assignments", json={
                "title": a.title, "code": a.code, "created_by": out.owner_id,
                "due_at": (c.start + timedelta(days=a.first_day + 7)).isoformat(),
            })
            out.assignment_ids[a.code] = made["id"]
        out.seconds["setup"] = time.monotonic() - started

    async def login(self) -> None:
        """The owner's one-time code: asked for, sent by the gateway's bot to the bridge, exchanged for a token."""
        body = {"community_id": self.out.community_id, "member_id": self.out.owner_id}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # The gateway sends nothing until it has projected the owner from membership's events.
            await self.expect("POST", "/api/v1/auth/codes", auth=None, json=body, ok=(202,))
            for _ in range(20):
                code = self._code()
                if code:
                    token = await self.expect("POST", "/api/v1/auth/token", auth=None,
                                              json={"member_id": self.out.owner_id, "code": code})
                    self.out.owner_token = token["access_token"]
                    return
                await asyncio.sleep(0.25)
        raise DriveError("no login code reached the bot bridge: is GATEWAY_BRIDGE_ALLOW_HTTP=true set "
                         "on the gateway (the bridge listens on plain http://127.0.0.1)?")

    def _code(self) -> str | None:
        group = self.out.owner_id
        for action in reversed(self.bridge.actions):
            found = re.search(r"验证码：(\d{6})", action.get("text", ""))
            if action.get("group_id") == group and found:
                return found.group(1)
        return None

    # -- money ------------------------------------------------------------------------------------------

    async def _stripe(self, type_: str, obj: dict[str, Any]) -> None:
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": type_,
                           "created": int(time.time()), "data": {"object": obj}})
        answer = await self.expect("POST", "/webhooks/payments/stripe", auth=None, content=body.encode(), headers={
            "Stripe-Signature": stripe_signature(body, self.target.stripe_secret),
            "content-type": "application/json"})
        if answer["status"] != "accepted":
            raise DriveError(f"Stripe {type_} was {answer['status']}")

    async def pay(self) -> None:
        started, cid, gate = time.monotonic(), self.out.community_id, asyncio.Semaphore(self.concurrency)

        async def one(payment) -> None:  # noqa: ANN001
            async with gate:
                meta = {"community_id": cid, "plan_id": self.out.plan_id, "payer_id": payment.payer.person_id}
                await self._stripe("checkout.session.completed", {
                    "id": f"cs_{payment.payment_id}", "payment_intent": payment.payment_id, "payment_status": "paid",
                    "amount_total": payment.amount_fen, "currency": "cny", "metadata": meta})
                self.out.payments_accepted += 1
                self.progress("payments", 1)

        await asyncio.gather(*(one(p) for p in self.c.payments))
        self.out.seconds["payments"] = time.monotonic() - started

    async def refund(self) -> None:
        for payment in self.c.refunds:
            await self._stripe("charge.refunded", {
                "id": f"ch_{payment.payment_id}", "payment_intent": payment.payment_id,
                "amount_refunded": payment.amount_fen, "currency": "cny",
                "refunds": {"data": [{"id": payment.refund_id, "reason": "requested_by_customer"}]},
                "metadata": {"community_id": self.out.community_id}})
            self.out.refunds_accepted += 1
            self.progress("payments", 1)

    # -- chat -------------------------------------------------------------------------------------------

    def signed(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        from gateway.webhooks.verify import sign_standard

        body = json.dumps(payload, ensure_ascii=False).encode()
        delivery, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        return body, {"webhook-id": delivery, "webhook-timestamp": str(stamp), "content-type": "application/json",
                      "webhook-signature": sign_standard(self.signing_secret, delivery, stamp, body)}

    async def chat(self) -> None:
        """Every chat event in time order, `batch` per delivery, one delivery after the other (a platform's
        bridge forwards a group's events in order; questions must arrive before their answers)."""
        started = time.monotonic()
        path = f"/webhooks/chat/{self.out.connector_id}"
        items = self.c.items
        for i in range(0, len(items), self.batch):
            chunk = items[i:i + self.batch]
            body, headers = self.signed({"events": chunk})
            answer = await self.expect("POST", path, auth=None, content=body, headers=headers)
            if answer["status"] != "accepted":
                raise DriveError(f"chat delivery was {answer['status']}")
            self.out.deliveries += 1
            self.out.events_accepted += answer["events"]
            self.progress("chat", len(chunk))
        self.out.seconds["chat"] = time.monotonic() - started

    async def wait_scored(self, baseline: float, expected: int, *, timeout_s: float = 600) -> float:
        """Until engagement has scored `expected` more activities than at `baseline` (its own metric)."""
        started, done = time.monotonic(), 0
        while True:
            now = int(await self.scored() - baseline)
            if now > done:
                self.progress("scored", min(now, expected) - done)
                done = now
            if done >= expected:
                break
            if time.monotonic() - started > timeout_s:
                raise DriveError(f"engagement scored {done} of {expected} activities in {timeout_s:.0f} s")
            await asyncio.sleep(0.3)
        self.out.seconds["scoring_wait"] = time.monotonic() - started
        return time.monotonic() - started

    # -- after the days: grading, scholarships, the periodic jobs -------------------------------------

    async def grade(self) -> None:
        cid = self.out.community_id
        for code, assignment_id in self.out.assignment_ids.items():
            base = f"/api/v1/engagement/communities/{cid}/assignments/{assignment_id}"
            for submission in await self.expect("GET", f"{base}/submissions"):
                grade = self.c.grades.get((submission["person_id"], code))
                if grade is None or submission["grade"] is not None:
                    continue
                await self.expect("POST", f"{base}/submissions/{submission['id']}/grade", json={
                    "grade": grade, "graded_by": self.out.owner_id, "feedback": "simulated grade"})
                self.out.grades += 1
            self.out.scholarships += len(await self.expect("POST", f"{base}/scholarships"))

    async def run_jobs(self, as_of: datetime) -> dict[str, Any]:
        cid, results = self.out.community_id, {}
        for job in ("key_people", "lurkers", "elimination", "group_health"):
            answer = await self.expect("POST", f"/api/v1/engagement/communities/{cid}/jobs/{job}",
                                       params={"as_of": as_of.isoformat()})
            results[job] = answer["result"]
        return results
