// Sign in (Telegram Login Widget, one-time code, a development token) and choose a community.
import { api, ApiError, get, getAll, session } from "../api.js";
import { card, h, mount, table } from "../dom.js";
import { dateOnly, t, word } from "../i18n.js";
import { go, problem } from "../main.js";

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

async function accept(token) {
  session.token = token;
  try {
    await get("/api/v1/communities", { limit: 1 }); // a wrong or expired token is a 401 here
  } catch (err) {
    session.token = "";
    throw err;
  }
  go("#/communities");
}

// Telegram's widget redirects back to /console/?id=…&auth_date=…&hash=… (its data-auth-url mode: no
// callback to evaluate, so the CSP needs no 'unsafe-eval').
export async function completeTelegramLogin() {
  const params = new URLSearchParams(location.search);
  if (!params.has("hash") || !params.has("id")) return false;
  const data = Object.fromEntries(params.entries());
  history.replaceState(null, "", "/console/#/signin");
  try {
    const answer = await api("POST", "/api/v1/auth/telegram", { body: data, auth: false });
    await accept(answer.access_token);
  } catch (err) {
    go("#/signin");
  }
  return true;
}

function telegramWidget(bot) {
  const holder = h("div", { class: "telegram" });
  const script = document.createElement("script");
  script.async = true;
  script.src = "https://telegram.org/js/telegram-widget.js?22";
  script.dataset.telegramLogin = bot;
  script.dataset.size = "large";
  script.dataset.authUrl = `${location.origin}/console/`;
  script.dataset.requestAccess = "write";
  holder.append(script);
  return card(t("signin.telegram"), h("p", { class: "muted" }, t("signin.telegram_help")), holder);
}

function codeForm() {
  const out = h("div", { class: "form-note" });
  const communityId = h("input", { name: "community_id", required: true, autocomplete: "off" });
  const memberId = h("input", { name: "member_id", required: true, placeholder: "telegram:42", autocomplete: "username" });
  const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", placeholder: "123456" });
  const askButton = h("button", { type: "submit" }, t("signin.send_code"));
  const loginButton = h("button", { type: "button", class: "secondary" }, t("signin.use_code"));
  const form = h("form", { class: "stack", id: "code-form" },
    field(t("signin.community_id"), communityId), field(t("signin.member_id"), memberId), askButton,
    field(t("signin.code"), code), loginButton, out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/v1/auth/codes", { body: { community_id: communityId.value.trim(),
                                                          member_id: memberId.value.trim() }, auth: false });
      mount(out, t("signin.code_sent"));
    } catch (err) {
      mount(out, problem(err));
    }
  });
  loginButton.addEventListener("click", async () => {
    try {
      const answer = await api("POST", "/api/v1/auth/token", { body: { member_id: memberId.value.trim(),
                                                                        code: code.value.trim() }, auth: false });
      await accept(answer.access_token);
    } catch (err) {
      mount(out, problem(err));
    }
  });
  return card(t("signin.code_title"), h("p", { class: "muted" }, t("signin.code_help")), form);
}

function tokenForm() {
  const out = h("div", { class: "form-note" });
  const box = h("textarea", { id: "dev-token", name: "token", rows: 3, spellcheck: "false", autocomplete: "off",
                              placeholder: "eyJhbGciOi…" });
  const form = h("form", { class: "stack", id: "token-form" }, field(t("signin.token"), box),
    h("button", { type: "submit" }, t("signin.use_token")), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await accept(box.value.trim());
    } catch (err) {
      mount(out, problem(err));
    }
  });
  return card(t("signin.token_title"), h("p", { class: "muted" }, t("signin.token_help")),
    h("pre", { class: "cmd" }, "python -m qunzhu token --person telegram:42"), form);
}

export async function renderSignIn(app, config) {
  mount(app, h("div", { class: "signin" },
    h("h1", {}, t("signin.title")), h("p", { class: "lead" }, t("signin.lead")),
    h("div", { class: "grid" }, config.telegram_bot ? telegramWidget(config.telegram_bot) : null, codeForm(),
      tokenForm())));
}

// The communities this person can act in: a community-scoped token acts in its one community; a
// person-wide one in those the person owns (membership's list filtered by owner) and any other opened by id
// (an admin's): the pages then show what the API lets this person see.
export async function renderCommunities(app) {
  const claims = session.claims || {};
  let rows;
  if (claims.qz_community) rows = [await get(`/api/v1/communities/${encodeURIComponent(claims.qz_community)}`)];
  else rows = await getAll("/api/v1/communities", { owner_id: claims.sub }, { limit: 100, max: 1000 });
  const open = h("input", { name: "community_id", placeholder: t("communities.by_id"), autocomplete: "off" });
  const form = h("form", { class: "inline" }, open, h("button", { type: "submit" }, t("communities.open")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (open.value.trim()) go(`#/c/${encodeURIComponent(open.value.trim())}/overview`);
  });
  mount(app, h("h1", {}, t("communities.title")),
    card(t("communities.yours", { n: rows.length }),
      table([t("communities.name"), t("communities.positioning"), t("communities.status"), t("communities.created")],
        rows.map((c) => [h("a", { href: `#/c/${encodeURIComponent(c.id)}/overview`, class: "community-link" }, c.name),
                         c.positioning, word("status", c.status), dateOnly(c.created_at)]),
        { empty: t("communities.none") })),
    claims.qz_community ? null : card(t("communities.other"), form));
}

export { ApiError };
