// Compare: pick experiments, overlay their train/validation loss curves and list the settings that differ
// (GET /api/compare?ids=a,b,c). Route: #/compare?ids=a,b.
import { api } from "../api.js";
import { LineChart, PALETTE } from "../chart.js";
import { cellText, errorBox, fmtNum, h, statusBadge, table } from "../dom.js";

export async function renderCompare(page, { params }) {
  const chosen = new Set((params.get("ids") || "").split(",").filter(Boolean));
  page.append(h("h1", "Compare experiments"));
  const { experiments = [] } = await api.get("/api/experiments");
  const picker = h("form.card.compare-picker", { onsubmit: (ev) => {
    ev.preventDefault();
    const ids = [...picker.querySelectorAll("input:checked")].map((c) => c.value);
    location.hash = `#/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
  } },
    h("h2", "Experiments"),
    experiments.length ? h("div.pick-list", experiments.map((e) => h("label.pick-item",
      h("input", { type: "checkbox", value: e.id, checked: chosen.has(e.id) }), " ", e.name, " ", statusBadge(e.status))))
      : h("p.muted", "No experiments yet."),
    h("div.actions", h("button.primary", { type: "submit" }, "Compare")));
  const out = h("div");
  page.append(picker, out);
  if (!chosen.size) return;

  let r;
  try {
    r = await api.get(`/api/compare?ids=${[...chosen].map(encodeURIComponent).join(",")}`);
  } catch (e) {
    out.append(errorBox(e, "Cannot compare"));
    return;
  }
  const exps = r.experiments || [];
  const name = Object.fromEntries(exps.map((e) => [e.id, e.name]));
  const grid = h("div.chart-grid");
  out.append(grid);
  const train = new LineChart(grid, { id: "compare-train", title: "Train loss", xLabel: "step" });
  const valid = new LineChart(grid, { id: "compare-validation", title: "Validation loss", xLabel: "step" });
  const pts = (ms, type) => (ms || []).filter((m) => m.type === type && typeof m.loss === "number").map((m) => [m.step, m.loss]);
  const ids = exps.map((e) => e.id);
  train.setSeries(ids.map((id, i) => ({ name: name[id] || id, color: PALETTE[i % PALETTE.length], points: pts(r.metrics?.[id], "train") })));
  valid.setSeries(ids.map((id, i) => ({ name: name[id] || id, color: PALETTE[i % PALETTE.length], markers: true,
                                       points: pts(r.metrics?.[id], "validation") })));

  const last = (id, type) => { const p = pts(r.metrics?.[id], type); return p.length ? p[p.length - 1][1] : null; };
  out.append(h("section.card", h("h2", "Results"), h("div.scroll", table(["experiment", "status", "steps", "last train loss", "last validation loss"],
    exps.map((e) => [h("a", { href: `#/experiments/${encodeURIComponent(e.id)}` }, e.name), statusBadge(e.status),
                     e.progress ? `${e.progress.step}/${e.progress.total_steps}` : "–", fmtNum(last(e.id, "train")), fmtNum(last(e.id, "validation"))])))));
  const diff = r.config_diff || [];
  const diffBox = h("section.card", h("h2", "Settings that differ"));
  if (!diff.length) diffBox.append(h("p.muted", ids.length > 1 ? "All settings are the same." : "Pick two or more experiments to see their differences."));
  else diffBox.append(h("div.scroll", table(["setting", ...ids.map((id) => name[id] || id)],
                                            diff.map((d) => [h("code", d.key), ...ids.map((id) => cellText(d.values?.[id]))]), { className: "diff" })));
  out.append(diffBox);
}
