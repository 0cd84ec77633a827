// The studio's single-page app: hash routing (#/, #/datasets, #/experiments, #/experiments/new,
// #/experiments/<id>/<tab>, #/compare?ids=a,b), the top bar and the server-health indicator.
import { api, getToken, setToken } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { renderHome } from "./pages/home.js";
import { renderDatasets } from "./pages/datasets.js";
import { renderExperiments, renderNewExperiment } from "./pages/experiments.js";
import { renderExperiment } from "./pages/experiment.js";
import { renderCompare } from "./pages/compare.js";

const view = document.getElementById("view");
let cleanup = null;  // the current page's teardown (closes event streams, stops timers)

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart, query = ""] = raw.split("?");
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

const routes = [
  { match: (p) => p.length === 0, nav: "home", render: renderHome },
  { match: (p) => p[0] === "datasets", nav: "datasets", render: renderDatasets },
  { match: (p) => p[0] === "experiments" && p[1] === "new", nav: "experiments", render: renderNewExperiment },
  { match: (p) => p[0] === "experiments" && p.length >= 2, nav: "experiments", render: renderExperiment },
  { match: (p) => p[0] === "experiments", nav: "experiments", render: renderExperiments },
  { match: (p) => p[0] === "compare", nav: "compare", render: renderCompare },
];

async function route() {
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  const { parts, params } = parseHash();
  const r = routes.find((x) => x.match(parts));
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", !!r && a.dataset.route === r.nav);
  const page = h("div.page");
  clear(view, page);
  if (!r) {
    page.append(h("h1", "Not found"), h("p", "No page at ", h("code", location.hash), ". ", h("a", { href: "#/" }, "Home")));
    return;
  }
  try {
    const c = await r.render(page, { parts, params });
    if (typeof c === "function") {
      if (page.isConnected) cleanup = c;
      else c();  // the user navigated away while the page was loading
    }
  } catch (e) {
    page.append(errorBox(e));
  }
}

async function checkHealth() {
  const el = document.getElementById("server-state");
  try {
    const res = await fetch("/api/health", { headers: getToken() ? { Authorization: `Bearer ${getToken()}` } : {} });
    const body = res.ok ? await res.json() : null;
    el.textContent = body && body.version ? `v${body.version}` : res.status === 401 ? "token needed" : "online";
    el.className = "server-state ok";
  } catch {
    el.textContent = "server unreachable";
    el.className = "server-state down";
  }
}

// ?token=... in the page URL (e.g. printed by `llmstudio ui`) is saved and removed from the address bar.
const urlToken = new URLSearchParams(location.search).get("token");
if (urlToken) {
  setToken(urlToken);
  history.replaceState(null, "", location.pathname + location.hash);
}

window.addEventListener("hashchange", route);
route();
checkHealth();
setInterval(checkHealth, 15000);
export { api };
