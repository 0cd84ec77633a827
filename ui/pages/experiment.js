// Experiment detail: header (status, progress, actions) and the tabs Charts (live over SSE), Logs, Config,
// Predictions, Chat and Export. Route: #/experiments/<id>/<tab>.
import { api, getToken, subscribe } from "../api.js";
import { LineChart } from "../chart.js";
import { ACTIVE, TERMINAL, action, clear, errorBox, fmtDate, fmtNum, h, notify, progressBar, statusBadge, table } from "../dom.js";
import { experimentActions } from "./experiments.js";
import { renderChat } from "./chat.js";

const TABS = [["charts", "Charts"], ["logs", "Logs"], ["config", "Config"], ["predictions", "Predictions"],
              ["chat", "Chat"], ["export", "Export"]];

// Metrics keyed by type and step, so a replay after an SSE reconnect does not draw points twice.
export class MetricStore {
  constructor() { this.byKey = new Map(); }
  add(m) {
    if (!m || typeof m !== "object") return false;
    const key = `${m.type}:${m.step}`;
    const had = this.byKey.has(key);
    this.byKey.set(key, m);
    return !had;
  }
  of(type) { return [...this.byKey.values()].filter((m) => m.type === type).sort((a, b) => a.step - b.step); }
  series(type, field) { return this.of(type).filter((m) => typeof m[field] === "number").map((m) => [m.step, m[field]]); }
}

export async function renderExperiment(page, { parts }) {
  const id = parts[1];
  const tab = TABS.some(([t]) => t === parts[2]) ? parts[2] : "charts";
  const base = `/api/experiments/${encodeURIComponent(id)}`;
  let exp = await api.get(base);
  const cleanups = [];

  const head = h("div.exp-head");
  const tabBody = h("div.tab-body", { "data-tab": tab });
  page.append(head,
    h("nav.tabs", { role: "tablist" }, TABS.map(([t, label]) =>
      h(`a${t === tab ? ".active" : ""}`, { href: `#/experiments/${encodeURIComponent(id)}/${t}`, role: "tab",
                                              "aria-selected": t === tab ? "true" : "false" }, label))),
    tabBody);

  // The header: redrawn whole when the status changes; otherwise only the numbers (so a button is never
  // replaced under the user's pointer by a progress update).
  let drawnStatus = null;
  function stats() {
    const p = exp.progress || {};
    return h("div.exp-stats",
      progressBar(p),
      h("span", "epoch ", h("b", fmtNum(p.epoch, 3))),
      h("span", "loss ", h("b", { "data-testid": "exp-loss" }, fmtNum(p.loss))),
      h("span", "tokens/s ", h("b", fmtNum(p.tokens_per_s, 3))));
  }
  async function drawHead() {
    const old = head.querySelector(".exp-stats");
    if (old && drawnStatus === exp.status) {
      old.replaceWith(stats());
      return;
    }
    drawnStatus = exp.status;
    clear(head,
      h("div.page-head",
        h("div", h("h1", exp.name, " ", statusBadge(exp.status)),
          h("div.muted.small", `${exp.id} · created ${fmtDate(exp.created_at)} · model `, h("code", exp.llm_backbone || "–"))),
        await experimentActions(exp, async (r) => {
          if (r && r.deleted) { location.hash = "#/experiments"; return; }
          if (r && r.id && r.id !== exp.id) { location.hash = `#/experiments/${encodeURIComponent(r.id)}`; return; }
          exp = await api.get(base);
          await drawHead();
          if (ACTIVE.has(exp.status)) startEvents();
        })),
      stats(),
      exp.status === "failed" && exp.message ? errorBox(exp.message, "The run failed") : null);
  }
  await drawHead();

  // Live updates: status for the header, metrics for the charts, for as long as the run is active.
  const listeners = { metric: [], status: [] };
  let closeEvents = null;
  function startEvents() {
    if (closeEvents) return;
    closeEvents = subscribe(`${base}/events`, {
      status: async (e) => {
        if (!e || !e.id) return;
        if (e.status === "deleted") {
          stopEvents();
          notify(`Experiment ${id} was deleted`);
          location.hash = "#/experiments";
          return;
        }
        exp = e;
        await drawHead();
        listeners.status.forEach((fn) => fn(e, "sse"));
        if (TERMINAL.has(e.status) || e.status === "created") stopEvents();
      },
      metric: (m) => listeners.metric.forEach((fn) => fn(m)),
      onerror: (ev, es) => {
        // The stream ends with the run; EventSource would reconnect forever, so stop once it is over.
        if (es.readyState === EventSource.CLOSED || TERMINAL.has(exp.status)) stopEvents();
      },
    });
  }
  function stopEvents() { if (closeEvents) { closeEvents(); closeEvents = null; } }
  cleanups.push(stopEvents);
  // A slow status poll as a safety net (a dropped stream, a run queued behind another).
  const poll = setInterval(async () => {
    if (!ACTIVE.has(exp.status) && closeEvents === null) return;
    try {
      const e = await api.get(base);
      if (e.status !== exp.status || JSON.stringify(e.progress) !== JSON.stringify(exp.progress)) {
        exp = e;
        await drawHead();
        listeners.status.forEach((fn) => fn(e, "poll"));
      }
      if (ACTIVE.has(e.status)) startEvents();
    } catch { /* shown by the next action */ }
  }, 5000);
  cleanups.push(() => clearInterval(poll));
  if (ACTIVE.has(exp.status)) startEvents();

  const ctx = { id, base, get exp() { return exp; }, listeners, cleanups };
  try {
    await ({ charts: chartsTab, logs: logsTab, config: configTab, predictions: predictionsTab, chat: renderChat,
             export: exportTab })[tab](tabBody, ctx);
  } catch (e) {
    tabBody.append(errorBox(e));
  }
  return () => cleanups.forEach((fn) => fn());
}

async function chartsTab(el, ctx) {
  const store = new MetricStore();
  const grid = h("div.chart-grid");
  el.append(grid);
  const loss = new LineChart(grid, { id: "loss", title: "Loss", xLabel: "step" });
  const lr = new LineChart(grid, { id: "lr", title: "Learning rate", xLabel: "step" });
  const tps = new LineChart(grid, { id: "tokens", title: "Tokens per second", xLabel: "step" });
  const ppl = new LineChart(grid, { id: "perplexity", title: "Validation perplexity", xLabel: "step" });
  ctx.cleanups.push(() => [loss, lr, tps, ppl].forEach((c) => c.destroy()));
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      loss.setSeries([{ name: "train", points: store.series("train", "loss") },
                      { name: "validation", points: store.series("validation", "loss"), dashed: true, markers: true }]);
      lr.setSeries([{ name: "learning rate", points: store.series("train", "lr") }]);
      tps.setSeries([{ name: "tokens/s", points: store.series("train", "tokens_per_s") }]);
      ppl.setSeries([{ name: "perplexity", points: store.series("validation", "perplexity"), markers: true }]);
    });
  };
  const { metrics = [] } = (await api.get(`${ctx.base}/metrics`)) || {};
  metrics.forEach((m) => store.add(m));
  redraw();
  ctx.listeners.metric.push((m) => { if (store.add(m)) redraw(); });
  // Refetch the metrics when the run ends (nothing missed at the stream's end) and whenever the slow status poll
  // sees progress (a dropped stream).
  ctx.listeners.status.push(async (e, source) => {
    if (source === "sse" && !TERMINAL.has(e.status)) return;
    try {
      const r = await api.get(`${ctx.base}/metrics`);
      let added = false;
      for (const m of r.metrics || []) added = store.add(m) || added;
      if (added) redraw();
    } catch { /* next time */ }
  });
  const summary = store.of("summary").pop();
  if (summary && summary.peak_device_memory_gib !== undefined) {
    el.append(h("p.muted.small", `peak device memory ${fmtNum(summary.peak_device_memory_gib, 3)} GiB`));
  }
}

async function logsTab(el, ctx) {
  const pre = h("pre.logs", { "data-testid": "logs" });
  const follow = h("input", { type: "checkbox", checked: true, id: "log-follow" });
  el.append(h("div.row", h("label", follow, " follow"), h("span.muted.small", "logs.txt of the run")), pre);
  let offset = 0, stopped = false, timer = null;
  async function more() {
    try {
      for (let i = 0; i < 20; i++) {  // large logs arrive in pieces
        const r = await api.get(`${ctx.base}/logs?offset=${offset}`);
        if (r.text) pre.append(r.text);
        const next = r.next_offset ?? offset + (r.text ? new TextEncoder().encode(r.text).length : 0);
        if (next === offset || !r.text) break;
        offset = next;
      }
      if (follow.checked) pre.scrollTop = pre.scrollHeight;
    } catch (e) {
      notify(e);
    }
    if (!stopped && ACTIVE.has(ctx.exp.status)) timer = setTimeout(more, 1500);
  }
  await more();
  if (!pre.textContent) pre.textContent = "";
  ctx.listeners.status.push((e) => { if (!stopped && ACTIVE.has(e.status) && !timer) more(); });
  ctx.cleanups.push(() => { stopped = true; clearTimeout(timer); });
}

async function configTab(el, ctx) {
  const r = await api.get(`${ctx.base}/config`);
  const rows = [];
  for (const [section, keys] of Object.entries(r.config || {})) {
    if (keys && typeof keys === "object" && !Array.isArray(keys)) {
      for (const [k, v] of Object.entries(keys)) rows.push([section ? `${section}.${k}` : k, v]);
    } else {
      rows.push([section, keys]);
    }
  }
  el.append(h("div.two-col",
    h("section.card", h("div.card-head", h("h2", "cfg.yaml"),
      h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(r.yaml || "").then(() => notify("Copied", "ok")) }, "Copy")),
      h("pre.code", { "data-testid": "config-yaml" }, r.yaml || "")),
    rows.length ? h("section.card", h("h2", "Resolved settings"), h("div.scroll", table(["key", "value"], rows))) : null));
}

async function predictionsTab(el, ctx) {
  const r = await api.get(`${ctx.base}/predictions`);
  if (!r.rows || !r.rows.length) {
    el.append(h("p.muted", ctx.exp.status === "finished"
      ? "This run wrote no validation predictions." : "Validation predictions appear here after the run's evaluation."));
    return;
  }
  el.append(h("p.muted.small", `${r.rows.length} validation rows`), h("div.scroll", table(r.columns || [], r.rows, { className: "predictions" })));
}

async function exportTab(el, ctx) {
  if (ctx.exp.status !== "finished") {
    el.append(h("p.muted", `Export becomes available when the run has finished (now: ${ctx.exp.status}).`));
    return;
  }
  const results = h("div.exports");
  const mode = (v, label, help) => h("label.radio", h("input", { type: "radio", name: "export-mode", value: v, checked: v === "merged" }),
                                     h("span", h("b", label), h("span.muted.small", ` — ${help}`)));
  const button = h("button.primary", { type: "submit", "data-testid": "export" }, "Export");
  el.append(h("form.card", { onsubmit: async (ev) => {
    ev.preventDefault();
    const m = el.querySelector("input[name=export-mode]:checked").value;
    const r = await action(button, () => api.post(`${ctx.base}/export`, { mode: m }));
    if (!r) return;
    notify(`Exported ${r.name}`, "ok");
    results.prepend(h("div.export-item",
      h("span", h("b", r.name), " ", h("span.muted.small", m)),
      h("code.small", r.path),
      downloadLink(r.download, `${r.name}.tar`)));
  } },
    h("h2", "Export the model"),
    mode("merged", "Merged model", "the LoRA weights folded into the base model: a standalone Hugging Face folder"),
    mode("adapter", "Adapter only", "the PEFT LoRA adapter (small); load it on top of the base model"),
    h("div.actions", button)), results);
}

// A download link; with an access token the file is fetched with the Authorization header and saved as a blob.
function downloadLink(href, filename) {
  return h("a.button", { href, download: filename, "data-testid": "download", onclick: async (ev) => {
    if (!getToken()) return;  // the browser downloads it directly
    ev.preventDefault();
    try {
      const res = await fetch(href, { headers: { Authorization: `Bearer ${getToken()}` } });
      if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: filename });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      notify(`download failed: ${e.message}`);
    }
  } }, "Download .tar");
}
