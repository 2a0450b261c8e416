"""expect() and the assert_* functions on a real mock run's result: each check passes on what
happened and fails, with the run's trace, on what did not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent

from keel import AgentResult, Status
from keel.testing import (
    Expectation,
    MockEvent,
    assert_handoff_to,
    assert_tool_called_with,
    assert_tool_used,
    expect,
    mock_run,
)


@pytest.fixture(scope="module")
def result() -> AgentResult:
    backend.REFUNDS.clear()
    ran = mock_run(triage_agent, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_call("process_refund", {"invoice_id": "INV-8821", "reason": "twice"}),
        MockEvent.approve(),
        MockEvent.done("Refund of $99 issued for INV-8821."),
    ])
    backend.REFUNDS.clear()
    return ran


Check = Callable[[Expectation], Any]

PASSING: dict[str, Check] = {
    "completed": lambda e: e.completed(),
    "status": lambda e: e.status(Status.COMPLETED).status("COMPLETED"),
    "no_errors": lambda e: e.no_errors(),
    "used_tool": lambda e: e.used_tool("get_invoice"),
    "used_tool with args": lambda e: e.used_tool("process_refund", args={"reason": "twice"}),
    "did_not_use_tool": lambda e: e.did_not_use_tool("escalate_to_human"),
    "tool_call_order": lambda e: e.tool_call_order(["get_invoice", "process_refund"]),
    "tools_used_exactly": lambda e: e.tools_used_exactly(["process_refund", "get_invoice"]),
    "output_contains": lambda e: e.output_contains("refund", case_sensitive=False),
    "output_matches": lambda e: e.output_matches(r"\$\d+"),
    "output_type": lambda e: e.output_type(str),
    "output_equals": lambda e: e.output_equals("Refund of $99 issued for INV-8821."),
    "events_contain": lambda e: e.events_contain("tool_call", tool_name="get_invoice"),
    "events_contain not": lambda e: e.events_contain("rejected", expected=False),
    "event_sequence": lambda e: e.event_sequence(["handoff", "waiting", "approved", "done"]),
    "handoff_to": lambda e: e.handoff_to("billing_specialist"),
    "handoff_sequence": lambda e: e.handoff_sequence(["billing_specialist"]),
    "agent_ran": lambda e: e.agent_ran("support_triage").agent_ran("billing_specialist"),
    "max_turns": lambda e: e.max_turns(3),
    "paused_for_approval": lambda e: e.paused_for_approval("process_refund"),
    "approved": lambda e: e.approved("process_refund"),
    "resumed": lambda e: e.resumed(),
}

FAILING: dict[str, tuple[Check, str]] = {
    "failed": (lambda e: e.failed(), "Expected status FAILED, got COMPLETED"),
    "in_doubt": (lambda e: e.in_doubt(), "Expected status IN_DOUBT"),
    "used_tool": (lambda e: e.used_tool("reset_password"), "Expected a call to 'reset_password'"),
    "used_tool with args": (lambda e: e.used_tool("get_invoice", args={"invoice_id": "X"}),
                            "with arguments including {'invoice_id': 'X'}"),
    "did_not_use_tool": (lambda e: e.did_not_use_tool("get_invoice"), "Expected no call"),
    "tool_call_order": (lambda e: e.tool_call_order(["process_refund", "get_invoice"]),
                        "Expected calls in the order"),
    "tools_used_exactly": (lambda e: e.tools_used_exactly(["get_invoice"]),
                           "Expected exactly the tools"),
    "output_contains": (lambda e: e.output_contains("REFUND"), "to contain 'REFUND'"),
    "output_matches": (lambda e: e.output_matches(r"^\d+$"), "to match"),
    "output_type": (lambda e: e.output_type(dict), "Expected output of type dict"),
    "output_equals": (lambda e: e.output_equals("no"), "Expected the output 'no'"),
    "events_contain": (lambda e: e.events_contain("tool_call", tool_name="reset_password"),
                       "Expected an tool_call event"),
    "event_sequence": (lambda e: e.event_sequence(["done", "handoff"]), "Expected events"),
    "handoff_to": (lambda e: e.handoff_to("technical_specialist"), "Expected a handoff"),
    "handoff_sequence": (lambda e: e.handoff_sequence([]), "Expected the handoffs []"),
    "agent_ran": (lambda e: e.agent_ran("account_specialist"), "to run"),
    "guardrail_passed": (lambda e: e.guardrail_passed("pii"), "guardrail_pass event"),
    "guardrail_failed": (lambda e: e.guardrail_failed("pii"), "guardrail_fail event"),
    "max_turns": (lambda e: e.max_turns(2), "at most 2 turns"),
    "rejected": (lambda e: e.rejected("process_refund"), "rejected event"),
}


@pytest.mark.parametrize("name", PASSING)
def test_checks_pass_on_what_happened(result: AgentResult, name: str) -> None:
    expectation = expect(result)
    assert PASSING[name](expectation) is expectation  # chainable


@pytest.mark.parametrize("name", FAILING)
def test_checks_fail_with_the_runs_trace(result: AgentResult, name: str) -> None:
    check, message = FAILING[name]
    with pytest.raises(AssertionError) as failure:
        check(expect(result))
    text = str(failure.value)
    assert message in text
    # The trace: every event, with its agent, tool and arguments.
    assert f"Execution {result.execution_id}: COMPLETED" in text
    assert "billing_specialist    tool_call get_invoice {'invoice_id': 'INV-8821'}" in text
    assert "support_triage        handoff -> billing_specialist" in text


def test_plain_assert_functions(result: AgentResult) -> None:
    assert_tool_used(result, "process_refund")
    assert_tool_called_with(result, "get_invoice", args={"invoice_id": "INV-8821"})
    assert_handoff_to(result, "billing_specialist")
    with pytest.raises(AssertionError, match="Expected a handoff to 'account_specialist'"):
        assert_handoff_to(result, "account_specialist")
