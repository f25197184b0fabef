// Key people as a picture: the interaction graph the engagement key-people job computed, laid out by a
// small force simulation — clusters coloured, opinion leaders sized by PageRank, connectors ringed.
import { api, ApiError, get } from "../api.js";
import { route } from "../main.js";
import { card, h, mount, s, table } from "../dom.js";
import { dateTime, num, pct, t } from "../i18n.js";
import { reason, reasonText } from "../reasons.js";

const W = 760;
const H = 520;
const PALETTE = 8; // .c0 … .c7 in app.css

// Deterministic: clusters start on a circle, people around their cluster's centre; then forces.
export function layout(nodes, edges, iterations = 300) {
  const clusters = [...new Set(nodes.map((n) => n.cluster))];
  const pos = new Map();
  nodes.forEach((n, i) => {
    const k = clusters.indexOf(n.cluster);
    const angle = (2 * Math.PI * k) / Math.max(1, clusters.length);
    const cx = W / 2 + (clusters.length > 1 ? 180 * Math.cos(angle) : 0);
    const cy = H / 2 + (clusters.length > 1 ? 150 * Math.sin(angle) : 0);
    const a = i * 2.399963; // golden angle: spread without randomness
    const r = 12 + 4 * Math.sqrt(i % 60);
    pos.set(n.id, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a), dx: 0, dy: 0 });
  });
  const k = Math.sqrt((W * H) / Math.max(1, nodes.length)) * 0.6;
  const list = [...pos.values()];
  for (let step = 0; step < iterations; step += 1) {
    const temperature = 40 * (1 - step / iterations) + 0.5;
    for (const p of list) { p.dx = 0; p.dy = 0; }
    for (let i = 0; i < list.length; i += 1) {
      for (let j = i + 1; j < list.length; j += 1) {
        const a = list[i];
        const b = list[j];
        let dx = a.x - b.x;
        let dy = a.y - b.y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = 0.1 * (i - j); dy = 0.1; d2 = dx * dx + dy * dy; }
        const force = (k * k) / d2;
        a.dx += dx * force; a.dy += dy * force; b.dx -= dx * force; b.dy -= dy * force;
      }
    }
    for (const e of edges) {
      const a = pos.get(e.source);
      const b = pos.get(e.target);
      if (!a || !b) continue;
      const dx = a.x - b.x;
      const dy = a.y - b.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 0.1;
      const force = (d / k) * Math.min(3, 1 + Math.log(e.weight)); // d²/k along the edge, heavier pulls more
      a.dx -= dx * force; a.dy -= dy * force;
      b.dx += dx * force; b.dy += dy * force;
    }
    for (const p of list) {
      p.dx += (W / 2 - p.x) * 0.02; p.dy += (H / 2 - p.y) * 0.02; // gravity: nothing drifts off
      const d = Math.sqrt(p.dx * p.dx + p.dy * p.dy) || 1;
      p.x = Math.min(W - 20, Math.max(20, p.x + (p.dx / d) * Math.min(d, temperature)));
      p.y = Math.min(H - 20, Math.max(20, p.y + (p.dy / d) * Math.min(d, temperature)));
    }
  }
  return pos;
}

function short(id) {
  return id.includes(":") ? id.split(":").slice(1).join(":") : id;
}

function picture(result) {
  const { nodes, edges } = result.graph;
  const leaders = new Map(result.opinion_leaders.map((p, i) => [p.person_id, { ...p, rank: i + 1 }]));
  const connectors = new Map(result.connectors.map((p, i) => [p.person_id, { ...p, rank: i + 1 }]));
  const pos = layout(nodes, edges);
  const maxRank = Math.max(...nodes.map((n) => n.pagerank), 1e-9);
  const maxWeight = Math.max(...edges.map((e) => e.weight), 1);
  const radius = (n) => 4 + 18 * Math.sqrt(n.pagerank / maxRank);
  const lines = edges.map((e) => {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    return s("line", { x1: a.x.toFixed(1), y1: a.y.toFixed(1), x2: b.x.toFixed(1), y2: b.y.toFixed(1),
                       class: `edge w${Math.min(4, Math.ceil((4 * e.weight) / maxWeight))}` });
  });
  const dots = [...nodes].sort((a, b) => a.pagerank - b.pagerank).map((n) => {
    const p = pos.get(n.id);
    const isLeader = leaders.has(n.id);
    const isConnector = connectors.has(n.id);
    const why = [isLeader ? reasonText(leaders.get(n.id).reason) : null,
                 isConnector ? reasonText(connectors.get(n.id).reason) : null]
      .filter(Boolean).join("; ");
    return s("g", { class: `node c${n.cluster % PALETTE}${isLeader ? " leader" : ""}${isConnector ? " connector" : ""}`,
                    "data-person": n.id },
      s("circle", { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: radius(n).toFixed(1) }),
      s("title", {}, `${n.id} · ${t("graph.cluster")} ${n.cluster + 1} · PageRank ${n.pagerank.toFixed(3)} · ` +
                     `${t("graph.betweenness")} ${pct(n.betweenness, 1)}${why ? `\n${why}` : ""}`),
      isLeader || isConnector ? s("text", { x: (p.x + radius(n) + 3).toFixed(1), y: (p.y + 4).toFixed(1) }, short(n.id)) : null);
  });
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "graph", role: "img", "aria-label": t("graph.title") },
    s("title", {}, t("graph.title")), s("g", { class: "edges" }, lines), s("g", { class: "nodes" }, dots));
}

export async function renderGraph(app, c) {
  const base = `/api/v1/engagement/communities/${encodeURIComponent(c.id)}`;
  let result;
  try {
    result = await get(`${base}/key-people`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    // Not computed yet (a new community): the job can be run now, as staff may through the API.
    const button = h("button", { type: "button", id: "compute-key-people" }, t("graph.compute"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      await api("POST", `${base}/jobs/key_people`);
      route();
    });
    mount(app, h("h1", {}, c.name, h("small", { class: "muted" }, ` · ${t("nav.graph")}`)),
      card(t("graph.title"), h("p", { class: "muted" }, t("graph.not_computed")), button));
    return;
  }
  const graph = result.graph || { nodes: [], edges: [] };
  const head = h("h1", {}, c.name, h("small", { class: "muted" }, ` · ${t("nav.graph")}`));
  const facts = h("p", { class: "muted" }, t("graph.facts", {
    nodes: num(result.nodes), edges: num(result.edges), clusters: num(result.clusters),
    from: dateTime(result.window_start), to: dateTime(result.window_end), at: dateTime(result.computed_at) }),
    graph.truncated ? ` ${t("graph.truncated", { n: num(graph.nodes.length) })}` : "");
  const legend = h("div", { class: "legend graph-legend" },
    h("span", { class: "key" }, s("svg", { viewBox: "0 0 20 20", width: 16, height: 16 }, s("circle", { cx: 10, cy: 10, r: 8, class: "legend-leader" })), t("graph.legend_size")),
    h("span", { class: "key" }, s("svg", { viewBox: "0 0 20 20", width: 16, height: 16 }, s("circle", { cx: 10, cy: 10, r: 7, class: "legend-connector" })), t("graph.legend_connector")),
    h("span", { class: "key" }, t("graph.legend_colour")));
  const people = (rows, kind) => table([t("graph.rank"), t("people.person"), t("graph.score"), t("graph.reason")],
    rows.map((p, i) => [num(i + 1), h("a", { href: `#/c/${encodeURIComponent(c.id)}/people/${encodeURIComponent(p.person_id)}` }, p.person_id),
                        kind === "leader" ? p.score.toFixed(3) : pct(p.score, 1), reason(p.reason)]),
    { empty: t("graph.none"), cls: kind === "leader" ? "leaders" : "connectors" });
  mount(app, head, facts,
    card(t("graph.title"), graph.nodes.length ? picture(result) : h("p", { class: "muted" }, t("graph.empty")), legend),
    h("div", { class: "grid wide" }, card(t("graph.leaders"), people(result.opinion_leaders, "leader")),
      card(t("graph.connectors"), people(result.connectors, "connector"))));
}
