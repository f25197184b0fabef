// The console's shell: language, sign-in state, hash routes, the community being looked at.
import { ApiError, get, session } from "./api.js";
import { h, mount } from "./dom.js";
import { i18n, setLang, t } from "./i18n.js";
import { renderContent } from "./pages/content.js";
import { renderGraph } from "./pages/graph.js";
import { renderOverview } from "./pages/overview.js";
import { renderMember, renderPeople } from "./pages/people.js";
import { renderSettings } from "./pages/settings.js";
import { completeTelegramLogin, renderCommunities, renderSignIn } from "./pages/signin.js";

const app = document.getElementById("app");
const PAGES = [
  ["overview", "nav.overview"], ["people", "nav.people"], ["graph", "nav.graph"], ["content", "nav.content"],
  ["settings", "nav.settings"],
];
const communities = new Map(); // id → community (name, timezone…), as membership answered
let config = { telegram_bot: null };

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export async function community(id) {
  if (!communities.has(id)) communities.set(id, await get(`/api/v1/communities/${encodeURIComponent(id)}`));
  return communities.get(id);
}

function nav(cid, current) {
  const links = cid ? PAGES.map(([page, key]) => h("a", {
    href: `#/c/${encodeURIComponent(cid)}/${page}`, class: page === current ? "active" : "",
    "data-page": page }, t(key))) : [];
  if (cid) links.push(h("a", { href: "#/communities", class: "switch" }, t("nav.switch")));
  mount(document.getElementById("nav"), links);
  const claims = session.claims;
  document.getElementById("who").textContent = claims ? claims.sub : "";
  document.getElementById("signout").hidden = !session.token;
  document.getElementById("signout").textContent = t("nav.signout");
  document.getElementById("lang").textContent = i18n.lang === "zh-CN" ? "English" : "中文";
}

function problem(err) {
  if (err instanceof ApiError) {
    const title = err.status === 401 ? t("error.401") : err.status === 403 ? t("error.403") : t("error.other");
    return h("div", { class: "error", role: "alert" }, h("strong", {}, `${title} (HTTP ${err.status})`),
      h("p", {}, err.message));
  }
  return h("div", { class: "error", role: "alert" }, h("strong", {}, t("error.other")), h("p", {}, String(err)));
}

let routing = 0; // only the latest navigation may fill the page (an older one may finish later)

export async function route() {
  const seq = ++routing;
  delete app.dataset.ready;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const expired = session.claims && session.claims.exp && session.claims.exp * 1000 < Date.now();
  if (expired) session.token = "";
  if (!session.token && parts[0] !== "signin") {
    location.replace("#/signin");
    return;
  }
  const [first, cid, page = "overview", ...rest] = parts;
  nav(first === "c" ? cid : null, page);
  mount(app, h("p", { class: "muted loading" }, t("common.loading")));
  const view = h("div", { class: "view" }); // rendered aside, shown when complete
  try {
    if (first === "signin") await renderSignIn(view, config);
    else if (first === "c" && cid) {
      const c = await community(cid);
      i18n.timeZone = c.timezone || "Asia/Shanghai";
      document.title = `${c.name} · ${t(`nav.${page}`)} · 群主`;
      const render = { overview: renderOverview, people: rest.length ? renderMember : renderPeople,
                     graph: renderGraph, content: renderContent, settings: renderSettings }[page];
      if (!render) throw new Error(`no page ${page}`);
      await render(view, c, ...rest);
    } else await renderCommunities(view);
  } catch (err) {
    if (seq !== routing) return;
    if (err instanceof ApiError && err.status === 401) {
      session.token = "";
      location.replace("#/signin");
      return;
    }
    mount(view, problem(err));
  }
  if (seq !== routing) return;
  mount(app, view);
  app.dataset.ready = location.hash; // the browser test waits for this
}

export { problem };

async function start() {
  await setLang(i18n.lang);
  try {
    config = await (await fetch("/console/config.json", { cache: "no-store" })).json();
  } catch {
    config = { telegram_bot: null };
  }
  document.getElementById("lang").addEventListener("click", async () => {
    await setLang(i18n.lang === "zh-CN" ? "en" : "zh-CN");
    route();
  });
  document.getElementById("signout").addEventListener("click", () => {
    session.token = "";
    communities.clear();
    go("#/signin");
  });
  window.addEventListener("hashchange", route);
  if (await completeTelegramLogin()) return; // it routes on
  route();
}

start();
