"""The community simulator: what it generates, and a small demo end to end against embedded mode."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import pytest

from engagement.jobs.keypeople import analyse, build_graph
from engagement.scoring.classify import classify_message
from engagement.scoring.rules import DEFAULT_RULES
from qunzhu.simulator import texts
from qunzhu.simulator.generate import PLATFORM, SimConfig, generate
from qunzhu.simulator.report import precision_at_k

START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def community():
    return generate(SimConfig(start=START))


def _pid(uid: str) -> str:
    return f"{PLATFORM}:{uid}"


def test_the_same_seed_gives_the_same_community_and_another_seed_another() -> None:
    a, b = generate(SimConfig(seed=11, start=START)), generate(SimConfig(seed=11, start=START))
    assert a.items == b.items and a.payments == b.payments and a.grades == b.grades
    assert [p.uid for p in a.people] == [p.uid for p in b.people]
    other = generate(SimConfig(seed=12, start=START))
    assert other.items != a.items


def test_groups_roles_and_planted_key_people(community) -> None:
    cfg = community.config
    assert len(community.chats) == cfg.groups == 3
    by_group = Counter(p.groups[0] for p in community.people)
    assert set(by_group.values()) == {cfg.members_per_group}
    assert len(community.planted_leaders) == cfg.groups * cfg.leaders_per_group
    connectors = community.of_kind("connector")
    assert len(connectors) == cfg.groups and all(len(set(p.groups)) == 2 for p in connectors)
    # Together the connectors bridge every group to the next one.
    assert {frozenset(p.groups) for p in connectors} == {frozenset({g, (g + 1) % 3}) for g in range(3)}
    assert len(community.of_kind("lurker")) == cfg.groups * round(cfg.lurker_share * cfg.members_per_group)
    assert len(community.of_kind("spammer")) == cfg.spammers


def test_chatter_follows_zipf(community) -> None:
    counts = Counter(i["sender_id"] for i in community.items if i["type"] == "message"
                     and not texts.is_command(i["text"]))
    ranked = sorted(counts.values(), reverse=True)[:50]
    xs, ys = [math.log(r) for r in range(1, len(ranked) + 1)], [math.log(v) for v in ranked]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    assert -1.3 < slope < -0.7, slope  # log(count) ≈ −s·log(rank) with s = 1
    # A long tail: the top 10 % of speakers say more than half of it.
    top = sorted(counts.values(), reverse=True)
    assert sum(top[: len(top) // 10]) > sum(top) / 2


def test_lurkers_only_join_and_everyone_pays(community) -> None:
    lurkers = {p.uid for p in community.of_kind("lurker")}
    for item in community.items:
        actor = item.get("sender_id") or item.get("reactor_id") or item.get("member_id")
        if actor in lurkers:
            assert item["type"] == "member_joined"
    joined = Counter(i["member_id"] for i in community.items if i["type"] == "member_joined")
    assert joined == Counter({p.uid: len(p.groups) for p in community.people})
    assert {p.payer.uid for p in community.payments} == {p.uid for p in community.people}
    refunds = community.refunds
    assert 0 < len(refunds) <= 0.05 * len(community.payments)
    assert community.revenue_fen == community.config.price_fen * (len(community.payments) - len(refunds))


def test_items_are_in_time_order_and_answers_follow_their_questions(community) -> None:
    times = [datetime.fromisoformat(i["timestamp"]) for i in community.items]
    assert times == sorted(times)
    assert community.start <= times[0] and times[-1] < community.end
    seen: dict[str, str] = {}
    answers = 0
    for item in community.items:
        if item["type"] == "message":
            reply = item.get("reply_to")
            if reply:
                assert seen[reply["message_id"]] == reply["sender_id"]
                answers += texts.is_command(seen.get("text:" + reply["message_id"], ""))
            seen[item["message_id"]] = item["sender_id"]
            seen["text:" + item["message_id"]] = item["text"]
    assert answers > 20  # questions (？…) get answered
    kinds = community.counts()
    assert kinds["command"] > 100 and kinds["reaction"] > 100 and kinds["red_packet"] > 0


def test_what_people_write_is_classified_as_the_simulator_means_it(community) -> None:
    spammers = {p.uid for p in community.of_kind("spammer")}
    strikes: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    for item in community.items:
        if item["type"] != "message" or texts.is_command(item["text"]):
            continue
        verdict = classify_message(DEFAULT_RULES, text=item["text"], links=[], media_kind="none", repeated=False)
        verdicts[verdict.rule_type] += 1
        if verdict.strike:
            strikes[item["sender_id"]] += 1
    assert {uid for uid, n in strikes.items() if n >= DEFAULT_RULES.strike_limit} == spammers
    assert verdicts["effective_message"] > verdicts["noise"] > 0 and verdicts["share_with_intro"] > 0
    assert verdicts["bare_link"] > 0


def test_the_planted_key_people_stand_out_in_the_interaction_graph(community) -> None:
    """The graph engagement builds from these events (replies, mentions, reactions) ranks the planted first."""
    edges = []
    for item in community.items:
        if item["type"] == "message":
            if item.get("reply_to"):
                edges.append((_pid(item["sender_id"]), _pid(item["reply_to"]["sender_id"]), "reply"))
            edges += [(_pid(item["sender_id"]), _pid(m), "mention") for m in item.get("mentions", [])]
        elif item["type"] == "reaction":
            edges.append((_pid(item["reactor_id"]), _pid(item["target_sender_id"]), "reaction"))
    result = analyse(build_graph(edges), top_k=10)
    leaders = [p.person_id for p in result["opinion_leaders"]]
    connectors = [p.person_id for p in result["connectors"]]
    assert precision_at_k(leaders, community.planted_leaders) >= 0.8
    assert precision_at_k(connectors, community.planted_connectors) >= 0.6


def test_precision_at_k() -> None:
    assert precision_at_k(["a", "x", "b", "c"], {"a", "b", "c"}) == pytest.approx(2 / 3)
    assert precision_at_k(["a"], {"a"}, k=2) == 0.5
    assert precision_at_k([], set()) == 0.0


async def test_a_small_demo_end_to_end_against_embedded_mode() -> None:
    """`python -m qunzhu demo` in small: embedded mode as a child process, signed webhooks, the report."""
    from qunzhu.simulator.demo import run_demo

    config = SimConfig(groups=2, members_per_group=30, days=7, messages=250, seed=5, spammers=2)
    report = await run_demo(config)
    community = generate(config.__class__(**{**config.__dict__, "start": None}))  # same people and money

    assert report.leaderboard and report.leaderboard[0]["points"] > 0
    assert [e["rank"] for e in report.leaderboard] == sorted(e["rank"] for e in report.leaderboard)
    assert report.leader_precision > 0 and report.connector_precision > 0
    assert report.net_revenue_fen == report.expected_revenue_fen == community.revenue_fen
    assert report.revenue["reconciled"] is True
    assert report.driven.refunds_accepted == len(community.refunds)
    assert report.planted_lurkers <= set(report.lurkers)  # every planted lurker is flagged
    caught = {r["person_id"] for r in report.removals if r["reason"] == "rule_violation"}
    assert caught == report.planted_spammers
    assert sum(report.levels.values()) == report.members and max(report.levels) >= 2
    assert len(report.health) == config.groups
    assert report.driven.grades > 0 and report.bot_actions["gateway"] >= 1  # the owner's login code


def test_the_group_health_table_fits_80_columns_without_cutting_a_header():
    from rich.console import Console

    from qunzhu.simulator.drive import Driven
    from qunzhu.simulator.report import HEALTH_COLUMNS, Report, render

    health = [dict(group_id=f"c-1-g{i}", members=200, daily_active_ratio_7d=0.123, effective_share_7d=0.456,
                   messages_7d=12345, kol=9, active=40, reply_one=60, silent=91, dead_group_risk=i == 2)
              for i in (1, 2, 3)]
    report = Report(community_id="c-1", members=600, leaderboard=[], levels={1: 600}, lurkers=[], removals=[],
                    leaders_found=[], connectors_found=[], planted_leaders=set(), planted_connectors=set(),
                    planted_lurkers=set(), planted_spammers=set(), health=health,
                    revenue={"captured_fen": 0}, expected_revenue_fen=0, driven=Driven())
    console = Console(width=80, record=True, color_system=None)

    render(report, console)

    text = console.export_text()
    header = next(line for line in text.splitlines() if "group" in line and "dying" in line)
    assert all(column in header for column in HEALTH_COLUMNS), header
    assert "…" not in header and max(len(line) for line in text.splitlines()) <= 80
