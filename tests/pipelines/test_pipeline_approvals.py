"""Approvals inside a pipeline's stages: the pipeline waits with the stage, shows its pending
calls, and a decision on the pipeline (or on the stage) lets it go on."""

from __future__ import annotations

from typing import Any

import pytest
from examples.support_pipeline.cross_framework import TICKET
from examples.support_pipeline.cross_framework import pipeline as support_pipeline
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt
from pipeline_agents import adk_tool_agent

import keel
from keel import AgentHandle, AgentRuntime, ExecutionNotFoundError, KeelError, Status

GATE = ["add_internal_note", "note_*"]


def note_a(text: str) -> dict[str, Any]:
    """File note A."""
    return {"noted": f"A: {text}"}


def note_b(text: str) -> dict[str, Any]:
    """File note B."""
    return {"noted": f"B: {text}"}


def test_a_waiting_stage_makes_the_pipeline_wait_until_it_is_approved(
    database_url: str
) -> None:
    with AgentRuntime(database_url, require_approval=GATE, auto_resume=False) as runtime:
        waiting = runtime.run(support_pipeline, TICKET)
        pid = waiting.execution_id
        assert waiting.status is Status.WAITING
        (pending,) = waiting.pending_approvals
        assert (pending.tool_name, pending.agent, pending.rule) == (
            "add_internal_note", "escalation_checker", "require_approval 'add_internal_note'")
        assert runtime.result(pid).pending_approvals == [pending]  # the same from the store
        assert runtime.store.execution(f"{pid}.2").status == Status.WAITING.value

        assert AgentHandle(pid, runtime=runtime).approve(reviewer="dana") == [pending.call_id]
        assert runtime.store.execution(pid).status == Status.QUEUED.value
        assert runtime.result(pid).pending_approvals == []
        done = runtime.resume(pid)
        assert done.status is Status.COMPLETED, done.error
        assert done.output.startswith("Escalate: yes")
        note = [c for c in done.tool_calls if c.name == "add_internal_note"]
        assert [(c.status, c.result["status"]) for c in note] == [("done", "noted")]
        types = [e.type for e in done.events]
        assert types.count("waiting") == types.count("approved") == 1
        # The classifier and the responder did not run again.
        assert [e.type for e in runtime.store.events(f"{pid}.0")].count("resumed") == 0


def test_a_rejection_on_the_pipeline_reaches_the_stages_model(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=GATE, auto_resume=False) as runtime:
        pid = runtime.run(support_pipeline, TICKET).execution_id
        AgentHandle(pid, runtime=runtime).reject("No notes during the incident", reviewer="lee")
        done = runtime.resume(pid)
    assert done.status is Status.COMPLETED, done.error
    (note,) = [c for c in done.tool_calls if c.name == "add_internal_note"]
    assert note.status == "rejected"
    assert "No notes during the incident" in str(note.result)


def test_deciding_the_stage_itself_wakes_the_pipeline(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=GATE) as runtime:  # resumes decided runs
        pid = runtime.run(support_pipeline, TICKET).execution_id
        AgentHandle(f"{pid}.2", runtime=runtime).approve()
        finished = AgentHandle(pid, runtime=runtime).join(timeout=30)
    assert finished.status is Status.COMPLETED, finished.error
    assert [e.type for e in finished.events].count("approved") == 1


def test_parallel_branches_wait_together_and_go_on_once_both_are_decided(
    database_url: str
) -> None:
    fan = keel.parallel(adk_tool_agent("a", note_a), adk_tool_agent("b", note_b))
    with AgentRuntime(database_url, require_approval=GATE, auto_resume=False) as runtime:
        waiting = runtime.run(fan, "ticket 7")
        pid = waiting.execution_id
        assert waiting.status is Status.WAITING
        assert sorted(p.call_id for p in waiting.pending_approvals) == ["call_a", "call_b"]

        handle = AgentHandle(pid, runtime=runtime)
        assert handle.approve("call_a") == ["call_a"]
        assert handle.status() is Status.WAITING  # b still waits
        assert [p.call_id for p in handle.result().pending_approvals] == ["call_b"]
        handle.reject("not this one", call_id="call_b")
        assert handle.status() is Status.QUEUED
        done = runtime.resume(pid)
    assert done.status is Status.COMPLETED, done.error
    assert done.output["a"] == "a: {'noted': 'A: ticket 7'}"
    assert "not this one" in done.output["b"]


def asking_graph() -> Any:
    """A graph that asks a human for the priority with LangGraph's own interrupt()."""

    def ask(state: MessagesState) -> dict[str, Any]:
        priority = interrupt({"question": f"Priority of {state['messages'][-1].content}?"})
        return {"messages": [AIMessage(content=f"filed as {priority}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    return graph.compile(name="asker")


def test_a_stages_own_pause_is_answered_on_the_pipeline(database_url: str) -> None:
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(keel.agent(adk_tool_agent("a", note_a)) >> asking_graph(), "t-9")
        (pending,) = waiting.pending_approvals
        assert (pending.tool_name, pending.agent) == ("interrupt", None)
        assert "Priority of a: {'noted': 'A: t-9'}?" in pending.args["question"]
        AgentHandle(waiting.execution_id, runtime=runtime).respond("P2")
        done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED, done.error
    assert done.output["messages"][-1]["content"] == "filed as P2"


def test_a_pipelines_stages_are_kept_while_it_waits_and_deleted_with_it(
    database_url: str
) -> None:
    from keel.runtime._audit import prune

    with AgentRuntime(database_url, require_approval=GATE, auto_resume=False) as runtime:
        pid = runtime.run(support_pipeline, TICKET).execution_id
        finished = [f"{pid}.0", f"{pid}.1"]
        assert [runtime.store.execution(s).status for s in finished] == ["COMPLETED"] * 2
        # The finished stages of a waiting pipeline are what it resumes from: kept.
        assert prune(runtime.store, older_than=0) == []
        with pytest.raises(KeelError, match=rf"stage of the pipeline '{pid}'"):
            runtime.delete(finished[0])
        AgentHandle(pid, runtime=runtime).approve(reviewer="dana")
        done = runtime.resume(pid)
        assert done.status is Status.COMPLETED
        assert prune(runtime.store, older_than=0) == [pid]
        assert runtime.store.executions() == []  # its stages went with it
        with pytest.raises(ExecutionNotFoundError):
            runtime.store.execution(f"{pid}.2")


def test_a_resume_with_a_changed_pipeline_is_refused_and_leaves_the_run_as_it_was(
    database_url: str
) -> None:
    """A stage of another framework under the same name was not noticed, and the resume
    failed the waiting run for good."""
    from examples.support_pipeline import adk_agents
    from examples.support_pipeline.cross_framework import escalation_checker, responder

    adk_classifier = adk_agents.pipeline.sub_agents[0]
    assert adk_classifier.name == "classifier"
    changed = keel.agent(adk_classifier) >> responder >> escalation_checker
    with AgentRuntime(database_url, require_approval=GATE, auto_resume=False) as runtime:
        waiting = runtime.run(support_pipeline, TICKET)
        pid = waiting.execution_id
        AgentHandle(pid, runtime=runtime).approve()
        with pytest.raises(keel.ReplayMismatchError, match=r"ran 'classifier' \(openai\)"):
            runtime.resume(pid, agent=changed)
        assert runtime.store.execution(pid).status == Status.QUEUED.value  # as it was
        done = runtime.resume(pid, agent=support_pipeline)
    assert done.status is Status.COMPLETED, done.error
    assert done.output.startswith("Escalate: yes")
