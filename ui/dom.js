// Small DOM helpers shared by the pages: an element builder, formatters, error/notice boxes.

// h("div.card#id", {onclick, class, ...attrs}, child, [children], "text") -> HTMLElement
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement((m && m[1]) || "div");
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === ".") el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = [el.className, v].filter(Boolean).join(" ");
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected") el[k] = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

export function fmtNum(x, digits = 4) {
  if (x === null || x === undefined || x === "" || isNaN(x)) return "–";
  const v = Number(x);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}

export function fmtDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

export function statusBadge(status) {
  return h(`span.badge.status-${status || "unknown"}`, status || "unknown");
}

export function progressBar(p) {
  const step = (p && p.step) || 0, total = (p && p.total_steps) || 0;
  const pct = total > 0 ? Math.min(100, (100 * step) / total) : 0;
  return h("div.progress", { title: `${step} / ${total || "?"} steps`, role: "progressbar",
                             "aria-valuenow": Math.round(pct), "aria-valuemin": 0, "aria-valuemax": 100 },
           h("div.progress-fill", { style: { width: `${pct}%` } }),
           h("span.progress-text", total ? `${step}/${total}` : "–"));
}

// A readable error box (the API's message); returns the element so callers can place it.
export function errorBox(err, prefix = "") {
  const msg = err && err.message ? err.message : String(err);
  return h("div.error", { role: "alert" }, prefix ? `${prefix}: ${msg}` : msg);
}

// A transient notice at the top of the page (errors from actions, "saved", ...).
export function notify(message, kind = "error") {
  const area = document.getElementById("notices");
  if (!area) return;
  const el = h(`div.notice.${kind}`, { role: kind === "error" ? "alert" : "status" },
               h("span", message && message.message ? message.message : String(message)),
               h("button.link", { type: "button", "aria-label": "dismiss", onclick: () => el.remove() }, "×"));
  area.append(el);
  if (kind !== "error") setTimeout(() => el.remove(), 4000);
}

// Runs an async action from a button: disables it meanwhile, shows failures as notices.
export async function action(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    notify(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function table(columns, rows, { className = "" } = {}) {
  return h(`table${className ? "." + className : ""}`,
           h("thead", h("tr", columns.map((c) => h("th", c)))),
           h("tbody", rows.map((r) => h("tr", r.map((v) => h("td", v instanceof Node ? v : cellText(v)))))));
}

export function cellText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export const TERMINAL = new Set(["finished", "failed", "stopped", "interrupted"]);
export const ACTIVE = new Set(["queued", "running"]);
