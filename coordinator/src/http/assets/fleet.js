// The fleet page: polls /api/fleet every second with the bearer token and renders it.
// The token comes from the URL fragment (#token=...; never sent to the server in the URL)
// or the form, and is kept in sessionStorage for this tab only. Everything is rendered with
// textContent: names from certificates never become markup.
"use strict";

const POLL_MS = 1000;
const STALE_TELEMETRY_MS = 10000;
let token = null;
let timer = null;

function readToken() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("proofrack-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("proofrack-token");
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}

function fmtBytes(n) {
  const gib = n / 2 ** 30;
  return gib >= 1 ? gib.toFixed(1) + " GiB" : (n / 2 ** 20).toFixed(0) + " MiB";
}

// A span as proofrack says it everywhere (common/src/timefmt.rs): 250 ms, 1.3 s, 4 m 12 s.
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return ms + " ms";
  if (ms < 10000) return (Math.floor(ms / 100) / 10).toFixed(1) + " s";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60), rs = s % 60;
  if (m < 60) return rs ? `${m} m ${rs} s` : `${m} m`;
  const h = Math.floor(m / 60), rm = m % 60;
  if (h < 24) return rm ? `${h} h ${rm} m` : `${h} h`;
  const d = Math.floor(h / 24), rh = h % 24;
  return rh ? `${d} d ${rh} h` : `${d} d`;
}

// "2026-12-03T10:14:05.337Z" -> "2026-12-03 10:14:05 UTC"
function fmtUtc(iso) {
  return iso ? iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC" : "—";
}

// Both forms, as the command line shows a time: "12 s ago, at 2026-12-03 10:14:05 UTC".
function fmtWhen(atMs, nowMs, iso) {
  const d = nowMs - atMs;
  const rel = d === 0 ? "now" : d > 0 ? fmtMs(d) + " ago" : "in " + fmtMs(-d);
  return rel + ", at " + fmtUtc(iso);
}

function share(part, whole) {
  const w = BigInt(whole);
  if (w === 0n) return 0;
  return Number((BigInt(part) * 10000n) / w) / 100;
}

function agentName(a) {
  return a ? a.operator + "/" + a.name : "—";
}

function render(v) {
  fill("operators", v.operators.map((o) => {
    // "free" includes stake promised to outstanding offers; draw that part separately.
    // Withdrawing stake is neither free nor bound: it leaves after the withdrawal delay.
    const promised = BigInt(o.promised) <= BigInt(o.free) ? o.promised : o.free;
    const freeOnly = (BigInt(o.free) - BigInt(promised)).toString();
    const bar = el("div", { class: "bar", title: `active ${o.active}, promised ${promised}, withdrawing ${o.withdrawing}, free ${o.free} of ${o.delegated}` },
      el("span", { class: "active", style: `width:${share(o.active, o.delegated)}%` }),
      el("span", { class: "promised", style: `width:${share(promised, o.delegated)}%` }),
      el("span", { class: "withdrawing", style: `width:${share(o.withdrawing, o.delegated)}%` }),
      el("span", { class: "free", style: `width:${share(freeOnly, o.delegated)}%` }));
    return el("tr", { "data-operator": o.operator },
      el("td", {}, o.operator),
      el("td", { class: "num", "data-field": "delegated" }, o.delegated),
      el("td", { class: "num", "data-field": "active" }, o.active),
      el("td", { class: "num", "data-field": "withdrawing" }, o.withdrawing),
      el("td", { class: "num", "data-field": "free" }, o.free),
      el("td", { class: "num", "data-field": "slashed" }, o.slashed),
      el("td", { class: "num", "data-field": "bound_tasks" }, o.bound_tasks),
      el("td", {}, bar));
  }));

  const accuracy = new Map(v.accuracy.map((a) => [agentName(a.agent), a]));
  document.getElementById("agents-summary").textContent =
    `${v.agents_connected} connected of ${v.agents.length} known`;
  fill("agents", v.agents.map((a) => {
    const name = agentName(a.agent);
    const gpus = a.gpus.length === 0
      ? (a.cpu_cores ? `CPU, ${a.cpu_cores} cores` : "—")
      : a.gpus.map((g) => `GPU ${g.index} ${g.name}: ${fmtBytes(g.memory_free_bytes)} free of ${fmtBytes(g.memory_total_bytes)}, ${g.temperature_c} °C, ${(g.power_draw_mw / 1000).toFixed(0)} W`).join("; ");
    const age = a.telemetry_age_ms;
    const acc = accuracy.get(name);
    // An open circuit breaker: no new offers until its cool-down ends.
    const breaker = a.breaker
      ? [el("div", { class: "stale", "data-field": "breaker" },
        `breaker open for ${fmtMs(a.breaker.until - v.now_ms)}: ${a.breaker.why}`)]
      : [];
    // Everything that keeps an agent from new tasks is said, not only its link.
    const held = a.drained || a.leaving || a.operator_standing !== "staked" || !!a.breaker;
    return el("tr", { "data-agent": name, class: a.connected ? "" : "gone" },
      el("td", {}, name, ...breaker),
      el("td", { "data-field": "state", class: held ? "held" : "" }, a.state),
      el("td", {}, a.backend_name || "—"),
      el("td", {}, gpus),
      el("td", { class: age !== null && age > STALE_TELEMETRY_MS ? "num stale" : "num", "data-field": "telemetry_age_ms" }, fmtMs(age)),
      el("td", { class: "num", "data-field": "tasks" }, `${a.tasks} / ${a.max_concurrent_tasks}`),
      el("td", { class: "num", "data-field": "accuracy" },
        (acc ? `${fmtMs(acc.mean_predicted_ms)} / ${fmtMs(acc.mean_actual_ms)} (${acc.verified_tasks} tasks)` : "—") +
        (a.speed_factor_permille !== 1000 ? ` · learned ×${(a.speed_factor_permille / 1000).toFixed(2)}` : "")));
  }));

  const lifeCycle = ["queued", "offered", "proving", "verifying", "verified", "failed"];
  document.getElementById("task-counts").textContent =
    lifeCycle.filter((s) => s in v.task_counts).map((s) => `${s} ${v.task_counts[s]}`).join(" · ");
  fill("tasks", v.tasks.map((t) => el("tr", { "data-task": t.id },
    el("td", {}, "task-" + t.id), el("td", {}, t.circuit), el("td", {}, t.state),
    el("td", {}, agentName(t.agent)), el("td", { class: "num" }, t.collateral),
    el("td", { class: "num" }, fmtMs(t.age_ms)))));

  fill("slashes", v.slashes.map((s) => el("tr", { "data-slash-task": s.task },
    el("td", { "data-field": "when" }, fmtWhen(s.at_ms, v.now_ms, s.at)), el("td", {}, s.task), el("td", {}, s.agent),
    el("td", { class: "num", "data-field": "slashed" }, s.slashed), el("td", { "data-field": "reason" }, s.reason))));
}

function setStatus(text, error) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

function refused(message) {
  document.body.dataset.state = "refused";
  document.getElementById("fleet").hidden = true;
  document.getElementById("auth").hidden = false;
  document.getElementById("auth-message").textContent = message;
  setStatus("access refused", true);
}

async function poll() {
  clearTimeout(timer);
  try {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const r = await fetch("/api/fleet", { headers, cache: "no-store" });
    if (r.status === 401 || r.status === 403) {
      refused(r.status === 401
        ? "The coordinator refused the token (401). Enter the token from [http] token_file."
        : "The fleet API is disabled on this coordinator (403): set [http] token_file.");
      return; // no retry without a new token
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const v = await r.json();
    render(v);
    document.getElementById("auth").hidden = true;
    document.getElementById("fleet").hidden = false;
    document.body.dataset.state = "ready";
    document.body.dataset.updatedMs = String(v.now_ms);
    setStatus("updated " + fmtUtc(v.now) + " · " + v.coordinator_build, false);
  } catch (e) {
    setStatus("cannot reach the coordinator: " + e.message + " (retrying)", true);
  }
  timer = setTimeout(poll, POLL_MS);
}

document.getElementById("auth-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token-input").value.trim();
  sessionStorage.setItem("proofrack-token", token);
  poll();
});

token = readToken();
poll();
