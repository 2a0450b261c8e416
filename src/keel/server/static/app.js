// keel's dashboard: a few views over the HTTP API, no framework, no network beyond this server.
// Requests send the API token in a header (never a cookie), so other sites cannot forge them.
"use strict";

const view = document.getElementById("view");
const notice = document.getElementById("notice");
const tokenInput = document.getElementById("token");
const reviewerInput = document.getElementById("reviewer");
const tokenNote = document.getElementById("token-note");
tokenInput.value = sessionStorage.getItem("keel-token") || "";
reviewerInput.value = sessionStorage.getItem("keel-reviewer") || "";

// What the boxes hold is what is sent, saved or not; saving keeps it for this tab's reloads.
const token = () => tokenInput.value.trim();
const reviewer = () => reviewerInput.value.trim() || "dashboard";
// A header carries Latin-1 only, and keel's tokens are ASCII: say so, not the browser's error.
const PLAIN = "An API token is plain ASCII text: paste the one keel serve printed.";
const plain = () => /^[\x20-\x7e]*$/.test(token());

function save() {
  if (!plain()) { tokenNote.textContent = PLAIN; return false; }
  sessionStorage.setItem("keel-token", token());
  sessionStorage.setItem("keel-reviewer", reviewerInput.value.trim());
  tokenNote.textContent = "Saved.";
  return true;
}
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (save()) { errors.clear(); route(); }  // a page that asked for the token shows now
});
for (const input of [tokenInput, reviewerInput]) {
  input.addEventListener("change", () => {  // Enter, Tab or a click elsewhere saves it too
    if (save() && view.querySelector(".needs-token")) route();
  });
  input.addEventListener("input", () => { tokenNote.textContent = ""; });
}

const esc = (text) => String(text ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (ts) => ts ? new Date(ts * 1000).toLocaleString() : "-";
const show = (value) => typeof value === "string" ? value : JSON.stringify(value);
// Why keel stopped a run, in a word (the budget it ran out of).
const reason = (r) => r.status_reason && r.status_reason.budget_exceeded
  ? ` · budget ${r.status_reason.budget_exceeded.budget}` : "";

// The errors of what the user did, by what they were about: views refresh every second or
// two, and an error stays shown through that until the user tries again or leaves the page.
const errors = new Map();
const errorSpan = (key) => `<span class="error" data-error="${esc(key)}">${
  esc(errors.get(key))}</span>`;
function fail(key, message) {
  errors.set(key, message);
  for (const span of view.querySelectorAll(".error[data-error]")) {
    if (span.dataset.error === key) span.textContent = message;
  }
}
async function act(key, action) {
  fail(key, "");  // the user acts again: the last error goes
  try { await action(); } catch (error) { fail(key, error.message); }
}

class Unreachable extends Error {}

async function api(path, options = {}) {
  if (!plain()) throw Object.assign(new Error(PLAIN), {needsToken: true});
  const headers = {...options.headers, ...(token() ? {"Authorization": `Bearer ${token()}`} : {})};
  let response;
  try {
    response = await fetch(path, {...options, headers});
  } catch {  // no answer at all: the server is down or restarting
    throw new Unreachable("The server does not answer; try again once it is back.");
  }
  // Every answer of keel's is JSON; a proxy's or a crash's may not be.
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    throw Object.assign(new Error(token()
      ? "This is not the API token keel serve printed: enter that one at the top right."
      : "This needs the API token keel serve printed: enter it at the top right."),
    {needsToken: true});
  }
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

const post = (executionId, verb, body) => api(`/api/executions/${executionId}/${verb}`, {
  method: "POST",
  headers: {"Content-Type": "application/json"},
  body: JSON.stringify({reviewer: reviewer(), ...body}),
});

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
    <button class="fail">Fail the run</button> ${errorSpan(`resolve:${executionId}`)}</div>`;
}

function bindDoubtCards() {
  for (const card of view.querySelectorAll(".doubt")) {
    const resolve = (action) => act(`resolve:${card.dataset.execution}`, async () => {
      const body = {action};
      if (action === "record") body.result = JSON.parse(card.querySelector(".result").value);
      if (action === "fail") body.reason = card.querySelector(".reason").value;
      await post(card.dataset.execution, "resolve", body);
      location.hash = `#/executions/${card.dataset.execution}`;
      route();
    });
    for (const action of ["record", "retry", "fail"]) {
      card.querySelector(`.${action}`).addEventListener("click", () => resolve(action));
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

// Each view loads what it shows, then returns a function that draws it and returns in how
// many milliseconds the view refreshes itself (0: it does not).

async function executions() {
  const status = sessionStorage.getItem("keel-status") || "";
  // A pipeline's stages are listed on the pipeline's page.
  const rows = await api(`/api/executions?stages=false${status ? `&status=${status}` : ""}`);
  return () => {
    if (!document.getElementById("runs")) {  // made once: a refresh keeps the filter as it is
      view.innerHTML = `<h2>Executions</h2><p><label>Status <select id="status-filter">${
        STATUSES.map((s) => `<option value="${s}"${s === status ? " selected" : ""}>${s || "all"}
        </option>`).join("")}</select></label></p>
        <table id="runs"><thead><tr><th>ID</th><th>Status</th><th>Agent</th>
        <th>Started</th><th>Updated</th></tr></thead><tbody></tbody></table>`;
      document.getElementById("status-filter").addEventListener("change", (e) => {
        sessionStorage.setItem("keel-status", e.target.value);
        route();
      });
    }
    view.querySelector("#runs tbody").innerHTML = rows.map((r) => `<tr>
      <td><a href="#/executions/${r.id}">${esc(r.id)}</a></td>
      <td class="status ${esc(r.status)}">${esc(r.status)}${esc(reason(r))}</td>
      <td>${esc(r.agent)}</td>
      <td>${when(r.created_at)}</td><td>${when(r.updated_at)}</td></tr>`).join("");
    return 2000;
  };
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
  return () => {
    view.innerHTML = `<h2>Execution ${esc(id)}</h2>
      <p><span class="status ${esc(r.status)}" id="status">${esc(r.status)}</span>
      · agent ${esc(r.agent)}${parent}
      ${finished ? "" : `<button id="cancel">Cancel</button> ${errorSpan(`cancel:${id}`)}`}</p>
      ${r.stalled ? `<p class="error" id="stalled">${esc(r.stalled)}</p>` : ""}
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
      document.getElementById("cancel").addEventListener("click", () =>
        act(`cancel:${id}`, async () => { await post(id, "cancel", {}); route(); }));
    }
    return finished || r.status === "IN_DOUBT" ? 0 : 1000;  // a doubt card is being filled in
  };
}

function approvalCard(a, run) {
  const said = run.events.filter((e) => e.type === "message").pop();
  const args = Object.entries(a.args || {}).map(([k, v]) =>
    `<tr><td>${esc(k)}</td><td>${esc(show(v))}</td></tr>`).join("");
  // A framework's own pause (interrupt(), RequestInput) may want a value, not just a yes.
  const asks = a.kind === "interrupt";
  return `<div class="card approval" data-approval="${esc(a.approval_id)}"
      data-execution="${esc(a.execution_id)}" data-call="${esc(a.call_id)}">
    <p><b>${esc(a.agent || "The agent")}</b> ${asks ? "asks for an answer:" : "wants to call"}
      <b>${esc(a.tool_name)}</b>.
      <span class="muted">Asked by: ${esc(a.rule || "a rule")} · ${when(a.requested_at)}</span></p>
    <table class="args">${args}</table>
    ${said ? `<p class="muted">It last said: “${esc(said.content)}”</p>` : ""}
    <p><a href="#/executions/${esc(a.execution_id)}">execution ${esc(a.execution_id)}</a></p>
    ${asks ? `<input class="answer" placeholder="Your answer (sent as text)">
      <button class="respond">Answer</button> or ` : ""}
    <button class="approve">Approve</button>
    <input class="reason" placeholder="Reason (needed to reject)">
    <button class="reject">Reject</button> ${errorSpan(`decide:${a.approval_id}`)}</div>`;
}

async function approvals() {
  const items = await api("/api/approvals");
  // Cards already shown stay as they are (a reason half typed, an error); new ones are added.
  const shown = new Set([...view.querySelectorAll(".approval")].map((c) => c.dataset.approval));
  const added = await Promise.all(items.filter((a) => !shown.has(a.approval_id)).map(
    async (a) => [a.approval_id, approvalCard(a, await api(`/api/executions/${a.execution_id}`))]));
  return () => {
    if (!document.getElementById("cards")) {
      view.innerHTML = `<h2>Approvals</h2><div id="cards"></div>
        <p id="nothing">Nothing is waiting.</p>`;
    }
    const cards = document.getElementById("cards");
    const waiting = new Set(items.map((a) => a.approval_id));
    for (const card of cards.querySelectorAll(".approval")) {
      if (!waiting.has(card.dataset.approval)) card.remove();  // decided meanwhile
    }
    for (const [approvalId, html] of added) {
      if ([...cards.children].some((c) => c.dataset.approval === approvalId)) continue;
      cards.insertAdjacentHTML("beforeend", html);
      const card = cards.lastElementChild;
      const decideHere = (verb) => act(`decide:${approvalId}`, async () => {
        await decide(card.dataset.execution, verb, card.dataset.call,
                     card.querySelector(".reason").value);
        location.hash = `#/executions/${card.dataset.execution}`;
      });
      card.querySelector(".approve").addEventListener("click", () => decideHere("approve"));
      card.querySelector(".reject").addEventListener("click", () => decideHere("reject"));
      card.querySelector(".respond")?.addEventListener("click", () =>
        act(`decide:${approvalId}`, async () => {
          const value = card.querySelector(".answer").value;
          if (!value.trim()) throw new Error("Type an answer, or approve to give none.");
          await post(card.dataset.execution, "respond", {call_id: card.dataset.call, value});
          location.hash = `#/executions/${card.dataset.execution}`;
        }));
    }
    document.getElementById("nothing").hidden = items.length > 0;
    return 2000;
  };
}

async function inDoubt() {
  const rows = await api("/api/executions?status=IN_DOUBT");
  const runs = await Promise.all(rows.map((r) => api(`/api/executions/${r.id}`)));
  return () => {
    view.innerHTML = `<h2>In doubt</h2>${runs.length ? runs.map((run) =>
      doubtCard(run.execution_id, lastDoubt(run))).join("") : "<p>Nothing is in doubt.</p>"}`;
    bindDoubtCards();
    return 0;  // its cards are being filled in
  };
}

let turn = 0;  // the latest route(): an earlier one that answers late draws nothing
let timer;

async function route() {
  clearTimeout(timer);
  const mine = ++turn;
  const [, page, id] = (location.hash || "#/").split("/");
  let again = 0;
  try {
    const draw = await (page === "executions" && id ? execution(id)
      : page === "approvals" ? approvals() : page === "in-doubt" ? inDoubt() : executions());
    if (mine !== turn) return;
    again = draw();
    notice.hidden = true;
  } catch (error) {
    if (mine !== turn) return;
    if (error instanceof Unreachable) {  // keep what is shown, and try again
      notice.textContent = "The server does not answer; retrying…";
      notice.hidden = false;
      again = 1000;
    } else {
      notice.hidden = true;
      view.innerHTML = `<p class="error${error.needsToken ? " needs-token" : ""}">${
        esc(error.message)}</p>`;
      if (error.needsToken) tokenInput.focus();  // a read needs it: ask for it
    }
  }
  if (again) timer = setTimeout(route, again);
}

window.addEventListener("hashchange", () => { errors.clear(); route(); });
route();
