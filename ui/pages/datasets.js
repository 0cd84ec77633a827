// Datasets: upload (multipart), list, preview (paged rows, columns and their types, text-length stats), delete.
import { api } from "../api.js";
import { action, clear, errorBox, fmtBytes, fmtDate, fmtNum, h, notify, table } from "../dom.js";

const PAGE = 50;

export async function renderDatasets(page, { params }) {
  const list = h("div.dataset-list");
  const preview = h("div.dataset-preview");
  const fileInput = h("input", { type: "file", name: "file", accept: ".csv,.jsonl,.json,.parquet", required: true });
  const nameInput = h("input", { type: "text", name: "name", placeholder: "name (optional)" });
  const status = h("span.muted");
  const form = h("form.card.upload-form", { onsubmit: (ev) => { ev.preventDefault(); upload(); } },
    h("h2", "Upload a dataset"),
    h("p.muted", "CSV, JSONL or Parquet; one row per example, e.g. columns ", h("code", "instruction"), " and ",
      h("code", "output"), "."),
    h("div.row", fileInput, nameInput, h("button.primary", { type: "submit" }, "Upload"), status));
  page.append(h("h1", "Datasets"), form, list, preview);

  async function upload() {
    const file = fileInput.files[0];
    if (!file) return;
    const fd = new FormData();
    fd.append("file", file, file.name);
    if (nameInput.value.trim()) fd.append("name", nameInput.value.trim());
    const button = form.querySelector("button");
    status.textContent = `uploading ${file.name} (${fmtBytes(file.size)})…`;
    const ds = await action(button, () => api.upload("/api/datasets", fd));
    status.textContent = "";
    if (ds) {
      notify(`Uploaded ${ds.name}: ${ds.rows} rows`, "ok");
      form.reset();
      await load();
      location.hash = `#/datasets?id=${encodeURIComponent(ds.id)}`;
    }
  }

  async function load() {
    let data;
    try {
      data = await api.get("/api/datasets");
    } catch (e) {
      clear(list, errorBox(e, "Cannot list datasets"));
      return;
    }
    const rows = (data.datasets || []).map((d) => [
      h("a", { href: `#/datasets?id=${encodeURIComponent(d.id)}`, "data-testid": "dataset-link" }, d.name),
      d.format, fmtNum(d.rows), (d.columns || []).map((c) => c.name).join(", "), fmtBytes(d.size_bytes),
      fmtDate(d.created_at),
      h("div.row-actions",
        h("a.button", { href: `#/experiments/new?dataset=${encodeURIComponent(d.id)}` }, "New experiment"),
        h("button.danger", { type: "button", onclick: (ev) => remove(ev.target, d) }, "Delete")),
    ]);
    clear(list, h("section.card", h("h2", "All datasets"),
      rows.length ? h("div.scroll", table(["name", "format", "rows", "columns", "size", "created", ""], rows, { className: "datasets" }))
                  : h("p.muted", "No datasets yet: upload one above.")));
  }

  async function remove(button, d) {
    if (!confirm(`Delete dataset "${d.name}"? Its file is removed; experiments keep their copies.`)) return;
    const ok = await action(button, async () => { await api.del(`/api/datasets/${encodeURIComponent(d.id)}`); return true; });
    if (ok) {
      notify(`Deleted ${d.name}`, "ok");
      if (params.get("id") === d.id) location.hash = "#/datasets";
      else await load();
    }
  }

  async function showPreview(id, offset) {
    clear(preview, h("p.muted", "loading…"));
    try {
      const [d, rows] = await Promise.all([
        api.get(`/api/datasets/${encodeURIComponent(id)}`),
        api.get(`/api/datasets/${encodeURIComponent(id)}/rows?offset=${offset}&limit=${PAGE}`)]);
      const stats = d.stats || {};
      const total = rows.total ?? d.rows ?? 0;
      const pager = h("div.pager",
        h("button", { type: "button", disabled: offset <= 0, onclick: () => showPreview(id, Math.max(0, offset - PAGE)) }, "‹ Previous"),
        h("span.muted", total ? `rows ${offset + 1}–${Math.min(total, offset + PAGE)} of ${total}` : "no rows"),
        h("button", { type: "button", disabled: offset + PAGE >= total, onclick: () => showPreview(id, offset + PAGE) }, "Next ›"));
      clear(preview, h("section.card", { "data-testid": "dataset-preview" },
        h("div.card-head", h("h2", d.name), h("a.button", { href: `#/experiments/new?dataset=${encodeURIComponent(d.id)}` }, "New experiment with it")),
        h("p.muted", `${d.filename || ""} · ${d.format} · ${fmtNum(d.rows)} rows · ${fmtBytes(d.size_bytes)}`),
        h("h3", "Columns"),
        table(["column", "type", "min length", "mean length", "max length"],
              (d.columns || []).map((c) => {
                const st = stats[c.name] || {};
                return [c.name, c.type, fmtNum(st.min_len), fmtNum(st.mean_len, 3), fmtNum(st.max_len)];
              })),
        h("h3", "Rows"),
        pager,
        h("div.scroll.tall", table(rows.columns || [], rows.rows || [], { className: "rows" }))));
    } catch (e) {
      clear(preview, errorBox(e, "Cannot preview the dataset"));
    }
  }

  await load();
  if (params.get("id")) await showPreview(params.get("id"), 0);
}
