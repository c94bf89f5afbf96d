// The dashboard shell: routing, the time range and refresh controls, the API token, and the render loop.
import { ApiError, getToken, setToken, takeTokenFromAddress } from "./api.js";
import { h } from "./dom.js";
import { datetime } from "./format.js";
import { href, parse, withParams } from "./route.js";
import { DEFAULT_RANGE, RANGES, resolveRange } from "./time.js";
import { empty } from "./ui.js";
import { overview } from "./pages/overview.js";
import { modelPage } from "./pages/model.js";
import { featurePage } from "./pages/feature.js";
import { comparePage } from "./pages/compare.js";

const config = JSON.parse(document.getElementById("predwatch-config").textContent);
const PAGES = { overview, model: modelPage, feature: featurePage, compare: comparePage };
const REFRESH = [0, 10, 30, 60, 300];
const DEFAULT_REFRESH = 30;

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const controls = document.getElementById("controls");
const crumbs = document.getElementById("crumbs");

let generation = 0;
let controller = null;
let timer = null;
let paused = false;
let renders = 0;
let lastUpdate = null;
let controlsFor = null;

function navigate(target) {
  if (target !== location.hash) location.hash = target;
  else render();
}

function setState(state, page) {
  document.body.dataset.state = state;
  document.body.dataset.page = page;
}

async function render() {
  clearTimeout(timer);
  const mine = ++generation;
  controller?.abort();
  controller = new AbortController();
  const route = parse(location.hash);
  const range = resolveRange(route.params);
  if (controlsKey() !== controlsFor) drawControls(route); // a refresh leaves half-typed custom times alone
  drawCrumbs(route);
  setState(main.childElementCount ? "refreshing" : "loading", route.page);
  try {
    if (config.auth && !getToken()) throw new ApiError("auth", 401, "this collector needs its API token");
    const view = await PAGES[route.page]({ route, config, range, signal: controller.signal, navigate });
    if (mine !== generation) return;
    main.replaceChildren(view);
    main.dataset.filled = "1";
    banner.hidden = true;
    lastUpdate = new Date();
    renders += 1;
    document.body.dataset.renders = String(renders);
    setState("ready", route.page);
  } catch (error) {
    if (mine !== generation || error.name === "AbortError") return;
    if (error.kind === "auth") {
      main.replaceChildren(tokenForm(Boolean(getToken())));
      setState("auth", route.page);
      return; // no refresh until a token is given
    }
    if (error.kind === "network" && main.dataset.filled) {
      banner.replaceChildren(
        `The collector did not answer; showing what it said at ${datetime(lastUpdate)}. Retrying.`,
      );
      banner.hidden = false;
      setState("stale", route.page);
    } else {
      main.replaceChildren(failure(error));
      setState("error", route.page);
    }
  } finally {
    if (mine === generation) {
      drawStatus();
      schedule(route);
    }
  }
}

function refreshSeconds(route) {
  const value = Number(route.params.get("refresh") ?? DEFAULT_REFRESH);
  return Number.isFinite(value) && value >= 0 ? value : DEFAULT_REFRESH;
}

function schedule(route) {
  clearTimeout(timer);
  const seconds = refreshSeconds(route);
  if (seconds > 0 && !paused && document.body.dataset.state !== "auth") {
    timer = setTimeout(() => (document.hidden ? schedule(route) : render()), seconds * 1000);
  }
}

function drawCrumbs(route) {
  const parts = [h("a", { href: href("overview", [], {}, route.params) }, "Models")];
  if (route.model) {
    parts.push(
      h("span", { class: "sep" }, "/"),
      h(
        "a",
        { href: href("model", [route.model], { v: route.params.get("v") || route.params.get("a") }, route.params) },
        route.model,
      ),
    );
  }
  if (route.page === "feature") parts.push(h("span", { class: "sep" }, "/"), h("span", {}, route.feature));
  if (route.page === "compare") parts.push(h("span", { class: "sep" }, "/"), h("span", {}, "compare"));
  crumbs.replaceChildren(...parts);
}

const controlsKey = () => `${location.hash} ${Boolean(getToken())}`;

function drawControls(route) {
  controlsFor = controlsKey();
  const current = route.params.get("range") || DEFAULT_RANGE;
  const buttons = [...Object.keys(RANGES), "custom"].map((name) =>
    h(
      "button",
      {
        type: "button",
        class: "seg",
        "aria-pressed": String(name === current),
        dataset: { range: name },
        onclick: () =>
          name === "custom" ? openCustom(route) : navigate(withParams(route, { range: name, from: null, to: null })),
      },
      name,
    ),
  );
  const seconds = refreshSeconds(route);
  const refresh = h(
    "select",
    {
      "aria-label": "auto refresh",
      id: "refresh-every",
      onchange: (e) => navigate(withParams(route, { refresh: e.target.value })),
    },
    (REFRESH.includes(seconds) ? REFRESH : [...REFRESH, seconds].sort((a, b) => a - b)).map((s) =>
      h(
        "option",
        { value: s, selected: s === seconds },
        s ? `every ${s < 60 ? `${s} s` : `${s / 60} min`}` : "refresh off",
      ),
    ),
  );
  const pause = h(
    "button",
    {
      type: "button",
      id: "pause",
      class: "ghost",
      "aria-pressed": String(paused),
      title: paused ? "resume auto refresh" : "pause auto refresh",
      onclick: () => {
        paused = !paused;
        drawControls(route);
        drawStatus();
        if (paused) clearTimeout(timer);
        else schedule(route);
      },
    },
    paused ? "▶ resume" : "❚❚ pause",
  );
  const now = h(
    "button",
    { type: "button", class: "ghost", id: "refresh-now", title: "refresh now", onclick: () => render() },
    "↻",
  );
  const token = getToken()
    ? h(
        "button",
        {
          type: "button",
          class: "ghost",
          id: "forget-token",
          title: "forget the API token kept in this browser",
          onclick: () => {
            setToken("");
            render();
          },
        },
        "forget token",
      )
    : null;
  const range = resolveRange(route.params);
  const customForm = current === "custom" ? customInputs(route, range) : null;
  const parts = [
    h("div", { class: "segmented", role: "group", "aria-label": "time range" }, buttons),
    customForm,
    h(
      "div",
      { class: "refresh" },
      refresh,
      pause,
      now,
      h("span", { id: "status", class: "muted small", "aria-live": "polite" }),
    ),
    token,
  ];
  controls.replaceChildren(...parts.filter(Boolean));
}

function drawStatus() {
  const status = document.getElementById("status");
  if (!status) return;
  const when = lastUpdate ? `updated ${lastUpdate.toLocaleTimeString()}` : "";
  status.textContent = paused ? `${when} · paused` : when;
}

function openCustom(route) {
  const range = resolveRange(route.params);
  navigate(withParams(route, { range: "custom", from: range.start.toISOString(), to: range.end.toISOString() }));
}

const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);

function customInputs(route, range) {
  const from = h("input", { type: "datetime-local", "aria-label": "from", value: local(range.start), name: "from" });
  const to = h("input", { type: "datetime-local", "aria-label": "to", value: local(range.end), name: "to" });
  return h(
    "form",
    {
      class: "custom-range",
      onsubmit: (e) => {
        e.preventDefault();
        const start = new Date(from.value);
        const end = new Date(to.value);
        if (!(start < end)) return;
        navigate(withParams(route, { range: "custom", from: start.toISOString(), to: end.toISOString() }));
      },
    },
    from,
    "–",
    to,
    h("button", { type: "submit" }, "apply"),
  );
}

function tokenForm(refused) {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    "aria-label": "API token",
    placeholder: "API token",
    required: true,
  });
  return h(
    "div",
    { class: "page" },
    h(
      "form",
      {
        class: "token-form card",
        id: "token-form",
        onsubmit: (e) => {
          e.preventDefault();
          setToken(input.value.trim());
          render();
        },
      },
      h("h1", {}, "API token needed"),
      h(
        "p",
        {},
        refused
          ? "The collector refused the token kept in this browser. Enter a valid one."
          : "This collector only answers with its API token (--api-token, PREDWATCH_API_TOKEN).",
      ),
      input,
      h("button", { type: "submit" }, "Open the dashboard"),
      h(
        "p",
        { class: "muted small" },
        "The token stays in this browser (localStorage) and is sent as Authorization: Bearer to /api/v1 only. A link ending in #token=… sets it too.",
      ),
    ),
  );
}

function failure(error) {
  const hint = error.kind === "network" ? "Is the collector running? The page retries on its own." : null;
  return h(
    "div",
    { class: "page" },
    empty(
      `Could not load this page: ${error.message}.`,
      hint ? h("p", {}, hint) : null,
      h("p", {}, h("a", { href: "#/" }, "Back to every model")),
    ),
  );
}

document.querySelector(".brand").title = `predwatch ${config.version}`;
takeTokenFromAddress();
window.addEventListener("hashchange", () => {
  takeTokenFromAddress(); // a pasted link may carry a token
  render();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && document.body.dataset.state === "stale") render();
});
if (!location.hash) history.replaceState(null, "", "#/");
render();
