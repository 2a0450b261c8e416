"""The HTTP API against the real app and a real store: reads, the approvals inbox, decisions
that need the token and record the reviewer, starting runs, and the SSE stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent
from fastapi.testclient import TestClient

from in_doubt import REFUNDS, in_doubt_execution
from keel import AgentRuntime, Budget, Status
from keel.server import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


@pytest.fixture
def client(runtime: AgentRuntime) -> Iterator[TestClient]:
    backend.REFUNDS.clear()
    with TestClient(create_app(runtime, token=TOKEN)) as client:
        yield client


def test_the_inbox_a_decision_with_its_reviewer_and_the_finished_run(
    client: TestClient, runtime: AgentRuntime
) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    (item,) = client.get("/api/approvals").json()
    assert (item["execution_id"], item["tool_name"], item["args"]) == (
        waiting.execution_id, "process_refund",
        {"invoice_id": "INV-8821", "reason": "Duplicate charge"})
    url = f"/api/executions/{waiting.execution_id}"
    assert client.post(f"{url}/approve", json={"reviewer": "dana"}).status_code == 401
    approved = client.post(f"{url}/approve", json={"reviewer": "dana"}, headers=AUTH)
    assert approved.json() == {"approved": [item["call_id"]]}
    assert client.get("/api/approvals").json() == []
    again = client.post(f"{url}/approve", json={"reviewer": "ben"}, headers=AUTH)
    assert again.status_code == 409 and "already approved by dana" in again.json()["error"]

    done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    detail = client.get(url).json()
    assert detail["status"] == "COMPLETED" and "refunded $99.00" in detail["output"]
    assert detail["input"] == TICKET and detail["finished_at"] >= detail["created_at"]
    decision = next(e for e in detail["events"] if e["type"] == "approved")
    assert decision["reviewer"] == "dana"
    listed = client.get("/api/executions", params={"status": "completed"}).json()
    assert [e["id"] for e in listed] == [waiting.execution_id]
    events = client.get(f"{url}/events", params={"after": 5}).json()
    assert events[0]["seq"] == 6 and events[-1]["type"] == "done"


def test_a_run_its_budget_stopped_says_so_in_the_list_and_the_detail(
    client: TestClient, runtime: AgentRuntime
) -> None:
    stopped = runtime.run(triage_agent, TICKET, budget=Budget(max_steps=2))
    exceeded = {"budget": "max_steps", "limit": 2, "used": 2,
                "next_step": "the tool call get_invoice"}
    (listed,) = client.get("/api/executions").json()
    assert (listed["status"], listed["status_reason"]) == (
        "FAILED", {"budget_exceeded": exceeded})
    detail = client.get(f"/api/executions/{stopped.execution_id}").json()
    assert (detail["budget"], detail["budget_exceeded"]) == ({"max_steps": 2}, exceeded)
    assert detail["events"][-1]["budget_exceeded"] == exceeded and detail["run_seconds"] > 0


def test_reject_needs_a_reason_and_unknown_ids_are_404(
    client: TestClient, runtime: AgentRuntime
) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    url = f"/api/executions/{waiting.execution_id}"
    assert client.post(f"{url}/reject", json={"reviewer": "lee"}, headers=AUTH
                       ).status_code == 422
    rejected = client.post(f"{url}/reject", json={"reviewer": "lee", "reason": "Not now."},
                           headers=AUTH)
    assert rejected.status_code == 200
    missing = client.get("/api/executions/nope")
    assert missing.status_code == 404 and "No execution 'nope'" in missing.json()["error"]


def test_start_a_run_by_reference_then_stream_it_with_last_event_id(
    client: TestClient, runtime: AgentRuntime
) -> None:
    started = client.post("/api/executions", headers=AUTH, json={
        "agent": "examples.support_triage.agents:triage_agent",
        "input": "I cannot log in, the page shows an error"})
    assert started.status_code == 202
    execution_id = started.json()["execution_id"]
    runtime.handle(execution_id).join(timeout=30)
    with client.stream("GET", f"/api/executions/{execution_id}/stream",
                       headers={"Last-Event-ID": "1"}) as response:
        text = "".join(response.iter_text())
    frames = [f for f in text.split("\n\n") if f]
    ids = [int(f.split("\n")[0].removeprefix("id: ")) for f in frames]
    assert ids[0] == 2 and ids == sorted(ids)  # after Last-Event-ID, in order
    last = json.loads(frames[-1].split("data: ", 1)[1])
    assert last["type"] == "done"


def test_the_openapi_schema_is_published(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/executions", "/api/approvals", "/api/executions/{execution_id}/approve",
            "/api/executions/{execution_id}/stream"} <= set(paths)


def test_an_in_doubt_run_is_listed_and_resolved_over_the_api(
    client: TestClient, runtime: AgentRuntime, database_url: str
) -> None:
    execution_id = in_doubt_execution(database_url)
    listed = client.get("/api/executions", params={"status": "in_doubt"}).json()
    assert [e["id"] for e in listed] == [execution_id]
    url = f"/api/executions/{execution_id}"
    doubt = client.get(url).json()["events"][-1]
    assert (doubt["type"], doubt["tool_name"], doubt["call_id"]) == ("in_doubt", "wire_refund",
                                                                     "w1")
    body = {"reviewer": "dana", "action": "record", "result": "wired INV-8821"}
    assert client.post(f"{url}/resolve", json=body).status_code == 401
    assert client.post(f"{url}/resolve", json={**body, "action": "maybe"},
                       headers=AUTH).status_code == 422
    resolved = client.post(f"{url}/resolve", json=body, headers=AUTH)
    assert resolved.json() == {"resolved": ["w1"], "action": "record"}
    again = client.post(f"{url}/resolve", json=body, headers=AUTH)
    assert again.status_code == 409 and "not IN_DOUBT" in again.json()["error"]
    done = runtime.resume(execution_id)
    assert done.status is Status.COMPLETED and done.output == "Refund: wired INV-8821"
    assert REFUNDS == ["INV-8821"]  # once, before the crash
