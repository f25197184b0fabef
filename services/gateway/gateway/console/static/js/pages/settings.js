// Settings that exist in the API: plans, join policy, reading limit, scoring rules (versions and the diff
// of the last change), connectors (secrets are write-only: their names are shown, never their values).
import { api, get } from "../api.js";
import { card, h, mount, table } from "../dom.js";
import { dateTime, t, word, yuan } from "../i18n.js";
import { problem, route } from "../main.js";

const enc = encodeURIComponent;

// {a: {b: 1}} → {"a.b": 1}; arrays compared as JSON.
export function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = JSON.stringify(value);
  return out;
}

export function diff(before, after) {
  const a = flatten(before || {});
  const b = flatten(after || {});
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    .filter((k) => a[k] !== b[k]).map((k) => ({ key: k, before: a[k] ?? "—", after: b[k] ?? "—" }));
}

// Plans, each offered or withdrawn with one click (`community.billing`: the owner; the API says no to others).
function plansCard(c, plans) {
  return card(t("settings.plans", { n: plans.length }), table(
    [t("settings.plan"), t("settings.price"), t("settings.renewal"), t("settings.term"), t("settings.refund_window"),
     t("settings.trial"), t("settings.active")],
    plans.map((p) => {
      const out = h("span", { class: "form-note" });
      const toggle = h("button", { type: "button", class: "secondary", "data-plan": p.id },
        p.active ? t("settings.withdraw") : t("settings.offer"));
      toggle.addEventListener("click", async () => {
        try {
          Object.assign(p, await api("PATCH", `/api/v1/membership/communities/${enc(c.id)}/plans/${enc(p.id)}`,
                                     { body: { active: !p.active } }));
          toggle.textContent = p.active ? t("settings.withdraw") : t("settings.offer");
          mount(out, p.active ? t("settings.offered") : t("settings.withdrawn"));
        } catch (err) {
          mount(out, problem(err));
        }
      });
      return [p.name, yuan(p.price_fen), p.renewal_price_fen === null ? "—" : yuan(p.renewal_price_fen),
        p.duration_days ? t("settings.days", { n: p.duration_days }) : word("term", p.term_type),
        t("settings.hours", { n: p.refund_window_hours }), t("settings.days", { n: p.trial_days }),
        h("span", { class: "actions" }, toggle, out)];
    }), { empty: t("settings.no_plans"), cls: "plans" }));
}

const CHOICES = {
  chat_join_policy: ["admit", "flag", "ignore"], unpaid_join_policy: ["flag", "remove"],
  chat_leave_policy: ["keep", "pause", "end"], removal_policy: ["review", "auto"],
};

// Join, leave, removal and reading policies, changed with one PATCH of the fields that changed.
function policyCard(c, settings) {
  const out = h("span", { class: "form-note" });
  const selects = Object.fromEntries(Object.entries(CHOICES).map(([name, values]) => {
    const select = h("select", { name }, settings[name] ? null : h("option", { value: "" }, "—"),
      values.map((v) => h("option", { value: v }, word("policy", v))));
    select.value = settings[name] || "";
    return [name, select];
  }));
  const days = h("input", { type: "number", min: 1, max: 3650, name: "reading_limit_days",
                            value: settings.reading_limit_days ?? "", placeholder: t("settings.no_limit") });
  const rows = [
    [t("settings.entry_policies"), (c.entry_policies || []).map((p) => word("policy", p)).join(" · ") || "—"],
    [t("settings.chat_join_policy"), selects.chat_join_policy],
    [t("settings.unpaid_join_policy"), selects.unpaid_join_policy],
    [t("settings.chat_leave_policy"), selects.chat_leave_policy],
    [t("settings.removal_policy"), selects.removal_policy],
    [t("settings.reading_limit"), days],
    [t("settings.grace"), t("settings.days", { n: settings.grace_period_days })],
    [t("settings.guests"), `${settings.guest_count} / ${settings.guest_limit}`],
    [t("settings.commission"), `${(settings.referral_commission_bps / 100).toFixed(2)}%`],
  ];
  const form = h("form", { id: "policy-form" }, table([t("settings.setting"), t("settings.value")], rows, { cls: "policy" }),
    h("p", {}, h("button", { type: "submit" }, t("settings.save")), " ", out));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const [name, select] of Object.entries(selects)) if (select.value && select.value !== settings[name]) body[name] = select.value;
    const limit = days.value ? Number(days.value) : null;
    if (limit !== (settings.reading_limit_days ?? null)) {
      if (limit === null) body.reading_limit_off = true;
      else body.reading_limit_days = limit;
    }
    if (!Object.keys(body).length) { mount(out, t("settings.no_change")); return; }
    try {
      Object.assign(settings, await api("PATCH", `/api/v1/membership/communities/${enc(c.id)}/settings`, { body }));
      mount(out, t("settings.saved"));
    } catch (err) {
      mount(out, problem(err));
    }
  });
  return card(t("settings.policy"), form);
}

function rulesCard(rules) {
  const versions = [...rules.versions].sort((a, b) => b.version - a.version);
  const current = rules.current;
  // The last change: the newest version against the one before it (the newest may take effect later).
  const [latest, previous] = versions;
  const changes = previous ? diff(previous.rules, latest.rules) : [];
  const points = Object.entries(current.rules.points || {}).filter(([, n]) => n);
  return card(t("settings.rules", { v: current.version }),
    h("p", { class: "muted" }, t("settings.rules_note", { note: current.note || "—", from: dateTime(current.effective_from) })),
    h("h3", {}, previous ? t("settings.diff", { a: previous.version, b: latest.version, from: dateTime(latest.effective_from) })
      : t("settings.first_version")),
    previous ? table([t("settings.key"), t("settings.before"), t("settings.after")],
      changes.map((d) => [h("code", {}, d.key), h("del", {}, d.before), h("ins", {}, d.after)]),
      { empty: t("settings.no_change"), cls: "diff" }) : null,
    h("h3", {}, t("settings.points_per_rule")),
    table([t("member.rule"), t("member.points"), t("settings.daily_cap")], points.map(([rule, n]) => [
      word("rule", rule), String(n), String((current.rules.daily_caps || {})[rule] ?? "—")]), { cls: "points" }),
    h("h3", {}, t("settings.versions")),
    table([t("settings.version"), t("settings.effective"), t("settings.note")],
      versions.map((v) => [`v${v.version}`, dateTime(v.effective_from), v.note || ""]), { cls: "versions" }));
}

function connectorsCard(c, connectors) {
  return card(t("settings.connectors", { n: connectors.length }), connectors.length ? connectors.map((x) => {
    const out = h("span", { class: "form-note" });
    const secrets = h("textarea", { rows: 2, name: "secrets", autocomplete: "off", spellcheck: "false",
                                    placeholder: '{"signing_secrets": ["whsec_…"]}' });
    const form = h("form", { class: "stack secret-form" }, h("label", { class: "field" },
      h("span", {}, t("settings.rotate")), secrets), h("button", { type: "submit" }, t("settings.replace_secrets")), out);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let body;
      try { body = { secrets: JSON.parse(secrets.value) }; } catch { mount(out, t("settings.bad_json")); return; }
      try {
        await api("PATCH", `/api/v1/communities/${enc(c.id)}/connectors/${enc(x.id)}`, { body });
        secrets.value = ""; // written, never shown again
        mount(out, t("settings.saved"));
      } catch (err) {
        mount(out, problem(err));
      }
    });
    return h("div", { class: "connector" },
      h("h3", {}, `${x.name} · ${x.platform}`),
      table([t("settings.setting"), t("settings.value")], [
        [t("settings.identity"), x.identity_platform], [t("settings.groups"), x.groups.join(", ") || "—"],
        [t("settings.webhook"), h("code", {}, x.webhook_path)],
        [t("settings.secrets_set"), h("span", {}, x.secrets_set.map((n) => h("span", { class: "badge ok" }, `${n} ✓`)))],
        [t("settings.updated"), dateTime(x.updated_at)]]),
      h("p", { class: "muted" }, t("settings.write_only")), form);
  }) : h("p", { class: "muted empty" }, t("settings.no_connectors")));
}

export async function renderSettings(app, c) {
  const cid = enc(c.id);
  const [plans, settings, rules, connectors] = await Promise.all([
    get(`/api/v1/membership/communities/${cid}/plans`, { include_inactive: true }),
    get(`/api/v1/membership/communities/${cid}/settings`),
    get(`/api/v1/engagement/communities/${cid}/rules`),
    get(`/api/v1/communities/${cid}/connectors`),
  ]);
  mount(app, h("h1", {}, c.name, h("small", { class: "muted" }, ` · ${t("nav.settings")}`)),
    h("div", { class: "grid wide" }, plansCard(c, plans), policyCard(c, settings)), rulesCard(rules),
    connectorsCard(c, connectors.data));
}

export { route };
