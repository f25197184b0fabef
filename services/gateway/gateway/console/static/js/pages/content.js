// Content: schedules with their next occurrences, upcoming guest sessions with their preview times,
// broadcasts with their delivery status per group — every time in the community's time zone.
import { get } from "../api.js";
import { card, h, mount, table } from "../dom.js";
import { dateTime, num, t, word } from "../i18n.js";

const enc = encodeURIComponent;

function badge(status) {
  const cls = { delivered: "ok", confirmed: "ok", sent: "ok", active: "ok", completed: "ok", failed: "danger",
                gave_up: "danger", cancelled: "muted", paused: "warn", pending: "warn", scheduled: "warn" }[status] || "";
  return h("span", { class: `badge ${cls}` }, word("state", status));
}

function schedulesCard(schedules) {
  return card(t("content.schedules", { n: schedules.length }), table(
    [t("content.title"), t("content.kind"), t("content.rule"), t("content.status"), t("content.next")],
    schedules.map((sc) => [sc.title || (sc.payload && sc.payload.text) || sc.id, word("kind", sc.kind),
      sc.rrule ? h("code", {}, sc.rrule) : t("content.once"), badge(sc.status),
      h("ul", { class: "times" }, (sc.upcoming && sc.upcoming.length ? sc.upcoming : [sc.next_occurs_at]).filter(Boolean)
        .slice(0, 5).map((at) => h("li", {}, dateTime(typeof at === "string" ? at : at.occurs_at || at.at))))]),
    { empty: t("content.no_schedules"), cls: "schedules" }));
}

function sessionsCard(sessions) {
  return card(t("content.sessions", { n: sessions.length }), table(
    [t("content.topic"), t("content.guest"), t("content.starts"), t("content.status"), t("content.previews")],
    sessions.map((x) => [x.topic, x.guest_name || x.guest_id, dateTime(x.starts_at), badge(x.status),
      h("ul", { class: "times" }, (x.notices || []).map((n) => h("li", {}, `${word("notice", n.kind)} ${dateTime(n.due_at)} `,
        badge(n.status))))]),
    { empty: t("content.no_sessions"), cls: "sessions" }));
}

function broadcastsCard(broadcasts) {
  return card(t("content.broadcasts", { n: broadcasts.length }), broadcasts.length ? broadcasts.map((b) => h("details", {
    class: "broadcast", open: broadcasts.indexOf(b) < 3 },
    h("summary", {}, h("strong", {}, b.text.length > 60 ? `${b.text.slice(0, 60)}…` : b.text), " · ",
      dateTime(b.created_at), " · ", badge(b.status), " ",
      t("content.delivered_of", { d: num(b.delivered), n: num(b.groups_total), f: num(b.failed), p: num(b.pending) })),
    table([t("content.group"), t("content.status"), t("content.attempts"), t("content.sent"), t("content.error")],
      (b.deliveries || []).map((d) => [d.group_id, badge(d.status), num(d.attempts), dateTime(d.confirmed_at || d.sent_at),
                                       d.last_error || ""]), { cls: "deliveries" }))) : h("p", { class: "muted empty" }, t("content.no_broadcasts")));
}

export async function renderContent(app, c) {
  const cid = enc(c.id);
  const [schedules, sessions, list] = await Promise.all([
    get(`/api/v1/content/communities/${cid}/schedules`),
    get(`/api/v1/content/communities/${cid}/sessions`, { starts_from: new Date(Date.now() - 3 * 3600000).toISOString(),
                                                         order: "asc", limit: 50 }),
    get(`/api/v1/content/communities/${cid}/broadcasts`, { limit: 20 }),
  ]);
  const broadcasts = await Promise.all(list.data.slice(0, 10).map((b) => get(
    `/api/v1/content/communities/${cid}/broadcasts/${enc(b.id)}`)));
  mount(app, h("h1", {}, c.name, h("small", { class: "muted" }, ` · ${t("nav.content")} · ${c.timezone}`)),
    schedulesCard(schedules), sessionsCard(sessions.data), broadcastsCard(broadcasts));
}
