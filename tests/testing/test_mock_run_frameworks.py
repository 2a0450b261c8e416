"""mock_run on each framework's support team: the same script drives the OpenAI SDK agents, the
LangGraph swarm graph and the Google ADK agents, and each framework runs for real (handoffs,
tools, keel's gates)."""

from __future__ import annotations

from typing import Any

import pytest
from examples.support_triage import backend

from keel import Status
from keel.testing import MockEvent, MockScriptError, expect, mock_run

REFUND = {"invoice_id": "INV-8821", "reason": "charged twice"}


@pytest.fixture(params=["openai", "langgraph", "adk"])
def team(request: pytest.FixtureRequest) -> Any:
    """The support team's entry agent, as each framework builds it."""
    backend.REFUNDS.clear()
    if request.param == "openai":
        from examples.support_triage.agents import triage_agent
        return triage_agent
    if request.param == "langgraph":
        from examples.support_triage.graph import triage_graph
        return triage_graph
    from examples.support_triage.adk_agents import triage_agent as adk_triage
    return adk_triage


def _answer(output: Any) -> str:
    """A graph's output is its state; the agents' is the answer itself."""
    return str(output["messages"][-1]["content"]) if isinstance(output, dict) else str(output)


def test_a_scripted_handoff_tools_and_approval_drive_the_real_team(team: Any) -> None:
    result = mock_run(team, "Refund INV-8821 please", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_call("process_refund", REFUND),
        MockEvent.approve(),
        MockEvent.done("Refunded $99."),
    ])
    (expect(result).completed().handoff_sequence(["billing_specialist"])
     .tool_call_order(["get_invoice", "process_refund"]).approved("process_refund"))
    assert _answer(result.output) == "Refunded $99."
    invoice = next(c for c in result.tool_calls if c.name == "get_invoice")
    assert "INV-8821" in str(invoice.result)  # the real tool answered
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]  # once, after approval


def test_a_gated_call_waits_and_a_supplied_result_replaces_a_tool(team: Any) -> None:
    waiting = mock_run(team, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"), MockEvent.tool_call("process_refund", REFUND),
        MockEvent.waiting()])
    assert waiting.status is Status.WAITING and backend.REFUNDS == []
    assert [p.tool_name for p in waiting.pending_approvals] == ["process_refund"]
    supplied = mock_run(team, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_result("get_invoice", {"error": "billing system down"}),
        MockEvent.done("Please try later.")])
    invoice = next(c for c in supplied.tool_calls if c.name == "get_invoice")
    assert "billing system down" in str(invoice.result)


def test_handoffs_and_tools_the_agent_lacks_name_what_it_has(team: Any) -> None:
    with pytest.raises(MockScriptError, match=r"'support_triage' cannot hand off to 'sales'.*"
                       r"'billing_specialist'"):
        mock_run(team, "x", events=[MockEvent.handoff("sales"), MockEvent.done("x")])
    with pytest.raises(MockScriptError, match=r"'billing_specialist' has no tool "
                       r"'check_service_status'.*'get_invoice'"):
        mock_run(team, "x", events=[
            MockEvent.handoff("billing_specialist"), MockEvent.tool_call("check_service_status"),
            MockEvent.done("x")])


def test_a_call_with_arguments_the_tool_does_not_take_is_a_script_error(team: Any) -> None:
    misnamed = [MockEvent.handoff("billing_specialist"),
                MockEvent.tool_call("get_invoice", {"invoice": "INV-8821"}), MockEvent.done("x")]
    with pytest.raises(MockScriptError, match=r"get_invoice .*the tool's arguments are "
                       r"'invoice_id': missing 'invoice_id'; unknown 'invoice'"):
        mock_run(team, "x", events=misnamed)
    assert mock_run(team, "x", events=misnamed, strict=False).status is Status.COMPLETED


def test_a_single_agent_graph_and_a_scripted_model_error() -> None:
    from examples.support_triage.graph import SupportChatModel, get_account, specialist

    graph = specialist("accounts", SupportChatModel(), [get_account])
    done = mock_run(graph, "Is my plan active?", events=[
        MockEvent.tool_call("get_account", {"customer_id": "cust_123"}),
        MockEvent.done("Your pro plan is active.")])
    expect(done).completed().used_tool("get_account").status("completed")
    # The output checks read the answer, not the whole state, which holds the question too.
    expect(done).output_contains("pro plan").output_matches(r"^Your pro plan is active\.$")
    with pytest.raises(AssertionError, match="to contain 'Is my plan'"):
        expect(done).output_contains("Is my plan")
    failed = mock_run(graph, "x", events=[MockEvent.error("rate limited")])
    expect(failed).failed()
    assert "rate limited" in (failed.error or "")


def test_a_scripted_decision_answers_the_graphs_own_interrupt() -> None:
    from examples.support_triage.graph import SupportChatModel, specialist
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.types import interrupt

    @tool
    def send_email(to: str) -> str:
        """Send an email, once a human confirmed it."""
        return f"{interrupt({'send to': to})['type']}: {to}"

    mailer = specialist("mailer", SupportChatModel(), [send_email])
    for decision, answer in ((MockEvent.approve(), "approve: bob"),
                             (MockEvent.reject("not now"), "reject: bob")):
        # After the call whose tool calls interrupt(), as after a gated call.
        result = mock_run(mailer, "Email Bob", events=[
            MockEvent.tool_call("send_email", {"to": "bob"}), decision, MockEvent.done("Done.")])
        expect(result).completed()
        assert answer in str(result.tool_calls[0].result)

    model = SupportChatModel()

    def review(state: MessagesState) -> dict[str, Any]:
        verdict = interrupt({"publish": state["messages"][-1].content})
        return {"messages": [AIMessage(content=f"review: {verdict['type']}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("draft", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node("review", review)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", END)
    # A node's interrupt() after the model's turn: decided where the run pauses.
    result = mock_run(graph.compile(name="editor"), "Draft a reply", events=[
        MockEvent.done("A draft."), MockEvent.approve()])
    expect(result).completed()
    assert _answer(result.output) == "review: approve"
