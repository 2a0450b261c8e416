"""mock_run drives the real agent through keel's runtime; only the model is scripted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    function_tool,
    input_guardrail,
)
from examples.support_triage import backend
from examples.support_triage.agents import billing_agent, triage_agent
from pydantic import BaseModel

from keel import Status
from keel.testing import MockEvent, MockScriptError, expect, mock_run, mock_run_async

REFUND_ARGS = {"invoice_id": "INV-8821", "reason": "charged twice"}
LOOKUPS: list[str] = []


@pytest.fixture(autouse=True)
def _clean_backend() -> None:
    backend.REFUNDS.clear()
    LOOKUPS.clear()


def test_the_reference_snippet_works_with_keels_import() -> None:
    result = mock_run(
        triage_agent,
        "I was charged twice last month",
        events=[
            MockEvent.handoff("billing_specialist"),
            MockEvent.done("I've looked into your account. A refund has been initiated."),
        ]
    )
    expect(result).completed()
    assert result.output == "I've looked into your account. A refund has been initiated."
    assert [(e.type, e.agent) for e in result.events] == [
        ("handoff", "support_triage"), ("message", "billing_specialist"),
        ("done", "billing_specialist")]


def test_tools_run_for_real_and_a_scripted_approval_resumes_the_run() -> None:
    result = mock_run(triage_agent, "Refund INV-8821 please", events=[
        MockEvent.thinking("A billing question."),
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
        MockEvent.tool_call("process_refund", REFUND_ARGS),
        MockEvent.approve(),
        MockEvent.done("Refunded $99."),
    ])
    (expect(result).completed().no_errors().handoff_sequence(["billing_specialist"])
     .tool_call_order(["get_invoice", "process_refund"]).paused_for_approval("process_refund")
     .approved("process_refund").resumed().output_equals("Refunded $99."))
    invoice = next(c for c in result.tool_calls if c.name == "get_invoice")
    assert invoice.result == backend.INVOICES["INV-8821"]  # the real tool answered
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]  # and the refund ran once


def test_a_gated_call_without_a_decision_leaves_the_run_waiting() -> None:
    result = mock_run(triage_agent, "Refund INV-8821", events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("process_refund", REFUND_ARGS),
        MockEvent.waiting(),
    ])
    assert result.status is Status.WAITING
    assert [(p.tool_name, p.args) for p in result.pending_approvals] == [
        ("process_refund", REFUND_ARGS)]
    assert backend.REFUNDS == []


def test_events_after_an_unanswered_gate_name_the_fix() -> None:
    with pytest.raises(MockScriptError, match=r"(?s)MockEvent.done\('Refunded.'\).*"
                       r"MockEvent.approve\(\) or MockEvent.reject\(reason\)"):
        mock_run(triage_agent, "Refund INV-8821", events=[
            MockEvent.handoff("billing_specialist"),
            MockEvent.tool_call("process_refund", REFUND_ARGS),
            MockEvent.done("Refunded."),
        ])


def test_a_rejection_reaches_the_model_and_the_tool_never_runs() -> None:
    result = mock_run(billing_agent, "Refund INV-8821", events=[
        MockEvent.tool_call("process_refund", REFUND_ARGS),
        MockEvent.reject("Refunds over $50 need a manager."),
        MockEvent.done("A manager will look at your refund."),
    ])
    expect(result).completed().rejected("process_refund").used_tool("process_refund")
    call = result.tool_calls[0]
    assert call.status == "rejected" and "Refunds over $50 need a manager." in call.result
    assert backend.REFUNDS == []


def test_a_decision_on_a_call_that_never_waits_fails_the_script() -> None:
    """The wiring mistake a rejection in the script hides: the tool is not gated, so it ran
    (the mock run once completed, and the test passed)."""
    with pytest.raises(MockScriptError, match=r"(?s)never waited.*"
                       r"MockEvent.reject\(not today\) after the call to lookup_order"):
        mock_run(orders_agent, "Where is A-1?", events=[
            MockEvent.tool_call("lookup_order", {"order_id": "A-1"}),
            MockEvent.reject("not today"),
            MockEvent.done("I cannot look it up."),
        ])
    assert LOOKUPS == ["A-1"]  # it did run
    result = mock_run(orders_agent, "Where is A-1?", strict=False, events=[
        MockEvent.tool_call("lookup_order", {"order_id": "A-1"}),
        MockEvent.reject("not today"),
        MockEvent.done("Shipped."),
    ])
    assert result.status is Status.COMPLETED


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    LOOKUPS.append(order_id)
    return f"{order_id}: shipped"


orders_agent = Agent(name="orders", instructions="Answer order questions.", tools=[lookup_order])


def test_a_supplied_tool_result_replaces_the_tool() -> None:
    result = mock_run(orders_agent, "Where is A-1?", events=[
        MockEvent.tool_call("lookup_order", {"order_id": "A-1"}),
        MockEvent.tool_result("lookup_order", "A-1: lost in transit"),
        MockEvent.message("Your order was lost in transit."),
    ])
    expect(result).completed().used_tool("lookup_order", args={"order_id": "A-1"})
    assert result.tool_calls[0].result == "A-1: lost in transit"
    assert LOOKUPS == []  # the real tool did not run


def test_unknown_tools_and_handoff_targets_name_what_the_agent_has() -> None:
    with pytest.raises(MockScriptError, match=r"no tool 'refund'.*'lookup_order'.*strict=False"):
        mock_run(orders_agent, "x", events=[MockEvent.tool_call("refund"), MockEvent.done("x")])
    with pytest.raises(MockScriptError, match=r"cannot hand off to 'sales'.*'billing_specialist',"
                       r" 'technical_specialist', 'account_specialist'.*strict=False"):
        mock_run(triage_agent, "x", events=[MockEvent.handoff("sales"), MockEvent.done("x")])


def test_events_the_run_never_reaches_fail_unless_not_strict() -> None:
    events = [MockEvent.done("Shipped."), MockEvent.tool_call("lookup_order")]
    with pytest.raises(MockScriptError, match=r"(?s)finished before it reached.*"
                       r"MockEvent.tool_call\(lookup_order \{\}\).*strict=False"):
        mock_run(orders_agent, "x", events=events)
    assert mock_run(orders_agent, "x", events=events, strict=False).output == "Shipped."


def test_not_strict_lets_the_framework_refuse_an_unknown_tool() -> None:
    result = mock_run(orders_agent, "x", strict=False, events=[
        MockEvent.tool_call("refund"), MockEvent.done("x")])
    expect(result).failed()
    assert "refund" in (result.error or "")


@function_tool
def search(query: str, limit: int = 10, tag: str | None = None) -> str:
    """Search the knowledge base."""
    return f"{query} (first {limit}, tag {tag})"


def test_arguments_with_a_default_or_that_may_be_null_may_be_left_out() -> None:
    # The SDK's strict schema lists every argument as required; the tool does not need these.
    searcher = Agent(name="searcher", instructions="Search.", tools=[search])
    result = mock_run(searcher, "x", events=[
        MockEvent.tool_call("search", {"query": "refunds"}), MockEvent.done("found")])
    assert result.tool_calls[0].result == "refunds (first 10, tag None)"
    with pytest.raises(MockScriptError, match="arguments are 'query', 'limit', 'tag': missing "
                                              "'query'; unknown 'text'"):
        mock_run(searcher, "x", events=[
            MockEvent.tool_call("search", {"text": "refunds"}), MockEvent.done("found")])


def test_a_script_that_ends_too_early_says_how_to_finish_it() -> None:
    with pytest.raises(MockScriptError, match=r"after the script ended.*MockEvent.done"):
        mock_run(orders_agent, "x", events=[MockEvent.tool_call("lookup_order", {"order_id": "A"})])


class Verdict(BaseModel):
    category: str
    confidence: float


classifier = Agent(name="classifier", instructions="Classify.", output_type=Verdict)


def test_done_is_checked_against_the_output_type() -> None:
    result = mock_run(classifier, "I was charged twice", events=[
        MockEvent.done({"category": "billing", "confidence": 0.97})])
    expect(result).completed().output_type(Verdict)
    assert result.output == Verdict(category="billing", confidence=0.97)
    with pytest.raises(MockScriptError, match=r"does not fit the output type of 'classifier'"):
        mock_run(classifier, "x", events=[MockEvent.done({"category": "billing"})])


def test_a_scripted_model_error_fails_the_run() -> None:
    result = mock_run(orders_agent, "x", events=[MockEvent.error("rate limited")])
    expect(result).failed()
    assert "rate limited" in (result.error or "")
    with pytest.raises(AssertionError, match="Expected no errors"):
        expect(result).no_errors()


@input_guardrail
def no_secrets(ctx: RunContextWrapper[Any], agent: Agent[Any],
               text: Any) -> GuardrailFunctionOutput:
    raise AssertionError("a scripted guardrail outcome must replace the guardrail")


guarded_agent = orders_agent.clone(name="guarded", input_guardrails=[no_secrets])


def test_guardrail_outcomes_come_from_the_script() -> None:
    passed = mock_run(guarded_agent, "x", events=[
        MockEvent.guardrail_pass("no_secrets"), MockEvent.done("fine")])
    expect(passed).completed().guardrail_passed("no_secrets")
    tripped = mock_run(guarded_agent, "my password is hunter2", events=[
        MockEvent.guardrail_fail("no_secrets", "a password"), MockEvent.done("never")],
        strict=False)
    expect(tripped).failed().guardrail_failed("no_secrets")


def test_a_mock_run_leaves_nothing_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    mock_run(orders_agent, "x", events=[MockEvent.done("ok")])
    assert list(tmp_path.iterdir()) == []


async def test_mock_run_async_in_an_async_test() -> None:
    result = await mock_run_async(orders_agent, "x", events=[MockEvent.done("ok")])
    expect(result).completed().output_equals("ok")
    with pytest.raises(Exception, match=r"mock_run_async"):
        mock_run(orders_agent, "x", events=[MockEvent.done("ok")])


def test_a_gated_handoff_waits_for_the_scripted_decision() -> None:
    gates = {"require_approval": ["transfer_to_*"]}
    approved = mock_run(triage_agent, "Refund please", **gates, events=[
        MockEvent.handoff("billing_specialist"),
        MockEvent.approve(),
        MockEvent.done("Billing here."),
    ])
    (expect(approved).completed().approved("transfer_to_billing_specialist")
     .handoff_sequence(["billing_specialist"]).agent_ran("billing_specialist"))
    waiting = mock_run(triage_agent, "Refund please", **gates, events=[
        MockEvent.handoff("billing_specialist"), MockEvent.waiting()])
    assert waiting.status is Status.WAITING
    assert [p.tool_name for p in waiting.pending_approvals] == ["transfer_to_billing_specialist"]


@function_tool
def whoami(ctx: RunContextWrapper[dict[str, str]]) -> str:
    """Say who is asking."""
    return ctx.context["user"]


def test_run_options_pass_through_to_the_sdk() -> None:
    agent = Agent(name="me", instructions="Answer.", tools=[whoami])
    result = mock_run(agent, "who am I?", context={"user": "dana"}, events=[
        MockEvent.tool_call("whoami"), MockEvent.message("You are dana.")])
    assert result.tool_calls[0].result == "dana"
    looping = mock_run(agent, "x", max_turns=1, events=[
        MockEvent.tool_call("whoami"), MockEvent.done("never")], strict=False)
    expect(looping).failed()
    assert "max turns" in (looping.error or "").lower()
