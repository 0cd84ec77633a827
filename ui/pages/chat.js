// The Chat tab: talk to a finished experiment's model through /v1/chat/completions (model = experiment id,
// streamed), with the conversation history (kept per experiment while the page is open) and generation settings.
import { streamChat } from "../api.js";
import { clear, h } from "../dom.js";

const histories = new Map();  // experiment id -> [{role, content}]
const settingsOf = new Map(); // experiment id -> {temperature, max_tokens, top_p, system}

export async function renderChat(el, ctx) {
  if (ctx.exp.status !== "finished") {
    el.append(h("p.muted", `Chat becomes available when the run has finished (now: ${ctx.exp.status}).`));
    return;
  }
  const history = histories.get(ctx.id) || [];
  histories.set(ctx.id, history);
  const settings = settingsOf.get(ctx.id) || { temperature: 0.7, max_tokens: 128, top_p: 0.95, system: "" };
  settingsOf.set(ctx.id, settings);

  const log = h("div.chat-log", { "data-testid": "chat-log", "aria-live": "polite" });
  const input = h("textarea", { rows: 3, placeholder: "Ask something… (Enter sends, Shift+Enter: new line)", "data-testid": "chat-input" });
  const send = h("button.primary", { type: "submit", "data-testid": "chat-send" }, "Send");
  const stop = h("button", { type: "button", hidden: true }, "Stop");
  const num = (key, attrs) => {
    const inp = h("input", { type: "number", value: settings[key], ...attrs,
                             onchange: () => { const v = Number(inp.value); if (isFinite(v)) settings[key] = v; } });
    return inp;
  };
  const systemInput = h("input", { type: "text", value: settings.system, placeholder: "optional system prompt",
                                   onchange: () => { settings.system = systemInput.value; } });
  const side = h("aside.card.chat-settings",
    h("h2", "Generation"),
    h("label", "Temperature", num("temperature", { min: 0, max: 2, step: 0.05, "data-testid": "chat-temperature" })),
    h("label", "Max new tokens", num("max_tokens", { min: 1, max: 4096, step: 1, "data-testid": "chat-max-tokens" })),
    h("label", "Top-p", num("top_p", { min: 0.01, max: 1, step: 0.01 })),
    h("label", "System prompt", systemInput),
    h("button", { type: "button", onclick: () => { history.length = 0; draw(); } }, "Clear conversation"));
  let controller = null;
  const form = h("form.chat-form", { onsubmit: (ev) => { ev.preventDefault(); ask(); } }, input, h("div.actions", send, stop));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); ask(); }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  el.append(h("div.chat", h("section.card.chat-main", log, form), side));

  function bubble(m) {
    return h(`div.msg.${m.role}`, { "data-role": m.role },
      h("div.msg-role", m.role === "user" ? "you" : m.role), h("div.msg-text", m.content), m.note ? h("div.msg-note", m.note) : null);
  }
  function draw() {
    clear(log, history.length ? history.map(bubble) : h("p.muted", `Chat with ${ctx.exp.name}.`));
    log.scrollTop = log.scrollHeight;
  }
  draw();

  async function ask() {
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    history.push({ role: "user", content: text });
    const reply = { role: "assistant", content: "" };
    history.push(reply);
    draw();
    const replyText = log.lastElementChild.querySelector(".msg-text");
    log.lastElementChild.classList.add("streaming");
    const messages = [...(settings.system ? [{ role: "system", content: settings.system }] : []),
                      ...history.slice(0, -1).filter((m) => !m.error).map(({ role, content }) => ({ role, content }))];
    controller = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    try {
      const r = await streamChat({ model: ctx.id, messages, temperature: settings.temperature,
                                   max_tokens: settings.max_tokens, top_p: settings.top_p },
                                 (piece, all) => { reply.content = all; replyText.textContent = all; log.scrollTop = log.scrollHeight; },
                                 controller.signal);
      reply.content = r.text;
      if (r.finish === "length") reply.note = "stopped at the max new tokens";
      if (!r.text) reply.note = "the model returned an empty reply";
    } catch (e) {
      if (e.name === "AbortError") reply.note = "stopped";
      else { reply.error = true; reply.note = `error: ${e.message}`; }
    } finally {
      controller = null;
      send.disabled = false;
      stop.hidden = true;
      draw();
      input.focus();
    }
  }
}
