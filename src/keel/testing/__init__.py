"""Testing kit: run the real agent on a scripted model, then check what happened.

    from keel.testing import MockEvent, expect, mock_run

    result = mock_run(triage_agent, "I was charged twice", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.done("A refund has been initiated."),
    ])
    expect(result).completed().handoff_to("billing_specialist").used_tool("get_invoice")

`mock_run` drives the framework's own code through keel's runtime (handoffs, tools, output
types, approval gates); only the model is scripted. `expect` and the `assert_*` functions work
on any AgentResult, from a mock run or a real one.
"""

from ._expect import (
    Expectation,
    assert_agent_ran,
    assert_approved,
    assert_completed,
    assert_event_sequence,
    assert_events_contain,
    assert_failed,
    assert_guardrail_failed,
    assert_guardrail_passed,
    assert_handoff_sequence,
    assert_handoff_to,
    assert_in_doubt,
    assert_max_turns,
    assert_no_errors,
    assert_output_contains,
    assert_output_equals,
    assert_output_matches,
    assert_output_type,
    assert_paused_for_approval,
    assert_rejected,
    assert_resumed,
    assert_status,
    assert_tool_call_order,
    assert_tool_called_with,
    assert_tool_not_used,
    assert_tool_used,
    assert_tools_used_exactly,
    expect,
)
from ._export import events_from, export_test
from ._mock import mock_run, mock_run_async
from ._script import MockEvent, MockScriptError

__all__ = [
    "Expectation",
    "MockEvent",
    "MockScriptError",
    "assert_agent_ran",
    "assert_approved",
    "assert_completed",
    "assert_event_sequence",
    "assert_events_contain",
    "assert_failed",
    "assert_guardrail_failed",
    "assert_guardrail_passed",
    "assert_handoff_sequence",
    "assert_handoff_to",
    "assert_in_doubt",
    "assert_max_turns",
    "assert_no_errors",
    "assert_output_contains",
    "assert_output_equals",
    "assert_output_matches",
    "assert_output_type",
    "assert_paused_for_approval",
    "assert_rejected",
    "assert_resumed",
    "assert_status",
    "assert_tool_call_order",
    "assert_tool_called_with",
    "assert_tool_not_used",
    "assert_tool_used",
    "assert_tools_used_exactly",
    "events_from",
    "expect",
    "export_test",
    "mock_run",
    "mock_run_async",
]
