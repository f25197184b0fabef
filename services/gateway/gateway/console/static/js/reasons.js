// The engagement service explains itself in English sentences of a few fixed shapes; in Chinese they are
// rewritten from the same figures. A sentence of another shape is shown as it came.
import { h } from "./dom.js";
import { i18n, t } from "./i18n.js";

const SHAPES = [
  [/^(\d+) replies\/mentions\/reactions from (\d+) people \(PageRank ([\d.]+)\)$/, "reason.leader", ["n", "people", "rank"]],
  [/^links (\d+) clusters; on ([\d.]+%) of shortest paths \(betweenness\)$/, "reason.connector", ["clusters", "share"]],
  [/^(\d+) points in the last (\d+) days: #(\d+) from the bottom of (\d+)$/, "reason.bottom", ["points", "days", "rank", "of"]],
  [/^(\d+) points and (\d+) replies received in group in (\d+) days, homework average ([\d.]+)\/5$/, "reason.ab",
   ["points", "replies", "days", "grade"]],
  [/^(\d+) points and (\d+) replies received in group in (\d+) days$/, "reason.ab_no_homework", ["points", "replies", "days"]],
];

export function reasonText(text) {
  if (i18n.lang === "en" || !text) return text || "";
  for (const [pattern, key, names] of SHAPES) {
    const found = pattern.exec(text);
    if (found) return t(key, Object.fromEntries(names.map((name, i) => [name, found[i + 1]])));
  }
  return text;
}

// The reason in the reader's language; the service's own words stay in the tooltip.
export function reason(text) {
  return h("span", { class: "reason", title: text || "" }, reasonText(text));
}
