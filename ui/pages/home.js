// Home: the platform the studio runs on, exactly what `llmstudio env --json` reports (GET /api/env), and
// short links to the next steps.
import { api } from "../api.js";
import { fmtBytes, h, table } from "../dom.js";

function kv(label, value, testid) {
  return h("div.kv", h("div.kv-label", label), h("div.kv-value", { "data-testid": testid }, value ?? "–"));
}

export async function renderHome(page) {
  page.append(h("h1", "LLM Studio"),
              h("p.muted", "Fine-tune and chat with language models on this machine."));
  const env = await api.get("/api/env");
  const sel = env.selected || {};
  const backend = env.backend || sel.device || "–";
  const memory = sel.memory_bytes ?? env.memory_bytes ?? env.memory;
  page.append(h("section.card",
    h("h2", "Platform"),
    h("div.kv-grid",
      kv("Backend", String(backend).replace(/:\d+$/, "").toUpperCase(), "env-backend"),
      kv("Device", sel.device_name || sel.device || env.device || "–", "env-device"),
      kv("Memory", typeof memory === "number" ? fmtBytes(memory) : memory, "env-memory"),
      kv("Default dtype", sel.dtype || env.dtype || "–", "env-dtype"),
      kv("Unified memory", sel.unified_memory === undefined ? "–" : sel.unified_memory ? "yes" : "no", "env-unified"),
      kv("System", [env.os, env.arch].filter(Boolean).join(" / ") || "–", "env-os"),
      kv("libtorch", env.torch_version || "–", "env-torch")),
    sel.notes && sel.notes.length ? h("ul.notes", sel.notes.map((n) => h("li", n))) : null));

  const cuda = env.cuda || {};
  if (cuda.devices && cuda.devices.length) {
    page.append(h("section.card", h("h2", "CUDA devices"),
      table(["#", "name", "memory", "compute capability"],
            cuda.devices.map((d, i) => [d.index ?? i, d.name, fmtBytes(d.memory_bytes ?? d.total_memory_bytes),
                                        d.sm ?? d.compute_capability ?? (d.major !== undefined ? `${d.major}.${d.minor}` : "–")]))));
  }
  page.append(h("details.card",
    h("summary", "Everything ", h("code", "llmstudio env --json"), " reports"),
    h("pre.code", JSON.stringify(env, null, 2))));
  page.append(h("section.card.next-steps",
    h("h2", "Get started"),
    h("ol",
      h("li", h("a", { href: "#/datasets" }, "Upload a dataset"), " (CSV, JSONL or Parquet with prompt and answer columns)."),
      h("li", h("a", { href: "#/experiments/new" }, "Create an experiment"), ": pick the dataset, a local model folder and the settings."),
      h("li", "Watch its charts and logs, chat with the result and export it."))));
}
