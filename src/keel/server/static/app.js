// keel's dashboard: a few views over the HTTP API, no framework, no network beyond this server.
// Decisions send the API token in a header (never a cookie), so other sites cannot forge them.
"use strict";

const view = document.getElementById("view");
const tokenInput = document.getElementById("token");
const reviewerInput = document.getElementById("reviewer");
tokenInput.value = sessionStorage.getItem("keel-token") || "";
reviewerInput.value = sessionStorage.getItem("keel-reviewer") || "";
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("keel-token", tokenInput.value.trim());
  sessionStorage.setItem("keel-reviewer", reviewerInput.value.trim());
});

const esc = (text) => String(text ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (ts) => ts ? new Date(ts * 1000).toLocaleString() : "-";
const show = (value) => typeof value === "string" ? value : JSON.stringify(value);
// Why keel stopped a run, in a word (the budget it ran out of).
const reason = (r) => r.status_reason && r.status_reason.budget_exceeded
  ? ` · budget ${r.status_reason.budget_exceeded.budget}` : "";

async function api(path, options = {}) {
  const response = await fetch(path, options);
  // Every answer of keel's is JSON; a proxy's or a crash's may not be.
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function post(executionId, verb, body) {
  const token = sessionStorage.getItem("keel-token") || "";
  return api(`/api/executions/${executionId}/${verb}`, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": `Bearer ${token}`},
    body: JSON.stringify({reviewer: sessionStorage.getItem("keel-reviewer") || "dashboard",
                          ...body}),
  });
}

const decide = (executionId, verb, callId, reason) =>
  post(executionId, verb, {call_id: callId, reason: reason || null});

// An IN_DOUBT run: an unsafe call was cut off; the reviewer says what became of it.
function doubtCard(executionId, event) {
  return `<div class="card doubt" data-execution="${esc(executionId)}">
    <p><b>${esc(event.tool_name)}</b> (call ${esc(event.call_id)}) was cut off mid-call.
      <span class="muted">${esc(event.reason)}</span></p>
    <p><a href="#/executions/${esc(executionId)}">execution ${esc(executionId)}</a></p>
    <input class="result" placeholder='Its result, as JSON (e.g. {"status": "refunded"})'>
    <button class="record">It ran: record this result</button>
    <button class="retry">It did not run: retry</button>
    <input class="reason" placeholder="Reason (needed to fail)">
    <button class="fail">Fail the run</button> <span class="error"></span></div>`;
}

function bindDoubtCards() {
  for (const card of view.querySelectorAll(".doubt")) {
    const act = async (action) => {
      try {
        const body = {action};
        if (action === "record") body.result = JSON.parse(card.querySelector(".result").value);
        if (action === "fail") body.reason = card.querySelector(".reason").value;
        await post(card.dataset.execution, "resolve", body);
        location.hash = `#/executions/${card.dataset.execution}`;
        route();
      } catch (error) { card.querySelector(".error").textContent = error.message; }
    };
    for (const action of ["record", "retry", "fail"]) {
      card.querySelector(`.${action}`).addEventListener("click", () => act(action));
    }
  }
}

const lastDoubt = (run) => run.events.filter((e) => e.type === "in_doubt").pop();

function describe(e) {
  switch (e.type) {
    case "tool_call": case "waiting": return `${e.tool_name} ${show(e.args)}`;
    case "tool_result": return `${e.tool_name} → ${show(e.result)}`;
    case "handoff": return `→ ${e.target}`;
    case "approved": case "rejected":
      return `${e.tool_name}${e.reviewer ? " by " + e.reviewer : ""}${e.reason ? ": " + e.reason : ""}`;
    case "done": return show(e.output);
    default: return e.content || e.reason || e.guardrail_name || "";
  }
}

const STATUSES = ["", "RUNNING", "WAITING", "QUEUED", "COMPLETED", "FAILED", "CANCELLED",
                  "IN_DOUBT"];

async function executions() {
  const status = sessionStorage.getItem("keel-status") || "";
  // A pipeline's stages are listed on the pipeline's page.
  const rows = await api(`/api/executions?stages=false${status ? `&status=${status}` : ""}`);
  view.innerHTML = `<h2>Executions</h2><p><label>Status <select id="status-filter">${
    STATUSES.map((s) => `<option value="${s}"${s === status ? " selected" : ""}>${s || "all"}
    </option>`).join("")}</select></label></p>
    <table><tr><th>ID</th><th>Status</th><th>Agent</th>
    <th>Started</th><th>Updated</th></tr>${rows.map((r) => `<tr>
    <td><a href="#/executions/${r.id}">${esc(r.id)}</a></td>
    <td class="status ${esc(r.status)}">${esc(r.status)}${esc(reason(r))}</td>
    <td>${esc(r.agent)}</td>
    <td>${when(r.created_at)}</td><td>${when(r.updated_at)}</td></tr>`).join("")}</table>`;
  document.getElementById("status-filter").addEventListener("change", (e) => {
    sessionStorage.setItem("keel-status", e.target.value);
    route();
  });
}

async function execution(id) {
  const r = await api(`/api/executions/${id}`);
  const start = r.events.length ? r.events[0].ts : 0;
  const usage = r.token_usage ? `<p class="muted">Tokens: ${r.token_usage.input_tokens} in,
    ${r.token_usage.output_tokens} out, ${r.token_usage.requests} requests</p>` : "";
  const limits = Object.entries(r.budget || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  const budget = `<p class="muted" id="budget">Ran ${r.run_seconds.toFixed(1)} s${
    limits ? ` · budget ${esc(limits)}` : ""}${r.budget_exceeded
    ? ` · <b>stopped: ${esc(r.budget_exceeded.budget)}</b>` : ""}</p>`;
  const parent = r.parent_id ? ` · stage of <a id="parent" href="#/executions/${
    esc(r.parent_id)}">${esc(r.parent_id)}</a>` : "";
  const stages = r.stages.length ? `<table id="stages"><tr><th>Stage</th><th>Status</th>
    <th>Agent</th><th>Framework</th></tr>${r.stages.map((s) => `<tr>
    <td><a href="#/executions/${esc(s.id)}">${esc(s.id)}</a></td>
    <td class="status ${esc(s.status)}">${esc(s.status)}${esc(reason(s))}</td>
    <td>${esc(s.agent)}</td><td>${esc(s.framework)}</td></tr>`).join("")}</table>` : "";
  const finished = ["COMPLETED", "FAILED", "CANCELLED"].includes(r.status);
  view.innerHTML = `<h2>Execution ${esc(id)}</h2>
    <p><span class="status ${esc(r.status)}" id="status">${esc(r.status)}</span>
    · agent ${esc(r.agent)}${parent}
    ${finished ? "" : `<button id="cancel">Cancel</button> <span class="error"></span>`}</p>
    ${usage}${budget}${stages}
    <div class="card"><b>Input</b><p id="input">${esc(show(r.input))}</p></div>
    ${r.output != null ? `<div class="card"><b>Output</b><p id="output">${esc(show(r.output))}</p></div>` : ""}
    ${r.error ? `<p class="error">${esc(r.error)}</p>` : ""}
    ${r.status === "IN_DOUBT" ? doubtCard(id, lastDoubt(r)) : ""}
    <table><tr><th>+s</th><th>Agent</th><th>Event</th><th></th></tr>${r.events.map((e) => `<tr>
      <td>${(e.ts - start).toFixed(2)}</td><td>${esc(e.agent || "-")}</td>
      <td>${esc(e.type)}</td><td>${esc(describe(e))}</td></tr>`).join("")}</table>`;
  bindDoubtCards();
  if (!finished) {
    document.getElementById("cancel").addEventListener("click", async (e) => {
      try { await post(id, "cancel", {}); route(); }
      catch (error) { e.target.nextElementSibling.textContent = error.message; }
    });
  }
  if (!finished && r.status !== "IN_DOUBT") {
    setTimeout(() => { if (location.hash === `#/executions/${id}`) route(); }, 1000);
  }
}

async function approvals() {
  const items = await api("/api/approvals");
  if (!items.length) { view.innerHTML = "<h2>Approvals</h2><p>Nothing is waiting.</p>"; return; }
  const cards = await Promise.all(items.map(async (a) => {
    const run = await api(`/api/executions/${a.execution_id}`);
    const said = run.events.filter((e) => e.type === "message").pop();
    const args = Object.entries(a.args || {}).map(([k, v]) =>
      `<tr><td>${esc(k)}</td><td>${esc(show(v))}</td></tr>`).join("");
    return `<div class="card approval" data-execution="${esc(a.execution_id)}"
        data-call="${esc(a.call_id)}">
      <p><b>${esc(a.agent || "The agent")}</b> wants to call <b>${esc(a.tool_name)}</b>.
        <span class="muted">Asked by: ${esc(a.rule || "a rule")} · ${when(a.requested_at)}</span></p>
      <table class="args">${args}</table>
      ${said ? `<p class="muted">It last said: “${esc(said.content)}”</p>` : ""}
      <p><a href="#/executions/${esc(a.execution_id)}">execution ${esc(a.execution_id)}</a></p>
      <button class="approve">Approve</button>
      <input class="reason" placeholder="Reason (needed to reject)">
      <button class="reject">Reject</button> <span class="error"></span></div>`;
  }));
  view.innerHTML = `<h2>Approvals</h2>${cards.join("")}`;
  for (const card of view.querySelectorAll(".approval")) {
    const act = async (verb) => {
      try {
        await decide(card.dataset.execution, verb, card.dataset.call,
                     card.querySelector(".reason").value);
        location.hash = `#/executions/${card.dataset.execution}`;
      } catch (error) { card.querySelector(".error").textContent = error.message; }
    };
    card.querySelector(".approve").addEventListener("click", () => act("approve"));
    card.querySelector(".reject").addEventListener("click", () => act("reject"));
  }
}

async function inDoubt() {
  const rows = await api("/api/executions?status=IN_DOUBT");
  const runs = await Promise.all(rows.map((r) => api(`/api/executions/${r.id}`)));
  view.innerHTML = `<h2>In doubt</h2>${runs.length ? runs.map((run) =>
    doubtCard(run.execution_id, lastDoubt(run))).join("") : "<p>Nothing is in doubt.</p>"}`;
  bindDoubtCards();
}

async function route() {
  const [, page, id] = (location.hash || "#/").split("/");
  try {
    if (page === "executions" && id) await execution(id);
    else if (page === "approvals") await approvals();
    else if (page === "in-doubt") await inDoubt();
    else await executions();
  } catch (error) { view.innerHTML = `<p class="error">${esc(error.message)}</p>`; }
}

window.addEventListener("hashchange", route);
route();
setInterval(() => { if ((location.hash || "#/") === "#/") route(); }, 2000);  // live list
