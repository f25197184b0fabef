// Overview: members by status and level, this week's joins/renewals/expiries, revenue with a chart over
// time, group health with sparklines.
import { get, getAll } from "../api.js";
import { bars, lineChart, sparkline } from "../charts.js";
import { card, h, mount, stat, table } from "../dom.js";
import { dayKey, num, pct, shortDay, t, word, yuan } from "../i18n.js";

const DAY = 86400000;
const LEVEL_SAMPLE = 10000; // members read for the level distribution (the leaderboard, 200 a page)

export function levelOf(points, thresholds) {
  let level = 1;
  thresholds.forEach((min, i) => { if (points >= min) level = i + 1; });
  return level;
}

// In small batches: the gateway's per-client rate limit is for the whole console, not one page.
export async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(...await Promise.all(items.slice(i, i + size).map(fn)));
  return out;
}

function membersCard(stats, levels, sampled) {
  const statuses = Object.entries(stats.by_status).sort((a, b) => b[1] - a[1])
    .map(([status, n]) => ({ label: word("status", status), value: n }));
  return card(t("overview.members"),
    h("div", { class: "stats" },
      stat(t("overview.live"), num(stats.live), t("overview.of_all", { n: num(stats.members) })),
      stat(t("overview.joined"), num(stats.joined)), stat(t("overview.renewed"), num(stats.renewed)),
      stat(t("overview.expired"), num(stats.expired)), stat(t("overview.expiring_soon"), num(stats.expiring_soon))),
    h("div", { class: "two" },
      h("div", { class: "by-status" }, h("h3", {}, t("overview.by_status")), bars(statuses, { format: num })),
      h("div", { class: "by-level" }, h("h3", {}, t("overview.by_level")),
        bars(levels.map(([level, n]) => ({ label: t("people.level_n", { n: level }), value: n })), { format: num }),
        sampled ? h("p", { class: "muted" }, t("overview.levels_sampled", { n: num(LEVEL_SAMPLE) })) : null)));
}

function revenueCard(summary, entries) {
  const days = [];
  const today = Date.now();
  for (let k = 29; k >= 0; k -= 1) days.push(dayKey(new Date(today - k * DAY)));
  const index = new Map(days.map((d, i) => [d, i]));
  const captured = days.map(() => 0);
  const refunded = days.map(() => 0);
  const owner = days.map(() => 0);
  for (const e of entries) {
    const i = index.get(dayKey(e.occurred_at));
    if (i === undefined || e.currency !== "CNY") continue;
    if (e.kind === "payment") captured[i] += e.amount_fen;
    if (e.kind === "refund") refunded[i] -= e.amount_fen;
    if (e.account === "owner") owner[i] += e.amount_fen;
  }
  const s = summary || {};
  return card(t("overview.revenue"),
    h("div", { class: "stats money" },
      stat(t("money.captured"), yuan(s.captured_fen ?? 0)), stat(t("money.refunded"), yuan(s.refunded_fen ?? 0)),
      stat(t("money.fee"), yuan(s.platform_fee_fen ?? 0)), stat(t("money.owner"), yuan(s.owner_fen ?? 0)),
      stat(t("money.net"), yuan(s.net_fen ?? 0), s.reconciled === false ? t("money.unreconciled") : null)),
    lineChart({
      labels: days.map((d) => shortDay(`${d}T12:00:00Z`)), title: t("overview.revenue_chart"), yFormat: yuan,
      minTop: 10000, // ¥100: an empty month is a flat line at ¥0, not an axis in fen
      series: [{ name: t("money.captured"), cls: "s-captured", values: captured },
               { name: t("money.refunded"), cls: "s-refunded", values: refunded },
               { name: t("money.owner"), cls: "s-owner", values: owner }],
    }),
    h("p", { class: "muted" }, t("overview.revenue_note")));
}

async function healthCard(cid) {
  const now = Date.now();
  const points = [];
  for (let k = 13; k >= 0; k -= 1) points.push(new Date(now - k * DAY).toISOString());
  const series = await inBatches(points, 4, (asOf) => get(
    `/api/v1/engagement/communities/${encodeURIComponent(cid)}/groups/health`, { as_of: asOf }));
  const latest = series[series.length - 1] || [];
  const rows = latest.map((group) => {
    const history = series.map((day) => day.find((g) => g.group_id === group.group_id) || {});
    const messages = history.map((g) => g.messages_7d || 0);
    const active = history.map((g) => g.daily_active_ratio_7d || 0);
    return [
      h("span", { class: "group-id" }, group.group_id), num(group.members),
      h("span", {}, sparkline(messages, { label: t("health.messages_trend"), cls: "s-messages" }), " ", num(group.messages_7d)),
      h("span", {}, sparkline(active, { label: t("health.active_trend"), cls: "s-active" }), " ", pct(group.daily_active_ratio_7d)),
      pct(group.effective_share_7d), `${group.kol} / ${group.active} / ${group.reply_one} / ${group.silent}`,
      group.dead_group_risk ? h("span", { class: "badge danger" }, t("health.risk")) : h("span", { class: "badge ok" }, t("health.ok")),
      group.warning || "",
    ];
  });
  return card(t("overview.health"), table(
    [t("health.group"), t("health.members"), t("health.messages"), t("health.active"), t("health.effective"),
     t("health.pyramid"), t("health.dead_risk"), t("health.warning")], rows, { empty: t("health.none"), cls: "health" }));
}

// The ledger's last 30 days: it lists newest first, so paging stops at the first page wholly older than that.
async function recentLedger(cid) {
  const since = Date.now() - 31 * DAY;
  const entries = [];
  for (let offset = 0; ; offset += 200) {
    const page = await get(`/api/v1/membership/communities/${cid}/ledger`, { limit: 200, offset });
    entries.push(...page.entries);
    if (page.entries.length < 200 || page.entries.every((e) => Date.parse(e.occurred_at) < since)) return entries;
  }
}

export async function renderOverview(app, c) {
  const cid = encodeURIComponent(c.id);
  const [stats, ledger, rules, board, health] = await Promise.all([
    get(`/api/v1/membership/communities/${cid}/member-stats`),
    get(`/api/v1/membership/communities/${cid}/ledger`, { limit: 1 }),
    get(`/api/v1/engagement/communities/${cid}/rules`),
    getAll(`/api/v1/engagement/communities/${cid}/leaderboard`, { window: "all" }, { max: LEVEL_SAMPLE }),
    healthCard(c.id),
  ]);
  const entries = await recentLedger(cid);
  const thresholds = rules.current.rules.level_thresholds || [0];
  const counts = new Map();
  for (const row of board) counts.set(levelOf(row.points, thresholds), (counts.get(levelOf(row.points, thresholds)) || 0) + 1);
  // No points yet: level 1. A very large community is read up to the sample only, and the card says so.
  if (board.length < LEVEL_SAMPLE) counts.set(1, (counts.get(1) || 0) + Math.max(0, stats.live - board.length));
  const levels = [...counts.entries()].sort((a, b) => a[0] - b[0]);
  const summary = (ledger.summary || []).find((x) => x.currency === "CNY");
  mount(app, h("h1", {}, c.name, h("small", { class: "muted" }, ` · ${t("nav.overview")} · ${c.timezone}`)),
    h("div", { class: "grid wide" }, membersCard(stats, levels, board.length >= LEVEL_SAMPLE), revenueCard(summary, entries)),
    health);
}
