"""Embedded mode filled by the community simulator, and Debian's Chromium driven by Playwright, for /console.

The platform runs as a user runs it (`python -m qunzhu run`, a child process on a free loopback port) with
the settings `make demo` gives it; the simulator plays a small community through the real signed webhooks,
exactly as `make demo` does: its simulated days run from now, everyone pays now, and the engagement jobs
(key people, lurkers, removals, group health) are run as of the end of the simulated period. The owner then sets up
what the content page shows (groups, a weekly schedule, a guest session, a broadcast) through the API.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from qunzhu.simulator.demo import simulate
from qunzhu.simulator.drive import Target
from qunzhu.simulator.generate import SimConfig
from tests.console.support import Filled, chromium, start, stop
from tests.integration.stack import ROOT, free_port

SIM = SimConfig(groups=2, members_per_group=30, days=7, messages=250, seed=5, spammers=2)


def _content(filled: Filled) -> None:
    """What an owner sets up for the content page: groups, a weekly schedule, a guest session, a broadcast."""
    cid = filled.community_id
    for i, chat in enumerate(filled.chats):
        filled.api("PUT", f"/api/v1/content/communities/{cid}/groups",
                   json={"group_id": f"wechat:{chat}", "title": f"增长实验 {i + 1} 群"})
        # Membership's seats: the last group is the core (B) group that candidates are promoted into.
        filled.api("POST", f"/api/v1/membership/communities/{cid}/groups", json={
            "platform": "wechat", "external_id": chat, "name": f"增长实验 {i + 1} 群", "capacity": 500,
            "role": "B" if i == len(filled.chats) - 1 else "A"})
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    filled.api("POST", f"/api/v1/content/communities/{cid}/schedules", json={
        "title": "每周复盘", "text": "本周复盘开始啦，大家把实验结果发上来", "starts_at": starts.isoformat(),
        "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=20;BYMINUTE=30", "timezone": "Asia/Shanghai"})
    filled.api("POST", f"/api/v1/content/communities/{cid}/sessions", json={
        "topic": "冷启动的前 100 个用户", "guest_id": "wechat:guest-1", "guest_name": "老王",
        "host_id": filled.owner_id,
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "source_group_id": f"wechat:{filled.chats[0]}", "target_group_ids": [f"wechat:{c}" for c in filled.chats[1:]]})
    filled.api("POST", f"/api/v1/content/communities/{cid}/broadcasts", json={"text": "周五晚八点嘉宾分享，别错过"})
    # A second version of the scoring rules, taking effect after the simulated period: the settings page
    # shows the diff of this last change.
    filled.api("POST", f"/api/v1/engagement/communities/{cid}/rules", json={
        "rules": {"cooldown_s": 90}, "effective_from": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "note": "发言冷却从 60 秒改为 90 秒"})


@pytest.fixture(scope="package")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    chromium()
    data_dir = tmp_path_factory.mktemp("console-embedded")
    port = free_port()
    target = Target(base_url=f"http://127.0.0.1:{port}", api_key=secrets.token_urlsafe(24),
                    stripe_secret="whsec_" + secrets.token_urlsafe(24))
    env = {  # what `make demo` gives embedded mode
        "GATEWAY_ADMIN_API_KEY": target.api_key, "GATEWAY_STRIPE_WEBHOOK_SECRETS": f'["{target.stripe_secret}"]',
        "GATEWAY_BRIDGE_ALLOW_HTTP": "true", "GATEWAY_RATE_LIMIT_PER_S": "2000", "GATEWAY_RATE_LIMIT_BURST": "2000",
        "ENGAGEMENT_JOBS_INTERVAL_S": "0",
    }
    proc = start(data_dir, env, port)
    try:
        community, report = asyncio.run(simulate(target, SIM))
        token = subprocess.run(
            [sys.executable, "-m", "qunzhu", "token", "--person", report.driven.owner_id, "--data-dir", str(data_dir)],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        shots = Path(os.environ.get("QUNZHU_CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("console-screenshots"))
        shots.mkdir(parents=True, exist_ok=True)
        result = Filled(url=target.base_url, data_dir=data_dir, community_id=report.community_id,
                        owner_id=report.driven.owner_id, owner_token=token, chats=list(community.chats),
                        screenshots=shots)
        _content(result)
        yield result
    finally:
        stop(proc)
        if os.environ.get("QUNZHU_KEEP_CONSOLE_DATA") is None:
            shutil.rmtree(data_dir, ignore_errors=True)
