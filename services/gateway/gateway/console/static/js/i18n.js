// zh-CN first, English on request; money in yuan from integer fen; times in the community's time zone.
const LANG_KEY = "qunzhu.console.lang";
export const LANGS = ["zh-CN", "en"];
let strings = {};
let fallback = {};

export const i18n = {
  lang: LANGS.includes(localStorage.getItem(LANG_KEY)) ? localStorage.getItem(LANG_KEY) : "zh-CN",
  timeZone: "Asia/Shanghai",
};

async function load(lang) {
  const response = await fetch(`/console/i18n/${lang}.json`, { cache: "no-store" });
  return response.json();
}

export async function setLang(lang) {
  i18n.lang = LANGS.includes(lang) ? lang : "zh-CN";
  localStorage.setItem(LANG_KEY, i18n.lang);
  strings = await load(i18n.lang);
  if (!Object.keys(fallback).length) fallback = i18n.lang === "zh-CN" ? strings : await load("zh-CN");
  document.documentElement.lang = i18n.lang;
}

// t("overview.members", {n: 3}): the string for the key with {name} placeholders filled in.
export function t(key, vars = {}) {
  const text = strings[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

// A status, role, reason… from the API in the reader's language when there is a word for it.
export function word(group, value) {
  if (value === null || value === undefined || value === "") return "—";
  const key = `${group}.${value}`;
  return strings[key] ?? fallback[key] ?? String(value);
}

export function yuan(fen) {
  if (fen === null || fen === undefined) return "—";
  const n = Number(fen);
  const sign = n < 0 ? "-" : "";
  const abs = Math.abs(n);
  const whole = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}¥${whole}.${String(abs % 100).padStart(2, "0")}`;
}

export function num(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "—";
  return Number(n).toLocaleString(i18n.lang, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function pct(ratio, digits = 0) {
  if (ratio === null || ratio === undefined) return "—";
  return `${(Number(ratio) * 100).toFixed(digits)}%`;
}

function fmt(value, options) {
  if (!value) return "—";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(i18n.lang, { timeZone: i18n.timeZone, ...options }).format(date);
}

export const dateTime = (v) => fmt(v, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                                        minute: "2-digit", hourCycle: "h23" });
export const dateOnly = (v) => fmt(v, { year: "numeric", month: "2-digit", day: "2-digit" });
export const shortDay = (v) => fmt(v, { month: "numeric", day: "numeric" });

// The calendar day (YYYY-MM-DD) of an instant in the community's time zone.
export function dayKey(value) {
  const date = value instanceof Date ? value : new Date(value);
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: i18n.timeZone, year: "numeric", month: "2-digit",
                                                    day: "2-digit" }).format(date);
  return parts;
}
