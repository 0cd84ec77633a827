// HTTP client of the studio API (docs/openapi.yaml): JSON requests with the access token, readable errors,
// the token prompt on 401, server-sent events and the streamed chat completions.

const TOKEN_KEY = "llmstudio.token";

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the token lives for this page only */ }
}

function authHeaders(extra = {}) {
  const h = { ...extra };
  const t = getToken();
  if (t) h["Authorization"] = `Bearer ${t}`;
  return h;
}

// Turns a failed response into an ApiError with the server's message ({"error": {"message"}}) or the status.
async function errorOf(res) {
  let message = `${res.status} ${res.statusText || "error"}`;
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error) message = typeof body.error === "string" ? body.error : (body.error.message || message);
    } catch {
      if (text && text.length < 500) message = `${message}: ${text}`;
    }
  } catch { /* body unreadable: keep the status line */ }
  return new ApiError(message, res.status);
}

// Asks for the access token (a modal dialog, see index.html); resolves true when one was entered.
let pendingTokenPrompt = null;
function promptForToken(reason) {
  if (pendingTokenPrompt) return pendingTokenPrompt;
  const dialog = document.getElementById("token-dialog");
  if (!dialog) return Promise.resolve(false);
  pendingTokenPrompt = new Promise((resolve) => {
    const form = dialog.querySelector("form");
    const input = dialog.querySelector("input[name=token]");
    dialog.querySelector(".token-reason").textContent = reason;
    input.value = "";
    const done = (ok) => {
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      pendingTokenPrompt = null;
      resolve(ok);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      if (!v) return;
      setToken(v);
      done(true);
    };
    const onClose = () => done(false);
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    input.focus();
  });
  return pendingTokenPrompt;
}

// fetch() with the token; on 401 asks for a token once and retries. Throws ApiError on HTTP errors and on
// network failures (server down).
export async function request(method, path, { json, body, headers = {}, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, headers: authHeaders(headers), signal };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(`cannot reach the studio server (${method} ${path}): ${e.message}`, 0);
    }
    if (res.status === 401 && attempt === 0) {
      const hadToken = !!getToken();
      if (await promptForToken(hadToken ? "The saved access token was refused." : "This studio needs an access token.")) continue;
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }
}

async function jsonOf(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { throw new ApiError(`the server sent invalid JSON: ${text.slice(0, 200)}`, res.status); }
}

export const api = {
  get: async (path, opts) => jsonOf(await request("GET", path, opts)),
  post: async (path, json, opts = {}) => jsonOf(await request("POST", path, { ...opts, json })),
  del: async (path) => jsonOf(await request("DELETE", path)),
  upload: async (path, formData) => jsonOf(await request("POST", path, { body: formData })),
};

// URL with ?token= for the routes a browser fetches by itself (EventSource, download links).
export function withToken(path) {
  const t = getToken();
  if (!t) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t);
}

// Subscribes to an SSE route. handlers: {eventName: fn(parsedData)}, plus onerror. Returns a close function.
// EventSource reconnects by itself when the stream drops; callers close it once the run has ended.
export function subscribe(path, handlers) {
  const es = new EventSource(withToken(path));
  for (const [name, fn] of Object.entries(handlers)) {
    if (name === "onerror" || name === "onopen") continue;
    es.addEventListener(name, (ev) => {
      let data = ev.data;
      try { data = JSON.parse(ev.data); } catch { /* plain text event */ }
      fn(data);
    });
  }
  if (handlers.onopen) es.onopen = handlers.onopen;
  es.onerror = (ev) => { if (handlers.onerror) handlers.onerror(ev, es); };
  return () => es.close();
}

// Streams /v1/chat/completions (stream: true). onDelta(text) for every content piece; resolves with the whole
// reply and the finish reason. Honours an AbortSignal (the Stop button).
export async function streamChat(body, onDelta, signal) {
  const res = await request("POST", "/v1/chat/completions", { json: { ...body, stream: true }, signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", text = "", finish = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return { text, finish };
        let chunk;
        try { chunk = JSON.parse(data); } catch { continue; }
        if (chunk.error) throw new ApiError(chunk.error.message || String(chunk.error), 500);
        const choice = chunk.choices && chunk.choices[0];
        const piece = choice && choice.delta && choice.delta.content;
        if (piece) { text += piece; onDelta(piece, text); }
        if (choice && choice.finish_reason) finish = choice.finish_reason;
      }
    }
  }
  return { text, finish };
}
