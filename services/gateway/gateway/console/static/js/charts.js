// Inline SVG charts drawn by hand: a line chart with axes and a legend, and sparklines.
import { h, s } from "./dom.js";

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

// series: [{name, cls, values: [number]}] over the same `labels`; yFormat formats the axis and tooltips.
export function lineChart({ labels, series, yFormat = String, width = 640, height = 220, title = "", minTop = 1 }) {
  const pad = { l: 72, r: 12, t: 12, b: 28 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const all = series.flatMap((x) => x.values);
  const top = niceMax(Math.max(minTop, ...all));
  const bottom = Math.min(0, ...all);
  const span = top - bottom || 1;
  const x = (i) => pad.l + (labels.length <= 1 ? w / 2 : (i * w) / (labels.length - 1));
  const y = (v) => pad.t + hgt - ((v - bottom) / span) * hgt;
  const grid = [];
  for (let k = 0; k <= 4; k += 1) {
    const v = bottom + (span * k) / 4;
    grid.push(s("line", { x1: pad.l, x2: pad.l + w, y1: y(v), y2: y(v), class: "grid" }));
    grid.push(s("text", { x: pad.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, yFormat(Math.round(v))));
  }
  const every = Math.max(1, Math.ceil(labels.length / 8));
  const last = labels.length - 1;
  const ticks = labels.map((label, i) => ((i % every === 0 && last - i >= every / 2) || i === last
    ? s("text", { x: x(i), y: height - 8, class: "axis", "text-anchor": i === last ? "end" : "middle" }, label) : null));
  const lines = series.map((one) => {
    const points = one.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    return s("g", { class: `series ${one.cls || ""}` },
      s("polyline", { points, fill: "none" }),
      one.values.map((v, i) => s("circle", { cx: x(i), cy: y(v), r: 2.5 },
        s("title", {}, `${one.name} ${labels[i]}: ${yFormat(v)}`))));
  });
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title },
    s("title", {}, title), grid, ticks, lines);
  const legend = h("div", { class: "legend" },
    series.map((one) => h("span", { class: `key ${one.cls || ""}` }, h("i", {}), one.name)));
  return h("figure", { class: "chart-wrap" }, svg, legend);
}

// A small trend line; the last point marked. Flat zero data draws a flat line.
export function sparkline(values, { width = 120, height = 28, cls = "", label = "" } = {}) {
  const max = Math.max(...values, 0) || 1;
  const min = Math.min(...values, 0);
  const span = max - min || 1;
  const x = (i) => (values.length <= 1 ? width / 2 : 2 + (i * (width - 4)) / (values.length - 1));
  const y = (v) => height - 3 - ((v - min) / span) * (height - 6);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const last = values.length - 1;
  return s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: `spark ${cls}`, role: "img",
                     "aria-label": label },
    s("title", {}, label),
    s("polyline", { points, fill: "none" }),
    last >= 0 ? s("circle", { cx: x(last), cy: y(values[last]), r: 2 }) : null);
}

// Horizontal bars for a small distribution (members by level…): [{label, value}].
export function bars(items, { format = String } = {}) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return h("div", { class: "bars" }, items.map((item) => h("div", { class: "bar-row" },
    h("span", { class: "bar-label" }, item.label),
    s("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "bar" },
      s("rect", { x: 0, y: 0, height: 10, width: Math.max(0.5, (100 * item.value) / max) })),
    h("span", { class: "bar-value" }, format(item.value)))));
}
