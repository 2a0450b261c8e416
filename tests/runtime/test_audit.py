"""Audit and operations: an execution's whole record, who decided what, retention, the kill
switch for all of an agent's runs."""

from __future__ import annotations

import json
import time

from examples.support_triage import backend
from examples.support_triage.agents import triage_agent
from examples.support_triage.graph import triage_graph
from sqlalchemy import text

from keel import AgentRuntime, Status
from keel.runtime._audit import decisions, export_records, prune

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


def test_an_export_holds_the_execution_its_events_decisions_and_journal(
        runtime: AgentRuntime) -> None:
    backend.REFUNDS.clear()
    waiting = runtime.run(triage_agent, TICKET)
    runtime.handle(waiting.execution_id).approve(reviewer="dana", reason="duplicate charge")
    done = runtime.resume(waiting.execution_id)
    records = list(export_records(runtime.store, done.execution_id))
    json.dumps(records)  # all of it is JSON data
    kinds = [r["record"] for r in records]
    assert kinds[0] == "execution" and records[0]["status"] == "COMPLETED"
    assert records[0]["input"] == TICKET
    assert kinds.count("event") == len(done.events)
    [approval] = [r for r in records if r["record"] == "approval"]
    assert (approval["tool_name"], approval["reviewer"], approval["status"]) == (
        "process_refund", "dana", "approved")
    assert approval["args"] == {"invoice_id": "INV-8821", "reason": "Duplicate charge"}
    steps = [r for r in records if r["record"] == "step"]
    assert {s["name"] for s in steps if s["kind"] == "tool"} == {"get_invoice",
                                                                 "process_refund"}


def test_decisions_say_who_decided_what_and_when(runtime: AgentRuntime) -> None:
    first = runtime.run(triage_agent, TICKET)
    second = runtime.run(triage_agent, TICKET)
    before = time.time()
    runtime.handle(first.execution_id).approve(reviewer="dana")
    runtime.handle(second.execution_id).reject("needs a manager", reviewer="ben")
    everyone = decisions(runtime.store)
    assert [(d["reviewer"], d["status"]) for d in everyone] == [("ben", "rejected"),
                                                                ("dana", "approved")]
    assert everyone[0]["reason"] == "needs a manager" and everyone[0]["decided_at"] >= before
    assert everyone[0]["agent_name"] == "support_triage"
    assert [d["execution_id"] for d in decisions(runtime.store, reviewer="dana")] == [
        first.execution_id]
    assert decisions(runtime.store, since=time.time() + 60) == []


def test_prune_deletes_finished_executions_and_their_checkpoints_only(
        runtime: AgentRuntime) -> None:
    finished = runtime.run(triage_agent, "How do I reset my password?")
    graph_run = runtime.run(triage_graph, "How do I reset my password?")
    waiting = runtime.run(triage_agent, TICKET)
    assert (finished.status, graph_run.status) == (Status.COMPLETED, Status.COMPLETED)
    assert prune(runtime.store, older_than=3600) == []  # nothing is that old
    assert set(prune(runtime.store, older_than=0, dry_run=True)) == {
        finished.execution_id, graph_run.execution_id}
    assert len(runtime.store.executions()) == 3  # a dry run deletes nothing
    assert set(prune(runtime.store, older_than=0)) == {finished.execution_id,
                                                        graph_run.execution_id}
    assert [r.id for r in runtime.store.executions()] == [waiting.execution_id]
    with runtime.store.reading() as conn:
        left = conn.execute(text("SELECT count(*) FROM keel_lg_checkpoints")).scalar()
    assert left == 0


def test_the_kill_switch_cancels_every_unfinished_run_of_an_agent(runtime: AgentRuntime) -> None:
    waiting = [runtime.run(triage_agent, TICKET) for _ in range(2)]
    done = runtime.run(triage_agent, "How do I reset my password?")
    other = runtime.run(triage_agent.clone(name="vip_triage"), TICKET)  # left alone
    cancelled = runtime.cancel_agent("support_triage", reason="refund loop")
    assert cancelled == {w.execution_id: Status.CANCELLED for w in waiting}
    assert runtime.handle(done.execution_id).status() is Status.COMPLETED
    assert runtime.handle(other.execution_id).status() is Status.WAITING
    assert runtime.result(waiting[0].execution_id).events[-1].reason == "refund loop"
