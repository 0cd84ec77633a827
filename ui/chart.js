// A small SVG line chart (no library): several series of [x, y] points, nice axis ticks, a legend, a hover
// read-out, and cheap updates (setSeries redraws). The chart element carries data-points = the number of
// points drawn, so tests can watch it grow.

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// Tick positions covering [lo, hi] with about `count` steps of 1, 2 or 5 x 10^k.
// integer: steps of at least 1 (an axis of step numbers). The result carries the step as .step.
export function niceTicks(lo, hi, count = 5, integer = false) {
  if (!isFinite(lo) || !isFinite(hi)) return [];
  if (hi === lo) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  ticks.step = step;
  return ticks;
}

// A tick label with as many decimals as the tick step needs (0.0029, 0.0030, ... not 0.003, 0.003).
export function fmtTick(v, step) {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e5 || (a < 1e-3 && !(step >= 1e-3))) {
    const digits = step ? Math.max(1, Math.min(6, Math.ceil(Math.log10(a / step)) + 1)) : 2;
    return v.toExponential(digits - 1);
  }
  const decimals = step ? Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9))) : 3;
  return v.toFixed(decimals);
}

function fmtValue(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

export class LineChart {
  // options: {title, xLabel, yLabel, height}
  constructor(container, options = {}) {
    this.options = { height: 240, ...options };
    this.series = [];
    this.root = document.createElement("figure");
    this.root.className = "chart";
    this.root.dataset.points = "0";
    if (options.id) this.root.dataset.chart = options.id;
    const cap = document.createElement("figcaption");
    const title = document.createElement("span");
    title.className = "chart-title";
    title.textContent = options.title || "";
    this.legend = document.createElement("span");
    this.legend.className = "chart-legend";
    cap.append(title, this.legend);
    this.svg = s("svg", { class: "chart-svg", role: "img", "aria-label": options.title || "chart" });
    this.readout = document.createElement("div");
    this.readout.className = "chart-readout";
    this.root.append(cap, this.svg, this.readout);
    container.append(this.root);
    this.width = 0;
    if (typeof ResizeObserver !== "undefined") {
      this.observer = new ResizeObserver(() => {
        const w = Math.round(this.svg.getBoundingClientRect().width);
        if (w > 0 && w !== this.width) this.draw();
      });
      this.observer.observe(this.svg);
    }
    this.svg.addEventListener("mousemove", (ev) => this.hover(ev));
    this.svg.addEventListener("mouseleave", () => this.hover(null));
    this.draw();
  }

  // series: [{name, points: [[x, y], ...], color?, dashed?}]
  setSeries(series) {
    this.series = series.map((sr, i) => ({ color: PALETTE[i % PALETTE.length], ...sr,
                                           points: sr.points.filter((p) => isFinite(p[0]) && isFinite(p[1])) }));
    this.draw();
  }

  destroy() {
    if (this.observer) this.observer.disconnect();
    this.root.remove();
  }

  draw() {
    const W = Math.max(280, Math.round(this.svg.getBoundingClientRect().width) || 600);
    const H = this.options.height;
    this.width = W;
    const m = { l: 56, r: 14, t: 10, b: 34 };
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.svg.setAttribute("height", H);
    this.svg.replaceChildren();
    const all = this.series.flatMap((sr) => sr.points);
    this.root.dataset.points = String(all.length);
    this.legend.replaceChildren(...this.series.map((sr) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      const sw = document.createElement("i");
      sw.style.background = sr.color;
      if (sr.dashed) sw.className = "dashed";
      item.append(sw, sr.name);
      return item;
    }));
    if (all.length === 0) {
      this.svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, "no data yet"));
      this.scale = null;
      return;
    }
    let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
    let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const yt = niceTicks(y0, y1, Math.max(3, Math.floor(ph / 45)));
    const xInt = all.every((p) => Number.isInteger(p[0]));
    const xt = niceTicks(x0, x1, Math.max(3, Math.floor(pw / 80)), xInt);
    const X = (x) => m.l + ((x - x0) / (x1 - x0)) * pw;
    const Y = (y) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
    this.scale = { X, Y, x0, x1, m, pw, ph, H };
    const grid = s("g", { class: "chart-grid" });
    for (const v of yt) {
      if (v < y0 || v > y1) continue;
      grid.append(s("line", { x1: m.l, x2: m.l + pw, y1: Y(v), y2: Y(v) }));
      grid.append(s("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, fmtTick(v, yt.step)));
    }
    for (const v of xt) {
      if (v < x0 || v > x1) continue;
      grid.append(s("line", { x1: X(v), x2: X(v), y1: m.t + ph, y2: m.t + ph + 4 }));
      grid.append(s("text", { x: X(v), y: m.t + ph + 17, "text-anchor": "middle" }, fmtTick(v, xt.step)));
    }
    grid.append(s("rect", { x: m.l, y: m.t, width: pw, height: ph, class: "chart-frame" }));
    if (this.options.xLabel) {
      grid.append(s("text", { x: m.l + pw, y: H - 3, "text-anchor": "end", class: "chart-axis-label" }, this.options.xLabel));
    }
    this.svg.append(grid);
    for (const sr of this.series) {
      if (!sr.points.length) continue;
      const pts = [...sr.points].sort((a, b) => a[0] - b[0]);
      const d = pts.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
      const g = s("g", { class: "series", "data-name": sr.name, "data-points": pts.length });
      g.append(s("path", { d, fill: "none", stroke: sr.color, "stroke-width": 2,
                           "stroke-dasharray": sr.dashed ? "6 4" : "none", "stroke-linejoin": "round" }));
      if (pts.length <= 40 || sr.markers) {
        for (const p of pts) g.append(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: sr.color }));
      }
      this.svg.append(g);
    }
    this.cursor = s("line", { class: "chart-cursor", y1: m.t, y2: m.t + ph, x1: -10, x2: -10 });
    this.svg.append(this.cursor);
  }

  hover(ev) {
    if (!ev || !this.scale) {
      this.readout.textContent = "";
      if (this.cursor) this.cursor.setAttribute("x1", -10), this.cursor.setAttribute("x2", -10);
      return;
    }
    const { X, x0, x1, m, pw } = this.scale;
    const rect = this.svg.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * this.width;
    const x = x0 + ((px - m.l) / pw) * (x1 - x0);
    const parts = [];
    let cx = null;
    for (const sr of this.series) {
      let best = null;
      for (const p of sr.points) if (!best || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
      if (best) {
        parts.push(`${sr.name}: ${fmtValue(best[1])} @ ${fmtValue(best[0])}`);
        if (cx === null) cx = X(best[0]);
      }
    }
    this.readout.textContent = parts.join("   ");
    if (cx !== null) this.cursor.setAttribute("x1", cx), this.cursor.setAttribute("x2", cx);
  }
}
