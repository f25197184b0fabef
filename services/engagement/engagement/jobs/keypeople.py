"""Key people (关键人): the community's interaction graph over a window, analysed with networkx.

Edges point from the one who interacts to the one interacted with: a reply (to the replied-to sender),
an @mention, a reaction (to the author), an answer (to the asker). Opinion leaders are high in
PageRank (many, and well-followed, people turn to them); connectors are high in betweenness on the
undirected graph (they sit on the paths between clusters, the weak ties).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.models import Activity, CommunityCopy, KeyPeopleSnapshot
from engagement.scoring.recall import RECALLED
from engagement.scoring.rules import ScoringRules
from qunzhu_common.events.contracts.engagement import KeyPeopleUpdated, RankedPerson

if TYPE_CHECKING:
    import networkx as nx

# Exact betweenness costs one BFS per node (O(V·E)); past this budget of edge visits it is estimated
# from a sample of source nodes (networkx's k), enough to rank the few strong bridges first.
BETWEENNESS_BUDGET = 2_000_000
MIN_BETWEENNESS_SAMPLES = 32
# The picture of the graph the key-people answer carries (the console draws it): its most central people.
GRAPH_NODES, GRAPH_EDGES = 150, 600


def betweenness_samples(nodes: int, edges: int) -> int | None:
    """None for exact betweenness, else how many source nodes to sample."""
    if nodes * max(edges, 1) <= BETWEENNESS_BUDGET:
        return None
    return min(nodes, max(MIN_BETWEENNESS_SAMPLES, BETWEENNESS_BUDGET // max(edges, 1)))


def build_graph(edges: list[tuple[str, str, str]]) -> nx.DiGraph:
    """Weighted directed graph from (source, target, kind) edges; self-loops dropped."""
    import networkx as nx  # imported when used: only the key-people job needs it (and scipy)

    graph = nx.DiGraph()
    kinds: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for source, target, kind in edges:
        if source == target:
            continue
        kinds[(source, target)][kind] += 1
    for (source, target), counter in kinds.items():
        graph.add_edge(source, target, weight=sum(counter.values()), kinds=dict(counter))
    return graph


def analyse(graph: nx.DiGraph, *, top_k: int, seed: int = 7) -> dict[str, Any]:
    """Opinion leaders, connectors and clusters, each person with a score and the reason in words."""
    import networkx as nx

    if graph.number_of_nodes() == 0:
        return {"opinion_leaders": [], "connectors": [], "clusters": 0, "nodes": 0, "edges": 0,
                "graph": {"nodes": [], "edges": [], "truncated": False}}
    rank = nx.pagerank(graph, weight="weight")
    undirected = graph.to_undirected()
    k = betweenness_samples(undirected.number_of_nodes(), undirected.number_of_edges())
    between = nx.betweenness_centrality(undirected, k=k, seed=seed, normalized=True)
    clusters = nx.community.louvain_communities(undirected, weight="weight", seed=seed)
    cluster_of = {person: i for i, members in enumerate(clusters) for person in members}

    leaders = []
    for person, score in sorted(rank.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]:
        people_in = graph.in_degree(person)
        weight_in = graph.in_degree(person, weight="weight")
        leaders.append(RankedPerson(
            person_id=person, score=round(score, 6),
            reason=f"{weight_in} replies/mentions/reactions from {people_in} people (PageRank {score:.3f})",
        ))
    connectors = []
    for person, score in sorted(between.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]:
        if score <= 0:
            break
        reached = {cluster_of[other] for other in undirected.neighbors(person)} | {cluster_of[person]}
        connectors.append(RankedPerson(
            person_id=person, score=round(score, 6),
            reason=f"links {len(reached)} clusters; on {score:.1%} of shortest paths (betweenness)",
        ))
    return {
        "opinion_leaders": leaders, "connectors": connectors, "clusters": len(clusters),
        "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(),
        "cluster_sizes": sorted((len(c) for c in clusters), reverse=True)[:20],
        "graph": picture(graph, rank=rank, between=between, cluster_of=cluster_of,
                         keep={p.person_id for p in leaders + connectors}),
    }


def picture(graph: nx.DiGraph, *, rank: dict[str, float], between: dict[str, float], cluster_of: dict[str, int],
            keep: set[str], max_nodes: int = GRAPH_NODES, max_edges: int = GRAPH_EDGES) -> dict[str, Any]:
    """What a picture of the graph needs: the most central people (every leader and connector among them)
    with their cluster, PageRank and betweenness, and the heaviest interactions between them."""
    by_rank = sorted(rank, key=lambda p: (-rank[p], p))
    shown = list(dict.fromkeys([*sorted(keep), *by_rank]))[:max(max_nodes, len(keep))]
    inside = set(shown)
    edges = sorted(((s, t, d["weight"]) for s, t, d in graph.edges(data=True) if s in inside and t in inside),
                   key=lambda e: (-e[2], e[0], e[1]))[:max_edges]
    return {
        "nodes": [{"id": p, "cluster": cluster_of[p], "pagerank": round(rank[p], 6),
                   "betweenness": round(between.get(p, 0.0), 6)} for p in shown],
        "edges": [{"source": s, "target": t, "weight": w} for s, t, w in edges],
        "truncated": graph.number_of_nodes() > len(shown) or graph.number_of_edges() > len(edges),
    }


async def interaction_edges(
    session: AsyncSession, *, community_id: str, start: datetime, end: datetime
) -> list[tuple[str, str, str]]:
    rows = await session.execute(
        select(Activity.kind, Activity.person_id, Activity.other_id, Activity.mentions).where(
            Activity.community_id == community_id, Activity.occurred_at >= start, Activity.occurred_at < end,
            Activity.kind.in_(("message", "reaction", "answer", "comment")),
            Activity.status != RECALLED,  # a withdrawn message mentions and answers nobody any more
        )
    )
    edges: list[tuple[str, str, str]] = []
    for kind, person, other, mentions in rows:
        if kind == "reaction" and other:
            edges.append((other, person, "reaction"))  # the reactor turns to the author
        elif other:
            edges.append((person, other, "reply" if kind == "message" else kind))
        for mentioned in mentions or ():
            edges.append((person, mentioned, "mention"))
    return edges


async def compute_key_people(
    session: AsyncSession, ctx: EngagementContext, *, community: CommunityCopy, rules: ScoringRules, now: datetime
) -> KeyPeopleSnapshot:
    start = now - timedelta(days=rules.key_people_window_days)
    edges = await interaction_edges(session, community_id=community.id, start=start, end=now)
    result = analyse(build_graph(edges), top_k=rules.key_people_top_k)
    snapshot = KeyPeopleSnapshot(
        community_id=community.id, window_start=start, window_end=now, computed_at=now,
        result={
            **{k: v for k, v in result.items() if k not in ("opinion_leaders", "connectors")},
            "opinion_leaders": [p.model_dump() for p in result["opinion_leaders"]],
            "connectors": [p.model_dump() for p in result["connectors"]],
        },
    )
    session.add(snapshot)
    if ctx.metrics is not None:
        ctx.metrics.key_people_runs.inc()
    await ctx.emit(session, type="key_people.updated", community_id=community.id, data=KeyPeopleUpdated(
        community_id=community.id, window_start=start, window_end=now,
        opinion_leaders=result["opinion_leaders"], connectors=result["connectors"], clusters=result["clusters"],
        nodes=result["nodes"], edges=result["edges"], computed_at=now,
    ))
    return snapshot
