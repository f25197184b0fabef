"""Part 4: leaderboards 7 d / 30 d / all time per community and per group, standings, community goals."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from qunzhu_common.timeutil import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
G1, G2 = "telegram:-1", "telegram:-2"


def local(day_offset: int, hour: int, minute: int = 0) -> datetime:
    """A moment `day_offset` local days from today in Shanghai, as an aware datetime."""
    today = utcnow().astimezone(SHANGHAI).date()
    return datetime.combine(today + timedelta(days=day_offset), time(hour, minute), SHANGHAI)


async def board(engagement, cid: str, **params) -> list[tuple[str, int, int]]:
    body = await engagement.get(f"/communities/{cid}/leaderboard", **params)
    return [(e["person_id"], e["points"], e["rank"]) for e in body["data"]]


async def test_windows_are_cut_on_local_days_and_groups_are_separate(engagement):
    cid = await engagement.community()
    a, b, c = "telegram:1", "telegram:2", "telegram:3"
    for person in (a, b, c):
        await engagement.member(cid, person)
    # a: check-ins today and 6 local days ago (00:00 Shanghai = 16:00 UTC the day before): both in 7 d.
    await engagement.command(cid, a, "checkin", local(0, 9), group=G1)
    await engagement.command(cid, a, "checkin", local(-6, 0, 0), group=G1)
    # b: 23:59 Shanghai 7 days ago: outside 7 d, inside 30 d; and 40 days ago: all time only.
    await engagement.command(cid, b, "checkin", local(-7, 23, 59), group=G2)
    await engagement.command(cid, b, "checkin", local(-40, 12), group=G2)
    await engagement.command(cid, b, "checkin", local(-41, 12), group=G2)
    await engagement.command(cid, b, "checkin", local(-42, 12), group=G2)
    # c: one effective message today in group 2.
    await engagement.message(cid, c, "今天的增长复盘写好了", local(0, 10), group=G2)

    assert await board(engagement, cid, window="7d") == [(a, 10, 1), (c, 1, 2)]
    assert await board(engagement, cid, window="30d") == [(a, 10, 1), (b, 5, 2), (c, 1, 3)]
    assert await board(engagement, cid, window="all") == [(b, 20, 1), (a, 10, 2), (c, 1, 3)]
    assert await board(engagement, cid, window="all", group_id=G2) == [(b, 20, 1), (c, 1, 2)]
    assert await board(engagement, cid, window="7d", group_id=G2) == [(c, 1, 1)]


async def test_standing_rank_points_to_next_level_and_to_the_top_10(engagement):
    cid = await engagement.community()
    people = [f"telegram:{n}" for n in range(1, 13)]
    for n, person in enumerate(people, start=1):
        await engagement.member(cid, person, name=f"成员{n}")
        for day in range(n):  # person n checks in n days: 5n points
            await engagement.command(cid, person, "checkin", local(-day, 8))

    top = (await engagement.get(f"/communities/{cid}/leaderboard", window="all", limit=3))["data"]
    assert [(e["person_id"], e["display_name"], e["points"], e["rank"]) for e in top] == [
        ("telegram:12", "成员12", 60, 1), ("telegram:11", "成员11", 55, 2), ("telegram:10", "成员10", 50, 3),
    ]
    second_page = (await engagement.get(f"/communities/{cid}/leaderboard", window="all", offset=10, limit=5))["data"]
    assert [(e["person_id"], e["rank"]) for e in second_page] == [("telegram:2", 11), ("telegram:1", 12)]

    last = await engagement.get(f"/communities/{cid}/members/telegram:1/standing", window="all")
    assert (last["rank"], last["points"], last["members_ranked"]) == (12, 5, 12)
    assert (last["level"], last["points_to_next_level"]) == (2, 15)  # L2 at 5, L3 at 20
    assert (last["top10_points"], last["points_to_top10"]) == (15, 10)  # the 10th (telegram:3) has 15
    third = await engagement.get(f"/communities/{cid}/members/telegram:3/standing", window="all")
    assert (third["rank"], third["points_to_top10"]) == (10, 0)
    week = await engagement.get(f"/communities/{cid}/members/telegram:12/standing", window="7d")
    assert (week["points"], week["total_points"]) == (35, 60)  # 7 local days of the 12 in the window
    nobody = await engagement.get(f"/communities/{cid}/members/telegram:99/standing", window="30d")
    assert (nobody["rank"], nobody["points"], nobody["points_to_top10"]) == (13, 0, 15)


async def test_ties_share_a_rank(engagement):
    cid = await engagement.community()
    for person in ("telegram:1", "telegram:2", "telegram:3"):
        await engagement.member(cid, person)
    await engagement.command(cid, "telegram:1", "checkin", local(0, 8))
    await engagement.command(cid, "telegram:2", "checkin", local(0, 8))
    await engagement.message(cid, "telegram:3", "一条有效的实验记录", local(0, 9))

    assert await board(engagement, cid, window="7d") == [("telegram:1", 5, 1), ("telegram:2", 5, 1),
                                                         ("telegram:3", 1, 3)]


async def test_community_goal_progress_and_reached_event(engagement):
    cid = await engagement.community()
    for person in ("telegram:1", "telegram:2"):
        await engagement.member(cid, person)
    response = await engagement.client.post(f"/communities/{cid}/goals", json={
        "title": "本月打卡 3 次", "metric": "checkins", "target": 3, "starts_at": local(-1, 0).isoformat(),
    })
    assert response.status_code == 201, response.text
    goal_id = response.json()["id"]
    await engagement.command(cid, "telegram:1", "checkin", local(0, 8))
    await engagement.command(cid, "telegram:2", "checkin", local(0, 8))

    goal = await engagement.get(f"/communities/{cid}/goals/{goal_id}")
    assert (goal["value"], goal["remaining"], goal["progress_text"], goal["reached_at"]) == (2, 1, "2 of 3", None)
    await engagement.command(cid, "telegram:1", "checkin", local(1, 8))
    goal = await engagement.get(f"/communities/{cid}/goals/{goal_id}")
    assert (goal["value"], goal["percent"], goal["reached_at"] is not None) == (3, 100.0, True)
    assert [e.data["goal_id"] for e in await engagement.outbox_events("goal.reached")] == [goal_id]


async def test_points_goal_reads_in_wan(engagement):
    cid = await engagement.community()
    response = await engagement.client.post(f"/communities/{cid}/goals", json={
        "title": "全员积分 50万", "metric": "points", "target": 500000,
    })
    assert response.json()["progress_text"] == "0 of 50万"
    bad = await engagement.client.post(f"/communities/{cid}/goals", json={"title": "x", "target": 0})
    assert bad.status_code == 422


async def test_large_windows_are_served_from_a_short_lived_cache(engagement, monkeypatch):
    from engagement.leaderboard import ranking

    monkeypatch.setattr(ranking, "CACHE_MIN_PEOPLE", 1)  # every window counts as large here
    cid = await engagement.community()
    a, b = "telegram:1", "telegram:2"
    for person in (a, b):
        await engagement.member(cid, person)
    await engagement.command(cid, a, "checkin", local(0, 8))
    assert await board(engagement, cid, window="7d") == [(a, 5, 1)]

    await engagement.command(cid, b, "checkin", local(0, 8))
    await engagement.message(cid, b, "今天的增长实验复盘", local(0, 9))
    assert await board(engagement, cid, window="7d") == [(a, 5, 1)]  # within the TTL: the cached ranking
    assert (await engagement.get(f"/communities/{cid}/members/{b}/standing", window="all"))["points"] == 6

    monkeypatch.setattr(ranking, "CACHE_TTL_S", 0.0)
    ranking._CACHE.clear()
    assert await board(engagement, cid, window="7d") == [(b, 6, 1), (a, 5, 2)]
    standing = await engagement.get(f"/communities/{cid}/members/{a}/standing", window="7d")
    assert (standing["rank"], standing["points_to_top10"], standing["members_ranked"]) == (2, 0, 2)
