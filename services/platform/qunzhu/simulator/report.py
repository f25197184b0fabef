"""What Qunzhu made of the simulated community, read back through the gateway's public API, and printed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qunzhu.simulator.drive import Driven, Driver
from qunzhu.simulator.generate import Community


def precision_at_k(found: list[str], planted: set[str], k: int | None = None) -> float:
    """Share of the top k found that were planted (k defaults to how many were planted)."""
    k = len(planted) if k is None else k
    if k <= 0:
        return 0.0
    return len(set(found[:k]) & planted) / k


def level_of(points: int, thresholds: list[int]) -> int:
    return sum(1 for t in thresholds if points >= t) or 1


@dataclass
class Report:
    community_id: str
    members: int
    leaderboard: list[dict[str, Any]]
    levels: dict[int, int]
    lurkers: list[str]
    removals: list[dict[str, Any]]
    leaders_found: list[str]
    connectors_found: list[str]
    planted_leaders: set[str]
    planted_connectors: set[str]
    planted_lurkers: set[str]
    planted_spammers: set[str]
    health: list[dict[str, Any]]
    revenue: dict[str, Any]
    expected_revenue_fen: int
    driven: Driven
    thresholds: list[int] = field(default_factory=lambda: [0])
    names: dict[str, str] = field(default_factory=dict)  # person id → the simulated person's name
    bot_actions: Counter[str] = field(default_factory=Counter)

    @property
    def leader_precision(self) -> float:
        return precision_at_k(self.leaders_found, self.planted_leaders)

    @property
    def connector_precision(self) -> float:
        return precision_at_k(self.connectors_found, self.planted_connectors)

    @property
    def lurker_precision(self) -> float:
        return len(set(self.lurkers) & self.planted_lurkers) / len(self.lurkers) if self.lurkers else 0.0

    @property
    def net_revenue_fen(self) -> int:
        return int(self.revenue.get("net_fen", 0))


async def collect(driver: Driver, community: Community, *, as_of: datetime) -> Report:
    """Everything the report shows, through the gateway (anonymous reads and the owner's token)."""
    out = driver.out
    base = f"/api/v1/engagement/communities/{out.community_id}"
    top = await driver.expect("GET", f"{base}/leaderboard", params={"window": "all", "limit": 10})
    rules = await driver.expect("GET", f"{base}/rules")
    thresholds = list(rules["current"]["rules"]["level_thresholds"])
    everyone: list[dict[str, Any]] = []
    while True:  # every member with points, 200 a page, for the level distribution
        page = await driver.expect("GET", f"{base}/leaderboard",
                                   params={"window": "all", "limit": 200, "offset": len(everyone)})
        everyone += page["data"]
        if len(page["data"]) < 200:
            break
    members = len(community.people)
    levels = Counter(level_of(int(e["points"]), thresholds) for e in everyone)
    levels[1] += max(0, members - len(everyone))  # no points at all: level 1
    key = await driver.expect("GET", f"{base}/key-people")
    lurkers = [f["person_id"] for f in await driver.expect("GET", f"{base}/lurkers")]
    removals = await driver.expect("GET", f"{base}/removal-recommendations")
    health = await driver.expect("GET", f"{base}/groups/health", params={"as_of": as_of.isoformat()})
    ledger = await driver.expect("GET", f"/api/v1/membership/communities/{out.community_id}/ledger",
                                 params={"limit": 1})
    revenue = next((s for s in ledger["summary"] if s["currency"] == "CNY"), {})
    return Report(
        community_id=out.community_id, members=members, leaderboard=top["data"], levels=dict(sorted(levels.items())),
        lurkers=lurkers, removals=removals,
        leaders_found=[p["person_id"] for p in key.get("opinion_leaders", [])],
        connectors_found=[p["person_id"] for p in key.get("connectors", [])],
        planted_leaders=community.planted_leaders, planted_connectors=community.planted_connectors,
        planted_lurkers={p.person_id for p in community.of_kind("lurker")},
        planted_spammers={p.person_id for p in community.of_kind("spammer")},
        health=health, revenue=revenue, expected_revenue_fen=community.revenue_fen, driven=out, thresholds=thresholds,
        names={p.person_id: p.name for p in community.people},
        bot_actions=Counter(str(a.get("requested_by", "?")) for a in driver.bridge.actions),
    )


def _short(person_id: str) -> str:
    return person_id.partition(":")[2] or person_id


HEALTH_COLUMNS = ("group", "mem", "act/d", "eff", "msg7d", "KOL", "act", "r-1", "quiet", "dying")


def _yuan(fen: Any) -> str:
    return f"¥{int(fen or 0) / 100:,.2f}"


def render(report: Report, console: Any) -> None:
    """The report as rich tables on `console`."""
    from rich.table import Table

    names = report.names
    planted = report.planted_leaders | report.planted_connectors

    board = Table(title="Leaderboard — top 10 (all time)", title_justify="left")
    for column in ("rank", "member", "name", "points", "level", "planted as"):
        board.add_column(column, justify="right" if column in ("rank", "points", "level") else "left")
    for entry in report.leaderboard:
        role = ("opinion leader" if entry["person_id"] in report.planted_leaders
                else "connector" if entry["person_id"] in report.planted_connectors else "")
        board.add_row(str(entry["rank"]), entry["person_id"], names.get(entry["person_id"], ""), str(entry["points"]),
                      f"L{level_of(int(entry['points']), report.thresholds)}", role)
    console.print(board)
    console.print("Levels: " + "  ".join(f"L{level}: {count}" for level, count in report.levels.items()))

    people = Table(title="Key people found vs planted", title_justify="left")
    for column in ("kind", "planted", "found: top K (bold: planted)", "precision@K"):
        people.add_column(column)
    for kind, found, truth, precision in (
        ("opinion leaders (PageRank)", report.leaders_found, report.planted_leaders, report.leader_precision),
        ("connectors (betweenness)", report.connectors_found, report.planted_connectors, report.connector_precision),
    ):
        k = len(truth)
        shown = " ".join(f"[bold]{_short(p)}[/]" if p in truth else _short(p) for p in found[:k])
        people.add_row(kind, str(k), shown, f"{precision:.2f}")
    console.print(people)

    reasons = Counter(r["reason"] for r in report.removals)
    spam_caught = {r["person_id"] for r in report.removals if r["reason"] == "rule_violation"} & report.planted_spammers
    console.print(
        f"Lurkers flagged: {len(report.lurkers)} (planted {len(report.planted_lurkers)}, "
        f"{report.lurker_precision:.0%} of the flagged are planted lurkers, the others Zipf's long tail: "
        f"members who never said anything effective)\n"
        f"Removal recommendations: {len(report.removals)} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items())) or 'none'}); "
        f"spammers caught by 群规 strikes: {len(spam_caught)}/{len(report.planted_spammers)}"
    )

    # Short headers, a legend below: ten columns fit an 80-column terminal without truncating a header.
    groups = Table(title="Group health, last 7 simulated days", title_justify="left",
                   caption="act/d: daily active share · eff: effective share · msg7d: messages · KOL/act/r-1/quiet: "
                           "members by tier · dying: 僵尸群 risk (needs 37 days of history)", caption_justify="left")
    for column in HEALTH_COLUMNS:
        groups.add_column(column, justify="left" if column == "group" else "right", no_wrap=True,
                          min_width=len(column))
    for g in report.health:
        groups.add_row(g["group_id"].rsplit("-", 1)[-1], str(g["members"]), f"{g['daily_active_ratio_7d']:.1%}",
                       f"{g['effective_share_7d']:.1%}", str(g["messages_7d"]), str(g["kol"]), str(g["active"]),
                       str(g["reply_one"]), str(g["silent"]), "yes" if g["dead_group_risk"] else "no")
    console.print(groups)

    r = report.revenue
    match = "matches" if report.net_revenue_fen == report.expected_revenue_fen else "DOES NOT MATCH"
    console.print(
        f"Revenue: captured {_yuan(r.get('captured_fen'))} − refunded {_yuan(r.get('refunded_fen'))} = "
        f"[bold]{_yuan(r.get('net_fen'))}[/] (owner {_yuan(r.get('owner_fen'))}, platform fee "
        f"{_yuan(r.get('platform_fee_fen'))}; ledger reconciled: {r.get('reconciled')}) — {match} the "
        f"{_yuan(report.expected_revenue_fen)} driven"
    )
    d = report.driven
    actions = ", ".join(f"{k}: {v}" for k, v in sorted(report.bot_actions.items())) or "none"
    console.print(
        f"Driven: {d.payments_accepted} payments, {d.refunds_accepted} refunds, {d.events_accepted} chat events in "
        f"{d.deliveries} signed deliveries, {d.grades} homework grades, {d.scholarships} scholarships; "
        f"bot actions received by the bridge: {actions}"
    )
    if planted - set(report.leaders_found) - set(report.connectors_found):
        console.print("[dim]Planted people not in the top K were outranked by busier members.[/]")
