"""Issue 18 end to end: content as an operator runs it, through the gateway, with the operator's bot bridge
on loopback (one of its groups failing): a broadcast's status adds up, a session created minutes before it
starts is still announced at once, schedules list only what will fire, and the console's lists work."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.integration.actions import (
    bearer,
    create_community,
    owner_token,
    register_connector,
    register_content_group,
    webhook_secret,
)
from tests.integration.probes import eventually
from tests.integration.stack import GATEWAY_OPERATOR_KEY, Stack


@contextmanager
def bridge_failing_for(failing_group: str) -> Iterator[tuple[str, list[dict]]]:
    """An operator's bot bridge on 127.0.0.1: accepts every action, except those for `failing_group` (502)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            action = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            received.append(action)
            failing = action.get("data", {}).get("group_id", "").endswith(failing_group)
            self.send_response(502 if failing else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/actions", received
    finally:
        server.shutdown()
        server.server_close()


async def test_content_as_an_operator_runs_it_through_the_gateway(stack: Stack) -> None:
    gateway = stack["gateway"].url
    ok_group, bad_group = f"ok-{uuid.uuid4().hex[:6]}", f"bad-{uuid.uuid4().hex[:6]}"
    with bridge_failing_for(bad_group) as (bridge_url, received):
        async with httpx.AsyncClient(timeout=30) as client:
            cid = (await create_community(client, gateway, "/api/v1/communities"))["id"]
            owner = bearer(owner_token(Path(stack["gateway"].env["GATEWAY_DATA_DIR"])))
            await register_connector(client, gateway, cid, headers={"X-API-Key": GATEWAY_OPERATOR_KEY},
                                     groups=[ok_group, bad_group], secret=webhook_secret(), outbound_url=bridge_url)
            for group in (ok_group, bad_group):
                await register_content_group(client, gateway, cid, f"wechat:{group}", headers=owner)
            content = f"{gateway}/api/v1/content/communities/{cid}"

            # A broadcast to both groups: one confirms, the other fails for good → partially delivered.
            made = await client.post(f"{content}/broadcasts", json={"text": "本周分享会改到周四晚 8 点"}, headers=owner)
            assert made.status_code == 201, made.text
            broadcast = made.json()

            async def settled() -> dict:
                return (await client.get(f"{content}/broadcasts/{broadcast['id']}", headers=owner)).json()

            final = await eventually(settled, until=lambda b: b["status"] != "sending", timeout=120,
                                     what="the broadcast settled")
            assert final["status"] == "partially_delivered", final
            assert (final["groups_total"], final["delivered"], final["failed"], final["pending"]) == (2, 1, 1, 0)
            bad_calls = [a for a in received if a["data"].get("group_id", "").endswith(bad_group)
                         and a["data"].get("text") == "本周分享会改到周四晚 8 点"]
            # One retry budget end to end: the gateway's attempts, not content's × the gateway's.
            assert 1 <= len(bad_calls) <= 5, len(bad_calls)
            listed = await client.get(f"{content}/broadcasts", params={"status": "partially_delivered"},
                                      headers=owner)
            assert [b["id"] for b in listed.json()["data"]] == [broadcast["id"]]

            # A session created 3 minutes before it starts is announced at once (a catch-up preview).
            starts = datetime.now(UTC) + timedelta(minutes=3)
            created = await client.post(f"{content}/sessions", headers=owner, json={
                "topic": "私域增长的三个误区", "guest_id": "wechat:guest-1", "guest_name": "王老师",
                "host_id": "wechat:host-1", "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "source_group_id": f"wechat:{ok_group}", "target_group_ids": [f"wechat:{bad_group}"]})
            assert created.status_code == 201, created.text
            session = created.json()

            async def previews() -> list[dict]:
                return [a for a in received if "私域增长的三个误区" in json.dumps(a, ensure_ascii=False)]

            announced = await eventually(previews, until=lambda found: found, timeout=60,
                                         what="the catch-up preview reached the bridge")
            assert "还有" in announced[0]["data"]["text"]
            shown = (await client.get(f"{content}/sessions/{session['id']}", headers=owner)).json()
            catch_up = [n for n in shown["notices"] if n["catch_up"]]
            assert len(catch_up) == 1, shown["notices"]
            sessions = await client.get(f"{content}/sessions", params={"status": "scheduled"}, headers=owner)
            assert session["id"] in [s["id"] for s in sessions.json()["data"]]

            # A weekly schedule with an exception: `upcoming` lists only what will fire; paused, nothing.
            first = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
            schedule = await client.post(f"{content}/schedules", headers=owner, json={
                "text": "每周复盘", "starts_at": first.isoformat(), "rrule": "FREQ=WEEKLY"})
            assert schedule.status_code == 201, schedule.text
            sid = schedule.json()["id"]
            upcoming = schedule.json()["upcoming"]
            skipped = upcoming[1]
            excepted = await client.post(f"{content}/schedules/{sid}/exceptions", json={"occurs_at": skipped},
                                         headers=owner)
            assert excepted.status_code in (200, 201), excepted.text
            assert skipped not in excepted.json()["upcoming"]
            paused = await client.post(f"{content}/schedules/{sid}/pause", headers=owner)
            assert paused.json()["status"] == "paused" and paused.json()["upcoming"] == []

            # Leave nothing to fire later in the session-wide stack (other tests count the scheduler's firings).
            cancelled = await client.post(f"{content}/sessions/{session['id']}/cancel", headers=owner)
            assert cancelled.status_code == 200, cancelled.text
            assert all(n["status"] in ("sent", "cancelled") for n in cancelled.json()["notices"]), cancelled.text
