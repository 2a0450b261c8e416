"""mock_run on LangGraph graphs: the script answers for every chat model in the graph, and the
graph runs for real (handoffs, ToolNode tools, keel's gates)."""

from __future__ import annotations

import pytest
from examples.support_triage import backend
from examples.support_triage.graph import SupportChatModel, get_account, specialist, triage_graph

from keel import Status
from keel.testing import MockEvent, MockScriptError, expect, mock_run

REFUND = {"invoice_id": "INV-8821", "reason": "charged twice"}


@pytest.fixture(autouse=True)
def _clean_backend() -> None:
    backend.REFUNDS.clear()


def test_a_scripted_handoff_tools_and_approval_drive_the_real_graph() -> None:
    result = mock_run(triage_graph, "Refund INV-8821 please", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_call("process_refund", REFUND),
        MockEvent.approve(),
        MockEvent.done("Refunded $99."),
    ])
    (expect(result).completed().handoff_sequence(["billing_specialist"])
     .tool_call_order(["get_invoice", "process_refund"]).approved("process_refund"))
    assert result.output["messages"][-1]["content"] == "Refunded $99."
    invoice = next(c for c in result.tool_calls if c.name == "get_invoice")
    assert "INV-8821" in str(invoice.result)  # the real tool answered
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]


def test_a_gated_call_without_a_decision_waits() -> None:
    result = mock_run(triage_graph, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"), MockEvent.tool_call("process_refund", REFUND),
        MockEvent.waiting()])
    assert result.status is Status.WAITING
    assert [p.tool_name for p in result.pending_approvals] == ["process_refund"]
    assert backend.REFUNDS == []


def test_a_supplied_result_replaces_the_tool() -> None:
    result = mock_run(triage_graph, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("process_refund", REFUND),
        MockEvent.tool_result("process_refund", "refund service down"),
        MockEvent.approve(),
        MockEvent.done("Please try later."),
    ])
    expect(result).completed().used_tool("process_refund", args={"invoice_id": "INV-8821"})
    assert [c.result for c in result.tool_calls if c.name == "process_refund"] == [
        "refund service down"]
    assert backend.REFUNDS == []


def test_tools_and_handoffs_the_agent_lacks_name_what_it_has() -> None:
    with pytest.raises(MockScriptError, match=r"'support_triage' cannot hand off to 'sales'"):
        mock_run(triage_graph, "x", events=[MockEvent.handoff("sales"), MockEvent.done("x")])
    with pytest.raises(MockScriptError, match=r"'billing_specialist' has no tool 'reset_password'"
                       r".*'get_account', 'get_invoice', 'process_refund'"):
        mock_run(triage_graph, "x", events=[
            MockEvent.handoff("billing_specialist"), MockEvent.tool_call("reset_password"),
            MockEvent.done("x")])


def test_a_single_agent_graph_and_a_scripted_model_error() -> None:
    graph = specialist("accounts", SupportChatModel(), [get_account])
    done = mock_run(graph, "Is my plan active?", events=[
        MockEvent.tool_call("get_account", {"customer_id": "cust_123"}),
        MockEvent.done("Your pro plan is active.")])
    expect(done).completed().used_tool("get_account")
    failed = mock_run(graph, "x", events=[MockEvent.error("rate limited")])
    expect(failed).failed()
    assert "rate limited" in (failed.error or "")
