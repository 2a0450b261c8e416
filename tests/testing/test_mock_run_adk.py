"""mock_run on Google ADK agents: the script answers every model call of the agent tree, through
keel's plugin; ADK runs the transfers and the real tools."""

from __future__ import annotations

import pytest
from examples.support_triage import backend
from examples.support_triage.adk_agents import triage_agent

from keel import Status
from keel.testing import MockEvent, MockScriptError, expect, mock_run

REFUND = {"invoice_id": "INV-8821", "reason": "charged twice"}


@pytest.fixture(autouse=True)
def _clean_backend() -> None:
    backend.REFUNDS.clear()


def test_a_scripted_transfer_tools_and_approval_drive_the_real_agents() -> None:
    result = mock_run(triage_agent, "Refund INV-8821 please", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_call("process_refund", REFUND),
        MockEvent.approve(),
        MockEvent.done("Refunded $99."),
    ])
    (expect(result).completed().handoff_sequence(["billing_specialist"])
     .tool_call_order(["get_invoice", "process_refund"]).approved("process_refund")
     .output_equals("Refunded $99."))
    invoice = next(c for c in result.tool_calls if c.name == "get_invoice")
    assert invoice.result == backend.INVOICES["INV-8821"]  # the real tool answered
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]  # once, after approval


def test_a_gated_call_waits_and_a_supplied_result_replaces_a_tool() -> None:
    waiting = mock_run(triage_agent, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"), MockEvent.tool_call("process_refund", REFUND),
        MockEvent.waiting()])
    assert waiting.status is Status.WAITING and backend.REFUNDS == []
    supplied = mock_run(triage_agent, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_result("get_invoice", {"error": "billing system down"}),
        MockEvent.done("Please try later.")])
    assert [c.result for c in supplied.tool_calls] == [{"error": "billing system down"}]


def test_transfers_and_tools_the_agent_lacks_name_what_it_has() -> None:
    with pytest.raises(MockScriptError, match=r"'support_triage' cannot hand off to 'sales'"):
        mock_run(triage_agent, "x", events=[MockEvent.handoff("sales"), MockEvent.done("x")])
    with pytest.raises(MockScriptError, match=r"'billing_specialist' has no tool "
                       r"'check_service_status'"):
        mock_run(triage_agent, "x", events=[
            MockEvent.handoff("billing_specialist"), MockEvent.tool_call("check_service_status"),
            MockEvent.done("x")])
