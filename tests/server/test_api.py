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
    assert again.json()["error"].endswith("reload the execution to see where it is now.")

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
    empty, blank = (client.post(f"{url}/reject", json={"reviewer": "lee", "reason": reason},
                                headers=AUTH) for reason in ("", " \t "))
    assert blank.status_code == 422 and blank.json() == empty.json()
    rejected = client.post(f"{url}/reject", json={"reviewer": "lee", "reason": "Not now."},
                           headers=AUTH)
    assert rejected.status_code == 200
    missing = client.get("/api/executions/nope")
    assert missing.status_code == 404 and "No execution 'nope'" in missing.json()["error"]
    misspelt = client.get("/api/executions", params={"status": "complete"})
    assert misspelt.status_code == 422
    assert misspelt.json()["error"].startswith("status is one of QUEUED, RUNNING, WAITING")


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


def test_start_a_run_within_a_budget(client: TestClient, runtime: AgentRuntime) -> None:
    body = {"agent": "examples.support_triage.agents:triage_agent", "input": TICKET}
    bad = client.post("/api/executions", headers=AUTH, json={**body, "budget": {"max_steps": 0}})
    assert bad.status_code == 422 and "positive number" in bad.text
    assert client.get("/api/executions").json() == []  # nothing was admitted
    started = client.post("/api/executions", headers=AUTH,
                          json={**body, "budget": {"max_tool_calls": 1}})
    execution_id = started.json()["execution_id"]
    result = runtime.handle(execution_id).join(timeout=30)
    assert result.status is Status.FAILED
    assert result.budget_exceeded is not None
    assert result.budget_exceeded.next_step == "the tool call process_refund"
    assert client.get(f"/api/executions/{execution_id}").json()["budget"] == {
        "max_tool_calls": 1}
    assert backend.REFUNDS == []


def test_cancel_one_run_or_every_run_of_an_agent(
    client: TestClient, runtime: AgentRuntime
) -> None:
    first, second, third = (runtime.run(triage_agent, TICKET).execution_id for _ in range(3))
    url = f"/api/executions/{first}/cancel"
    assert client.post(url).status_code == 401
    assert client.post(url, headers=AUTH, json={"reason": "duplicate ticket"}).json() == {
        "status": "CANCELLED"}
    assert runtime.result(first).status is Status.CANCELLED
    killed = client.post("/api/agents/support_triage/cancel", headers=AUTH).json()
    assert killed == {"cancelled": {second: "CANCELLED", third: "CANCELLED"}}
    assert client.post("/api/executions/nope/cancel", headers=AUTH).status_code == 404


def test_the_audit_trail_over_the_api(client: TestClient, runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    runtime.handle(waiting.execution_id).approve(reviewer="dana", reason="duplicate charge")
    runtime.resume(waiting.execution_id)
    (decided,) = client.get("/api/decisions", params={"reviewer": "dana"}).json()
    assert (decided["execution_id"], decided["tool_name"], decided["reason"]) == (
        waiting.execution_id, "process_refund", "duplicate charge")
    assert client.get("/api/decisions", params={"reviewer": "ben"}).json() == []
    exported = client.get(f"/api/executions/{waiting.execution_id}/export")
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in exported.text.splitlines()]
    assert records[0]["record"] == "execution" and records[0]["status"] == "COMPLETED"
    assert [r["reviewer"] for r in records if r["record"] == "approval"] == ["dana"]
    assert client.get("/api/executions/nope/export").status_code == 404


def test_a_pipeline_lists_its_stages_and_each_stage_its_pipeline(
    client: TestClient, runtime: AgentRuntime
) -> None:
    from examples.support_pipeline.cross_framework import TICKET as PIPELINE_TICKET
    from examples.support_pipeline.cross_framework import pipeline

    pid = runtime.run(pipeline, PIPELINE_TICKET).execution_id
    detail = client.get(f"/api/executions/{pid}").json()
    assert [(s["id"], s["framework"]) for s in detail["stages"]] == [
        (f"{pid}.0", "openai"), (f"{pid}.1", "langgraph"), (f"{pid}.2", "adk")]
    assert detail["parent_id"] is None
    assert client.get(f"/api/executions/{pid}.1").json()["parent_id"] == pid
    assert len(client.get("/api/executions").json()) == 4
    assert [r["id"] for r in client.get("/api/executions?stages=false").json()] == [pid]


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
    assert "AgentHandle" not in again.json()["error"]  # a Python call says nothing over HTTP
    done = runtime.resume(execution_id)
    assert done.status is Status.COMPLETED and done.output == "Refund: wired INV-8821"
    assert REFUNDS == ["INV-8821"]  # once, before the crash


def test_an_idempotency_key_given_for_another_agent_is_a_conflict(
    client: TestClient, runtime: AgentRuntime
) -> None:
    body = {"agent": "examples.support_triage.agents:triage_agent", "input": TICKET,
            "idempotency_key": "ticket-9"}
    first = client.post("/api/executions", headers=AUTH, json=body)
    again = client.post("/api/executions", headers=AUTH, json=body)  # a retried webhook
    assert first.json() == again.json()
    other = client.post("/api/executions", headers=AUTH, json={
        **body, "agent": "examples.support_triage.agents:billing_agent"})
    assert other.status_code == 409 and "belongs to execution" in other.json()["error"]
    runtime.handle(first.json()["execution_id"]).join(timeout=30)


def test_a_token_is_compared_as_the_bytes_sent(
    client: TestClient, runtime: AgentRuntime
) -> None:
    url, sent = "/api/agents/support_triage/cancel", {"Authorization": "Bearer sécret".encode()}
    refused = client.post(url, headers=sent)  # not ASCII: was a 500
    assert refused.status_code == 401 and "Bearer <token>" in refused.json()["error"]
    with TestClient(create_app(runtime, token="sécret")) as other:
        assert other.post(url, headers=sent).json() == {"cancelled": {}}


def test_a_limit_or_since_it_cannot_take_is_a_422_on_every_store(client: TestClient) -> None:
    for path in ("/api/executions", "/api/decisions"):
        for query, error in (("limit=-1", "limit: Input should be greater than or equal to 1"),
                             ("limit=0", "limit: Input should be greater than or equal to 1"),
                             ("limit=10001", "limit: Input should be less than or equal to "),
                             ("since=nan", "since: Input should be a finite number"),
                             ("since=-5", "since: Input should be greater than or equal to 0")):
            answered = client.get(f"{path}?{query}")
            assert answered.status_code == 422 and answered.json()["error"].startswith(error)


def test_a_start_it_cannot_take_is_a_422_naming_the_field(client: TestClient) -> None:
    start = {"agent": "examples.support_triage.agents:triage_agent", "input": TICKET}
    for changed, error in (
        ({"budget": {"max_stepz": 3}}, "budget.max_stepz: Unexpected keyword argument"),
        ({"budget": {"max_steps": True}}, "budget: max_steps is a positive number or null, "
                                          "not true"),
        ({"input": None}, "input: text, messages or a graph's state, not null"),
        ({"priority": 1}, "priority: Extra inputs are not permitted"),
    ):
        refused = client.post("/api/executions", headers=AUTH, json={**start, **changed})
        assert (refused.status_code, refused.json()) == (422, {"error": error})
    unlimited = client.post("/api/executions", content=json.dumps(start)[:-1] + ', "budget": '
                            '{"max_seconds": 1e400}}',  # JSON that Python reads as inf
                            headers={**AUTH, "Content-Type": "application/json"})
    assert (unlimited.status_code, unlimited.json()) == (
        422, {"error": "budget.max_seconds: Input should be a finite number"})
    assert client.get("/api/executions").json() == []


def test_every_error_is_json_with_a_message(client: TestClient, runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    unreasoned = client.post(f"/api/executions/{waiting.execution_id}/reject", headers=AUTH,
                             json={"reviewer": "lee", "reason": None})  # an empty box
    assert (unreasoned.status_code, unreasoned.json()["error"]) == (422, "reason: a rejection "
                                                                    "needs a reason: the model "
                                                                    "hears it instead of the "
                                                                    "tool's result")
    garbled = client.post(f"/api/executions/{waiting.execution_id}/approve", content=b"{",
                          headers={**AUTH, "Content-Type": "application/json"})
    assert garbled.json() == {"error": "body: JSON decode error"}
    unknown = client.get("/api/nowhere")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Not Found"})
    wrong = client.delete("/api/executions")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})
    assert "GET" in wrong.headers["allow"]  # kept from Starlette's answer


def test_a_decision_made_here_carries_on_a_run_this_server_did_not_start(
    client: TestClient, runtime: AgentRuntime, database_url: str
) -> None:
    from examples.support_pipeline.cross_framework import TICKET as PIPELINE_TICKET
    from examples.support_pipeline.cross_framework import pipeline

    # Started by a process that is gone (or by this server before a restart): nobody watches.
    with AgentRuntime(database_url, require_approval=["add_internal_note"],
                      auto_resume=False) as gone:
        approved, rejected = (gone.run(triage_agent, TICKET).execution_id for _ in range(2))
        staged, cancelled = (gone.run(pipeline, PIPELINE_TICKET).execution_id
                             for _ in range(2))
    url = "/api/executions"
    client.post(f"{url}/{approved}/approve", json={"reviewer": "dana"}, headers=AUTH)
    client.post(f"{url}/{rejected}/reject", json={"reviewer": "dana", "reason": "Not now."},
                headers=AUTH)
    client.post(f"{url}/{staged}.2/reject", json={"reviewer": "dana", "reason": "No page."},
                headers=AUTH)  # a stage, decided from the inbox
    client.post(f"{url}/{cancelled}.2/cancel", headers=AUTH)  # a stage alone
    for execution_id in (approved, rejected, staged, cancelled):
        assert runtime.handle(execution_id).join(timeout=30).status.is_terminal
    assert "refunded $99.00" in str(runtime.result(approved).output)
    assert "Not now." in str(runtime.result(rejected).output)
    assert runtime.result(staged).status is Status.COMPLETED
    assert client.get("/api/approvals").json() == []  # nothing is left that nobody can decide
    assert client.get(f"{url}/{approved}").json()["stalled"] is None


def test_a_resolution_made_here_carries_on_the_run(
    client: TestClient, runtime: AgentRuntime, database_url: str
) -> None:
    execution_id = in_doubt_execution(database_url)
    client.post(f"/api/executions/{execution_id}/resolve", headers=AUTH,
                json={"reviewer": "dana", "action": "record", "result": "wired INV-8821"})
    done = runtime.handle(execution_id).join(timeout=30)
    assert (done.status, done.output) == (Status.COMPLETED, "Refund: wired INV-8821")


def test_a_run_this_server_cannot_resume_says_why_while_it_is_queued(
    client: TestClient, runtime: AgentRuntime, database_url: str
) -> None:
    from sqlalchemy import update

    from keel.runtime._store import EXECUTIONS

    with AgentRuntime(database_url, auto_resume=False) as gone:
        execution_id = gone.run(triage_agent, TICKET).execution_id
    with runtime.store.transaction() as conn:  # as if the server could not import its module
        conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(
            agent_ref="myapp.gone:triage_agent"))
    url = f"/api/executions/{execution_id}"
    approved = client.post(f"{url}/approve", json={"reviewer": "dana"}, headers=AUTH)
    assert approved.status_code == 200  # the decision stands
    detail = client.get(url).json()
    assert detail["status"] == "QUEUED"
    assert detail["stalled"].startswith("This server cannot resume it: The execution's agent "
                                        "was recorded as 'myapp.gone:triage_agent'")
    assert f"keel resume {execution_id} there" in detail["stalled"]


def test_runs_decided_elsewhere_while_it_serves_are_carried_on_here(
    client: TestClient, runtime: AgentRuntime, database_url: str
) -> None:
    # Started, then decided, by scripts (processes, for the server) that do not resume them.
    resolved = in_doubt_execution(database_url)
    with AgentRuntime(database_url, auto_resume=False) as script:
        approved = script.run(triage_agent, TICKET).execution_id
        script.handle(approved).approve(reviewer="dana")
        script.handle(resolved).resolve("record", result="wired INV-8821", reviewer="dana")
    assert "refunded $99.00" in str(runtime.handle(approved).join(timeout=30).output)
    assert runtime.handle(resolved).join(timeout=30).output == "Refund: wired INV-8821"
    assert REFUNDS == ["INV-8821"]  # recorded, not wired again


def test_a_run_decided_elsewhere_that_it_cannot_resume_says_why(
    client: TestClient, runtime: AgentRuntime, database_url: str
) -> None:
    import time

    from sqlalchemy import update

    from keel.runtime._store import EXECUTIONS

    with AgentRuntime(database_url, auto_resume=False) as script:
        execution_id = script.run(triage_agent, TICKET).execution_id
        with script.store.transaction() as conn:  # as if the server could not import it
            conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(
                agent_ref="myapp.gone:triage_agent"))
        script.handle(execution_id).approve(reviewer="dana")
    deadline = time.monotonic() + 10
    while (detail := client.get(f"/api/executions/{execution_id}").json())["stalled"] is None:
        assert time.monotonic() < deadline, "the server never looked at the decided run"
        time.sleep(0.05)
    assert detail["status"] == "QUEUED"
    assert detail["stalled"].startswith("This server cannot resume it: The execution's agent "
                                        "was recorded as 'myapp.gone:triage_agent'")


def test_reads_need_the_token_when_the_server_guards_them(runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_agent, TICKET).execution_id
    reads = ["/api/executions", f"/api/executions/{waiting}", f"/api/executions/{waiting}/events",
             f"/api/executions/{waiting}/export", f"/api/executions/{waiting}/stream",
             "/api/decisions", "/api/approvals"]
    with TestClient(create_app(runtime, token=TOKEN, guard_reads=True)) as guarded:
        for path in reads:
            refused = guarded.get(path)
            assert refused.status_code == 401 and "Bearer <token>" in refused.json()["error"]
            assert guarded.get(path, headers=AUTH).status_code == 200, path
        # The page and its assets load without it: the dashboard asks for the token.
        assert guarded.get("/").status_code == 200
        assert guarded.get("/static/app.js").status_code == 200
    with TestClient(create_app(runtime, token=TOKEN)) as local:  # loopback: reads are open
        assert all(local.get(path).status_code == 200 for path in reads)


def test_a_pause_that_asks_for_a_value_is_answered_over_the_api(
    client: TestClient, runtime: AgentRuntime
) -> None:
    from adk_workflows import DONE, reply_flow

    DONE.clear()
    waiting = runtime.run(reply_flow, "late order")
    (asked,) = client.get("/api/approvals").json()
    assert (asked["kind"], asked["tool_name"]) == ("interrupt", "request_input")
    url = f"/api/executions/{waiting.execution_id}/respond"
    refused = client.post(url, json={"reviewer": "dana", "value": None}, headers=AUTH)
    assert refused.status_code == 422 and "not null" in refused.json()["error"]
    assert client.post(url, json={"reviewer": "dana", "value": "ok"}).status_code == 401
    answered = client.post(url, json={"reviewer": "dana", "value": {"edited": "Ships today."}},
                           headers=AUTH)
    assert answered.json() == {"responded": [asked["call_id"]]}
    done = runtime.handle(waiting.execution_id).join(timeout=30)  # carried on by the server
    assert done.output == "sent after {'edited': 'Ships today.'}"
    (decision,) = runtime.store.approvals(waiting.execution_id)
    assert (decision.status, decision.reviewer) == ("approved", "dana")
