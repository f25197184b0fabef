// People: the leaderboard, a member's page, lurkers and removals (approve/dismiss), AB-group candidates.
import { api, get, getAll } from "../api.js";
import { card, h, mount, stat, table } from "../dom.js";
import { dateOnly, dateTime, num, t, word } from "../i18n.js";
import { problem } from "../main.js";
import { reason } from "../reasons.js";

const enc = encodeURIComponent;

function personLink(cid, personId, name) {
  return h("a", { href: `#/c/${enc(cid)}/people/${enc(personId)}`, class: "person" }, name || personId);
}

async function leaderboard(cid, windowName, holder) {
  const board = await get(`/api/v1/engagement/communities/${enc(cid)}/leaderboard`, { window: windowName, limit: 20 });
  const tabs = h("div", { class: "tabs", role: "tablist" }, ["7d", "30d", "all"].map((w) => {
    const button = h("button", { type: "button", role: "tab", class: w === windowName ? "active" : "",
                                 "aria-selected": String(w === windowName), "data-window": w }, t(`window.${w}`));
    button.addEventListener("click", () => leaderboard(cid, w, holder).catch((err) => mount(holder, problem(err))));
    return button;
  }));
  mount(holder, tabs, table([t("people.rank"), t("people.person"), t("people.points")],
    board.data.map((r) => [num(r.rank), personLink(cid, r.person_id, r.display_name), num(r.points)]),
    { empty: t("people.no_points"), cls: "leaderboard" }));
  holder.dataset.window = windowName;
}

function decisionButtons(cid, review, onDone) {
  const out = h("span", { class: "form-note" });
  const decide = async (decision) => {
    try {
      await api("POST", `/api/v1/membership/communities/${enc(cid)}/removal-reviews/${enc(review.id)}/decision`,
                { body: { decision } });
      onDone();
    } catch (err) {
      mount(out, problem(err));
    }
  };
  return h("span", { class: "actions" },
    h("button", { type: "button", class: "danger", "data-action": "approve", "data-member": review.member_id,
                  onclick: () => decide("approve") }, t("removal.approve")),
    h("button", { type: "button", class: "secondary", "data-action": "dismiss", "data-member": review.member_id,
                  onclick: () => decide("dismiss") }, t("removal.dismiss")), out);
}

async function removals(cid, holder) {
  const [reviews, recommendations, lurkers] = await Promise.all([
    get(`/api/v1/membership/communities/${enc(cid)}/removal-reviews`, { state: "pending" }),
    get(`/api/v1/engagement/communities/${enc(cid)}/removal-recommendations`),
    get(`/api/v1/engagement/communities/${enc(cid)}/lurkers`),
  ]);
  // The engagement evidence behind a review: the newest recommendation of the same kind for the same person.
  const evidence = (review) => {
    const same = recommendations.filter((r) => r.person_id === review.member_id);
    return reason((same.find((r) => review.reason.includes(r.reason)) || same[0] || {}).detail || "—");
  };
  const refresh = () => removals(cid, holder).catch((err) => mount(holder, problem(err)));
  mount(holder,
    h("h3", {}, t("removal.pending", { n: reviews.length })),
    table([t("people.person"), t("removal.reason"), t("removal.evidence"), t("removal.since"), ""],
      reviews.map((r) => [personLink(cid, r.member_id), r.reason, evidence(r),
                          dateTime(r.created_at), decisionButtons(cid, r, refresh)]),
      { empty: t("removal.none"), cls: "reviews" }),
    h("h3", {}, t("removal.recommended", { n: recommendations.length })),
    table([t("people.person"), t("removal.reason"), t("removal.evidence"), t("removal.when")],
      recommendations.map((r) => [personLink(cid, r.person_id), word("reason", r.reason), reason(r.detail),
                                  dateTime(r.recommended_at)]), { empty: t("removal.none_recommended") }),
    h("h3", {}, t("lurkers.title", { n: lurkers.length })),
    table([t("people.person"), t("lurkers.silent_days"), t("lurkers.last"), t("lurkers.flagged")],
      lurkers.map((f) => [personLink(cid, f.person_id), num(f.silent_days), dateTime(f.last_effective_at),
                          dateTime(f.flagged_at)]), { empty: t("lurkers.none"), cls: "lurkers" }));
}

async function abCandidates(cid, groups, holder) {
  if (groups.length < 2) {
    mount(holder, h("p", { class: "muted" }, t("ab.need_two")));
    return;
  }
  const from = h("select", { name: "group_id" }, groups.map((g) => h("option", { value: g }, g)));
  const core = h("select", { name: "core_group_id" }, groups.map((g) => h("option", { value: g }, g)));
  core.value = groups[groups.length - 1];
  const out = h("div", { class: "ab-list" });
  const form = h("form", { class: "inline", id: "ab-form" }, h("label", {}, t("ab.from"), " ", from),
    h("label", {}, t("ab.core"), " ", core), h("button", { type: "submit" }, t("ab.find")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (from.value === core.value) { mount(out, h("p", { class: "muted" }, t("ab.same"))); return; }
    try {
      const rows = await get(`/api/v1/engagement/communities/${enc(cid)}/groups/${enc(from.value)}/ab-candidates`,
                             { core_group_id: core.value, limit: 10 });
      mount(out, table([t("people.person"), t("ab.score"), t("ab.reason"), ""], rows.map((r) => {
        const note = h("span", { class: "form-note" });
        const promote = h("button", { type: "button", "data-promote": r.person_id }, t("ab.promote"));
        promote.addEventListener("click", async () => {
          try {
            await api("PUT", `/api/v1/membership/communities/${enc(cid)}/members/${enc(r.person_id)}/groups`,
                      { body: { group_id: core.value } });
            mount(note, t("ab.promoted"));
            promote.disabled = true;
          } catch (err) {
            mount(note, problem(err));
          }
        });
        return [personLink(cid, r.person_id, r.display_name), num(r.score), reason(r.reason), h("span", {}, promote, note)];
      }), { empty: t("ab.none"), cls: "ab" }));
    } catch (err) {
      mount(out, problem(err));
    }
  });
  mount(holder, h("p", { class: "muted" }, t("ab.help")), form, out);
}

export async function renderPeople(app, c) {
  const board = h("div", { class: "board" });
  const removalHolder = h("div", { class: "removals" });
  const abHolder = h("div", { class: "ab-holder" });
  const health = await get(`/api/v1/engagement/communities/${enc(c.id)}/groups/health`);
  await Promise.all([leaderboard(c.id, "7d", board), removals(c.id, removalHolder),
                     abCandidates(c.id, health.map((g) => g.group_id), abHolder)]);
  mount(app, h("h1", {}, c.name, h("small", { class: "muted" }, ` · ${t("nav.people")}`)),
    h("div", { class: "grid wide" }, card(t("people.leaderboard"), board), card(t("people.ab"), abHolder)),
    card(t("people.removals"), removalHolder));
}

// Check-in streaks from the ledger's check-in days: the current run (up to the last check-in) and the longest.
export function streaks(days) {
  const sorted = [...new Set(days)].sort();
  let longest = 0;
  let run = 0;
  let previous = null;
  for (const day of sorted) {
    const d = Date.parse(`${day}T00:00:00Z`);
    run = previous !== null && d - previous === 86400000 ? run + 1 : 1;
    longest = Math.max(longest, run);
    previous = d;
  }
  return { current: run, longest, days: sorted.length, last: sorted[sorted.length - 1] || null };
}

export async function renderMember(app, c, personId) {
  const cid = enc(c.id);
  const pid = enc(personId);
  const [points, standing, member, assignments, challenges] = await Promise.all([
    get(`/api/v1/engagement/communities/${cid}/members/${pid}/points`, { limit: 200 }),
    get(`/api/v1/engagement/communities/${cid}/members/${pid}/standing`),
    get(`/api/v1/membership/communities/${cid}/members/${pid}`),
    get(`/api/v1/engagement/communities/${cid}/assignments`),
    get(`/api/v1/engagement/communities/${cid}/challenges`),
  ]);
  const submissions = (await Promise.all(assignments.map(async (a) => (await get(
    `/api/v1/engagement/communities/${cid}/assignments/${enc(a.id)}/submissions`)).filter((x) => x.person_id === personId)
    .map((x) => ({ ...x, assignment: a }))))).flat();
  const progress = await Promise.all(challenges.map((ch) => get(
    `/api/v1/engagement/communities/${cid}/challenges/${enc(ch.id)}/members/${pid}`).then((p) => ({ ch, p }))));
  const checkins = await getAll(`/api/v1/engagement/communities/${cid}/members/${pid}/points`, {},
                                { key: "entries", max: 5000 });
  const streak = streaks(checkins.filter((e) => e.rule_type === "checkin" && e.points > 0).map((e) => e.day));
  mount(app,
    h("h1", {}, member.display_name || personId, h("small", { class: "muted" }, ` · ${personId}`)),
    h("p", {}, h("a", { href: `#/c/${cid}/people` }, `← ${t("nav.people")}`)),
    card(t("member.summary"), h("div", { class: "stats" },
      stat(t("member.level"), t("people.level_n", { n: standing.level }),
           standing.points_to_next_level ? t("member.to_next", { n: num(standing.points_to_next_level) }) : null),
      stat(t("member.points"), num(points.total_points)),
      stat(t("member.rank"), `#${num(standing.rank)}`, t("member.of", { n: num(standing.members_ranked) })),
      stat(t("member.streak"), t("member.days", { n: streak.current }), t("member.longest", { n: streak.longest })),
      stat(t("member.status"), word("status", member.status), member.expires_at ? t("member.until", { d: dateOnly(member.expires_at) }) : null),
      stat(t("member.role"), word("role", member.role)))),
    card(t("member.by_rule"), table([t("member.rule"), t("member.points")],
      Object.entries(points.by_rule_type).sort((a, b) => b[1] - a[1]).map(([rule, n]) => [word("rule", rule), num(n)]))),
    card(t("member.homework"), table([t("member.assignment"), t("member.submitted"), t("member.grade"), t("member.feedback")],
      submissions.map((x) => [x.assignment.title, dateTime(x.submitted_at), x.grade === null ? "—" : `${x.grade}/5`,
                              x.feedback || ""]), { empty: t("member.no_homework"), cls: "homework" })),
    progress.length ? card(t("member.challenges"), table([t("member.challenge"), t("member.days_done"), t("member.streak_now")],
      progress.map(({ ch, p }) => [ch.title || ch.id, num(p.days_checked_in), `${num(p.current_streak)} / ${num(p.longest_streak)}`]))) : null,
    card(t("member.ledger", { n: num(points.count) }), table(
      [t("member.when"), t("member.rule"), t("member.version"), t("member.points"), t("member.reason"), t("member.group")],
      points.entries.map((e) => [dateTime(e.occurred_at), h("span", {}, word("rule", e.rule_type), " ", h("code", {}, e.rule)),
                                 `v${e.rule_set_version}`,
                                 e.points > 0 ? `+${e.points}` : String(e.points), e.reason, e.group_id || "—"]),
      { empty: t("member.no_points"), cls: "ledger" })));
}
