"""ADK 2's Workflow (a graph of agent and function nodes) under keel: its agents' gated tools
wait and run once approved, its output is its last node's, and a node's RequestInput is a keel
pause that respond(), approve() and reject() answer, from any process (those of parallel nodes
in one pause). A move from one agent node to the next is a handoff."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.adk.agents import LlmAgent
from google.adk.events import RequestInput
from google.adk.workflow import JoinNode, Workflow

from adk_turns import TurnsLlm
from adk_workflows import DONE, refunds, reply_flow
from keel import AgentHandle, AgentRuntime, Status
from keel.testing import MockEvent, mock_run


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    DONE.clear()
    yield


def test_a_workflows_gated_tool_waits_and_its_last_node_answers(database_url: str) -> None:
    flow = refunds()
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(flow, "Refund INV-1")
        assert waiting.status is Status.WAITING
        assert [(p.tool_name, p.args) for p in waiting.pending_approvals] == [
            ("refund", {"invoice": "INV-1"})]
        assert DONE == []
    with AgentRuntime(database_url, auto_resume=False) as elsewhere:
        AgentHandle(waiting.execution_id, runtime=elsewhere).approve()
        done = elsewhere.resume(waiting.execution_id, flow)
    assert (done.status, done.output) == (Status.COMPLETED, "report: Refunded INV-1.")
    assert DONE == [("refund", "INV-1"), ("report", "Refunded INV-1.")]
    assert flow.graph is not None
    clerk = next(node for node in flow.graph.nodes if node.name == "clerk")
    assert clerk.model.asked == [0, 1]  # the journaled turn was not asked again
    assert (done.events[-1].type, done.events[-1].output) == ("done", "report: Refunded INV-1.")


@pytest.mark.parametrize(("decide", "given"), [
    (lambda handle: handle.respond("looks good"), "looks good"),
    (lambda handle: handle.respond({"edited": "It ships today."}), {"edited": "It ships today."}),
    (lambda handle: handle.approve(), {"confirmed": True}),
    (lambda handle: handle.reject("Too curt."), {"confirmed": False, "reason": "Too curt."}),
], ids=["respond", "respond-dict", "approve", "reject"])
def test_a_nodes_request_input_waits_and_gets_what_the_reviewer_gave(
    database_url: str, decide: Any, given: Any,
) -> None:
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(reply_flow, "late order")
        assert waiting.status is Status.WAITING
        (pending,) = waiting.pending_approvals
        assert (pending.tool_name, pending.agent, pending.call_id) == (
            "request_input", "review", "request_input:reply@1/review@1")
        assert pending.args == {"message": "Send this reply?", "payload": {
            "draft": "Dear customer, about your late order: it ships today."}}
        assert DONE == ["draft", "review"]
    with AgentRuntime(database_url, auto_resume=False) as elsewhere:
        decide(AgentHandle(waiting.execution_id, runtime=elsewhere))
        done = elsewhere.resume(waiting.execution_id, reply_flow)
    assert done.status is Status.COMPLETED
    assert done.output == f"sent after {given}"
    # The function nodes are code: they ran again, up to the request, which was answered.
    assert DONE == ["draft", "review", "draft", "review", ("send", given)]


def test_a_mock_run_drives_a_workflows_agent_on_its_script() -> None:
    result = mock_run(refunds(), "Refund INV-1", events=[
        MockEvent.tool_call("refund", {"invoice": "INV-9"}),
        MockEvent.approve(),
        MockEvent.tool_result("refund", {"refunded": "INV-9"}),
        MockEvent.done("Refunded INV-9."),
    ])
    assert (result.status, result.output) == (Status.COMPLETED, "report: Refunded INV-9.")
    assert DONE == [("report", "Refunded INV-9.")]  # the tool's result was supplied


def test_a_mock_run_decides_a_nodes_request_input_where_the_workflow_pauses() -> None:
    approved = mock_run(reply_flow, "late order", events=[MockEvent.approve()])
    assert (approved.status, approved.output) == (
        Status.COMPLETED, "sent after {'confirmed': True}")
    waiting = mock_run(reply_flow, "late order", events=[MockEvent.waiting()])
    assert [p.tool_name for p in waiting.pending_approvals] == ["request_input"]


def test_a_workflow_moving_from_one_agent_node_to_the_next_is_a_handoff(
    runtime: AgentRuntime,
) -> None:
    triage = LlmAgent(name="triage", instruction="Route.",
                      model=TurnsLlm(turns=["It is a billing question."], asked=[]))
    billing = LlmAgent(name="billing", instruction="Answer.",
                       model=TurnsLlm(turns=["Refunded."], asked=[]))
    done = runtime.run(Workflow(name="desk", edges=[("START", triage, billing)]), "Refund me")
    assert (done.status, done.output) == (Status.COMPLETED, "Refunded.")
    assert [(e.type, e.agent) for e in done.events if e.type != "thinking"] == [
        ("message", "triage"), ("handoff", "triage"), ("message", "billing"),
        ("done", "billing")]
    assert [e.target for e in done.events if e.type == "handoff"] == ["billing"]


def ask_legal(node_input: str) -> Iterator[RequestInput]:
    yield RequestInput(message="Legal: sign?")


def ask_finance(node_input: str) -> Iterator[RequestInput]:
    yield RequestInput(message="Finance: sign?")


def both(node_input: dict[str, Any]) -> str:
    return f"signed by {sorted(node_input.values())}"


def test_requests_of_parallel_nodes_are_asked_in_one_pause(runtime: AgentRuntime) -> None:
    join = JoinNode(name="join")
    signoff = Workflow(name="signoff", edges=[
        ("START", (ask_legal, ask_finance)), ((ask_legal, ask_finance), join), (join, both)])
    waiting = runtime.run(signoff, "the contract")
    assert sorted(p.args["message"] for p in waiting.pending_approvals) == [
        "Finance: sign?", "Legal: sign?"]
    handle = runtime.handle(waiting.execution_id)
    handle.respond("legal yes", call_id="request_input:signoff@1/ask_legal@1")
    handle.respond("finance yes", call_id="request_input:signoff@1/ask_finance@1")
    done = runtime.resume(waiting.execution_id, signoff)
    assert (done.status, done.output) == (
        Status.COMPLETED, "signed by ['finance yes', 'legal yes']")
