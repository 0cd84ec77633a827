// Experiments: the list (status, progress, loss, tokens/s; start/stop/clone/delete; pick some to compare) and
// the create form, generated from GET /api/config/schema (H2O's sections, defaults, help) with dataset and
// model pickers from /api/datasets and /api/models.
import { api } from "../api.js";
import { ACTIVE, action, clear, errorBox, fmtDate, fmtNum, h, notify, progressBar, statusBadge } from "../dom.js";

const basename = (p) => String(p || "").replace(/\/+$/, "").split("/").pop();

export async function experimentActions(e, reload) {
  const id = encodeURIComponent(e.id);
  const run = (label, fn) => async (ev) => {
    const r = await action(ev.target, fn);
    if (r !== undefined) { if (label) notify(label, "ok"); await reload(r); }
  };
  const canStart = !ACTIVE.has(e.status) && e.status !== "finished";
  return h("div.row-actions",
    canStart ? h("button", { type: "button", "data-action": "start",
                             onclick: run(null, () => api.post(`/api/experiments/${id}/start`, {})) },
                 e.status === "created" ? "Start" : "Resume") : null,
    ACTIVE.has(e.status) ? h("button", { type: "button", "data-action": "stop",
                                         onclick: run(null, () => api.post(`/api/experiments/${id}/stop`, {})) }, "Stop") : null,
    h("button", { type: "button", "data-action": "clone", onclick: run("Cloned", () => {
      const name = prompt("Name of the copy", `${e.name}-copy`);
      if (name === null) return Promise.resolve(undefined);
      return api.post(`/api/experiments/${id}/clone`, { name });
    }) }, "Clone"),
    h("button.danger", { type: "button", "data-action": "delete", onclick: run("Deleted", async () => {
      if (!confirm(`Delete experiment "${e.name}" and its files?${ACTIVE.has(e.status) ? " It is stopped first." : ""}`)) return undefined;
      await api.del(`/api/experiments/${id}`);
      return { deleted: e.id };
    }) }, "Delete"));
}

export async function renderExperiments(page) {
  const body = h("div");
  const compareBtn = h("button", { type: "button", disabled: true, onclick: () => {
    const ids = [...body.querySelectorAll("input.pick:checked")].map((c) => c.value);
    location.hash = `#/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
  } }, "Compare selected");
  page.append(h("div.page-head", h("h1", "Experiments"),
                h("div.row", compareBtn, h("a.button.primary", { href: "#/experiments/new" }, "New experiment"))),
              body);
  let timer = null, datasets = {}, stopped = false;
  const picked = new Set();

  async function load() {
    let data;
    try {
      [data, datasets] = await Promise.all([api.get("/api/experiments"),
        api.get("/api/datasets").then((d) => Object.fromEntries((d.datasets || []).map((x) => [x.id, x.name]))).catch(() => ({}))]);
    } catch (e) {
      clear(body, errorBox(e, "Cannot list experiments"));
      schedule(10000);
      return;
    }
    const exps = data.experiments || [];
    if (!exps.length) {
      clear(body, h("section.card", h("p", "No experiments yet. ", h("a", { href: "#/experiments/new" }, "Create one"), ".")));
      schedule(10000);
      return;
    }
    const rows = await Promise.all(exps.map(async (e) => {
      const p = e.progress || {};
      const pick = h("input.pick", { type: "checkbox", value: e.id, checked: picked.has(e.id), "aria-label": `compare ${e.name}`,
        onchange: (ev) => { ev.target.checked ? picked.add(e.id) : picked.delete(e.id); compareBtn.disabled = picked.size < 1; } });
      return h("tr", { "data-id": e.id, "data-status": e.status },
        h("td", pick),
        h("td", h("a", { href: `#/experiments/${encodeURIComponent(e.id)}` }, e.name)),
        h("td", statusBadge(e.status), e.status === "failed" && e.message ? h("div.small.error-text", e.message) : null),
        h("td.progress-cell", progressBar(p)),
        h("td.num", fmtNum(p.loss)),
        h("td.num", fmtNum(p.tokens_per_s, 3)),
        h("td", datasets[e.dataset_id] || e.dataset_id || "–"),
        h("td", { title: e.llm_backbone }, basename(e.llm_backbone)),
        h("td.small", fmtDate(e.created_at)),
        h("td", await experimentActions(e, load)));
    }));
    for (const id of [...picked]) if (!exps.some((e) => e.id === id)) picked.delete(id);
    compareBtn.disabled = picked.size < 1;
    clear(body, h("section.card", h("div.scroll", h("table.experiments",
      h("thead", h("tr", ["", "name", "status", "progress", "loss", "tokens/s", "dataset", "model", "created", ""].map((c) => h("th", c)))),
      h("tbody", rows)))));
    schedule(exps.some((e) => ACTIVE.has(e.status)) ? 2000 : 10000);
  }
  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(load, ms);
  }
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- the create form ------------------------------------------------------------------------------------

// Keys the form's top fields set (the name, the dataset and model pickers): id of the field that stands for each.
const TOP_KEYS = { experiment_name: "exp-name", "dataset.train_dataframe": "exp-dataset", llm_backbone: "exp-model" };
const OPEN_SECTIONS = new Set(["dataset", "training"]);

function fieldId(section, key) { return `cfg-${section || "top"}-${key}`; }

function displayDefault(k) {
  if (Array.isArray(k.default)) return k.default.join(",");
  if (k.default === null || k.default === undefined) return "";
  return String(k.default);
}

// The tooltip of a key: its help, what happens to it when it is not implemented, its allowed range.
export function keyTooltip(k) {
  let t = k.help || "";
  if (k.status && k.status !== "implemented") t += `\n${k.status}: ${k.reason || ""}`;
  if (k.managed) t += "\nset by the studio";
  if (k.range) t += `\nallowed: ${k.range}`;
  return t;
}

// One input per schema key; returns {el, read(): value, key, section, def, fixed}. Keys that are ignored,
// refused or set by the studio are shown (with their help and reason) but disabled and never sent.
function makeField(section, k, columnList) {
  const id = fieldId(section, k.key);
  const full = section ? `${section}.${k.key}` : k.key;
  const fixed = k.managed || (k.status && k.status !== "implemented");
  let input, read;
  if (k.type === "bool") {
    input = h("input", { type: "checkbox", id, name: full, checked: !!k.default });
    read = () => input.checked;
  } else if (k.type === "enum" || (k.type !== "list" && k.choices && k.choices.length)) {
    input = h("select", { id, name: full }, (k.choices || []).map((c, i) =>
      h("option", { value: String(i), selected: JSON.stringify(c) === JSON.stringify(k.default) }, String(c))));
    read = () => k.choices[Number(input.value)];
  } else if (k.type === "int" || k.type === "float") {
    input = h("input", { type: "number", id, name: full, step: k.type === "int" ? "1" : "any", value: displayDefault(k) });
    read = () => {
      if (input.value.trim() === "") return k.default;
      const v = Number(input.value);
      if (!isFinite(v) || (k.type === "int" && !Number.isInteger(v))) {
        throw new Error(`${full}: expected ${k.type === "int" ? "an integer" : "a number"}, got "${input.value}"`);
      }
      return v;
    };
  } else if (k.type === "list") {
    input = h("input", { type: "text", id, name: full, value: displayDefault(k),
                         placeholder: k.choices ? `comma-separated: ${k.choices.join(", ")}` : "comma-separated",
                         list: /_column$/.test(k.key) ? columnList : null });
    read = () => input.value.split(",").map((x) => x.trim()).filter(Boolean);
  } else {
    input = h("input", { type: "text", id, name: full, value: displayDefault(k),
                         list: /_column$/.test(k.key) ? columnList : null });
    read = () => input.value;
  }
  const tip = keyTooltip(k);
  input.title = tip;
  if (fixed) input.disabled = true;
  const el = h("div.field", { "data-key": full, "data-status": k.status || "implemented", title: tip },
    h("label", { for: id, title: tip }, k.key),
    input,
    k.help ? h("div.help", k.help) : null,
    fixed ? h("div.help.muted", k.managed ? "set by the studio" : `${k.status}: ${k.reason || ""}`) : null,
    h("div.help.default", `default: ${displayDefault(k) === "" ? "(empty)" : displayDefault(k)}`));
  input.addEventListener("change", () => {
    let changed = true;
    try { changed = JSON.stringify(read()) !== JSON.stringify(k.default); } catch { /* invalid: flagged on submit */ }
    el.classList.toggle("changed", changed);
  });
  return { el, read, input, key: k.key, section, def: k.default, full, fixed,
           inert: !!(k.status && k.status !== "implemented") };
}

export async function renderNewExperiment(page, { params }) {
  page.append(h("div.page-head", h("h1", "New experiment"), h("a.button", { href: "#/experiments" }, "Back to the list")));
  const [schema, dsData, modelData] = await Promise.all([
    api.get("/api/config/schema"),
    api.get("/api/datasets"),
    api.get("/api/models").catch((e) => ({ models: [], error: e })),
  ]);
  const datasets = dsData.datasets || [];
  const models = modelData.models || [];
  const errorArea = h("div");
  const columnList = "dataset-columns";
  const columnsDatalist = h("datalist", { id: columnList });

  const nameInput = h("input", { id: "exp-name", name: "name", required: true,
                                 value: `experiment-${new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "")}` });
  const dsSelect = h("select", { id: "exp-dataset", name: "dataset_id", required: true },
    h("option", { value: "" }, datasets.length ? "— choose a dataset —" : "no datasets: upload one first"),
    datasets.map((d) => h("option", { value: d.id, selected: params.get("dataset") === d.id }, `${d.name} (${d.rows} rows)`)));
  const OTHER = "__other__";
  const modelSelect = h("select", { id: "exp-model", name: "llm_backbone" },
    models.map((m) => h("option", { value: m.path }, `${m.name}${m.architecture ? ` — ${m.architecture}` : ""}`)),
    h("option", { value: OTHER }, "another folder on the server…"));
  const modelPath = h("input", { id: "exp-model-path", type: "text", placeholder: "/absolute/path/to/model folder", hidden: models.length > 0 });
  modelSelect.addEventListener("change", () => { modelPath.hidden = modelSelect.value !== OTHER; });
  if (!models.length) modelSelect.value = OTHER;

  const fields = [];
  const sections = (schema.sections || []).map((sec) => {
    const visible = (sec.keys || []).filter((k) => !((sec.name ? `${sec.name}.${k.key}` : k.key) in TOP_KEYS));
    if (!visible.length) return null;
    const fs = visible.map((k) => makeField(sec.name, k, columnList));
    fields.push(...fs);
    return h("details.section", { open: OPEN_SECTIONS.has(sec.name) || undefined, "data-section": sec.name },
      h("summary", h("span.section-name", sec.title || sec.name || "general"), h("span.muted", ` · ${fs.length} settings`)),
      h("div.field-grid", fs.filter((f) => !f.inert).map((f) => f.el)),
      // H2O's keys without effect here, folded away (their tooltips and notes say why).
      fs.some((f) => f.inert) ? h("details.inert-keys", h("summary.muted", `H2O settings ignored or refused here · ${fs.filter((f) => f.inert).length}`),
        h("div.field-grid", fs.filter((f) => f.inert).map((f) => f.el))) : null);
  });

  // Picking a dataset offers its columns for the *_column settings and drops default columns it lacks.
  function onDataset() {
    const d = datasets.find((x) => x.id === dsSelect.value);
    const cols = d ? (d.columns || []).map((c) => c.name) : [];
    clear(columnsDatalist, ["None", ...cols].map((c) => h("option", { value: c })));
    if (!d) return;
    for (const f of fields) {
      if (f.section !== "dataset" || !/_column$/.test(f.key)) continue;
      const cur = f.input.value.split(",").map((x) => x.trim()).filter(Boolean);
      const kept = cur.filter((c) => cols.includes(c) || c === "None");
      if (kept.length !== cur.length && kept.length > 0) f.input.value = kept.join(",");
      f.input.dispatchEvent(new Event("change"));
    }
  }
  dsSelect.addEventListener("change", onDataset);
  onDataset();

  const form = h("form.card.create-form", { onsubmit: (ev) => { ev.preventDefault(); submit(ev.submitter); } },
    h("div.field-grid.top-fields",
      h("div.field", h("label", { for: "exp-name" }, "Name"), nameInput),
      h("div.field", h("label", { for: "exp-dataset" }, "Dataset"), dsSelect,
        h("div.help", h("a", { href: "#/datasets" }, "Upload a dataset"))),
      h("div.field", h("label", { for: "exp-model" }, "Model (llm_backbone)"), modelSelect, modelPath,
        h("div.help", modelData.error ? `cannot list models: ${modelData.error.message}`
          : "Hugging Face model folders found under the server's --allow-path roots and its data directory."))),
    columnsDatalist,
    sections,
    errorArea,
    h("div.actions.sticky",
      h("button.primary", { type: "submit", name: "start", value: "1", "data-testid": "create-start" }, "Create and start"),
      h("button", { type: "submit", name: "start", value: "0" }, "Create only")));
  page.append(form);
  // The top fields stand for their keys of the schema: the same data-key and the key's help as their tooltip.
  for (const sec of schema.sections || []) {
    for (const k of sec.keys || []) {
      const full = sec.name ? `${sec.name}.${k.key}` : k.key;
      const input = TOP_KEYS[full] && form.querySelector(`#${TOP_KEYS[full]}`);
      if (!input) continue;
      const tip = keyTooltip(k);
      input.title = tip;
      input.closest(".field").dataset.key = full;
      input.closest(".field").title = tip;
    }
  }

  async function submit(submitter) {
    clear(errorArea);
    for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
    const config = {};
    try {
      if (!dsSelect.value) throw new Error("choose a dataset");
      for (const f of fields) {
        if (f.fixed) continue;
        const v = f.read();
        if (JSON.stringify(v) === JSON.stringify(f.def)) continue;  // send only what differs from the defaults
        if (f.section) (config[f.section] ||= {})[f.key] = v;
        else config[f.key] = v;
      }
    } catch (e) {
      clear(errorArea, errorBox(e));
      return;
    }
    const backbone = modelSelect.value === OTHER ? modelPath.value.trim() : modelSelect.value;
    if (!backbone) { clear(errorArea, errorBox("choose a model folder")); return; }
    const start = !submitter || submitter.value !== "0";
    const body = { name: nameInput.value.trim(), dataset_id: dsSelect.value, llm_backbone: backbone, config, start };
    const exp = await action(submitter, () => api.post("/api/experiments", body).catch((e) => {
      clear(errorArea, errorBox(e, "The server refused the experiment"));
      // Point at the setting the message names ("training.learning_rate" or just "learning_rate").
      for (const f of fields) {
        if (e.message.includes(f.full) || new RegExp(`\\b${f.key}\\b`).test(e.message)) {
          form.querySelector(`.field[data-key="${CSS.escape(f.full)}"]`)?.classList.add("invalid");
          f.el.closest("details")?.setAttribute("open", "");
        }
      }
      return undefined;
    }));
    if (exp && exp.id) location.hash = `#/experiments/${encodeURIComponent(exp.id)}`;
  }
}
