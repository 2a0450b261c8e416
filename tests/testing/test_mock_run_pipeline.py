"""mock_run on a pipeline: one script whose turns the stages take in order, each stage's real
framework code running on it (the classifier on the OpenAI Agents SDK, the responder on
LangGraph, the escalation checker on ADK)."""

from __future__ import annotations

import pytest
from examples.support_pipeline.cross_framework import TICKET, Classification, pipeline

from keel import Status
from keel.testing import MockEvent, MockScriptError, expect, mock_run

CLASSIFIED = {"customer": "David Park, Acme Logistics", "priority": "P1",
              "category": "performance", "product_area": "batch API", "sentiment": "frustrated"}
NOTE = {"note": "P1 batch API latency for Acme Logistics"}


def script(*escalation: MockEvent) -> list[MockEvent]:
    return [
        MockEvent.done(CLASSIFIED),  # the classifier's structured output
        MockEvent.tool_call("check_service_status", {"region": "us-east"}),  # the real tool
        MockEvent.done("Hi David, us-east is degraded; we are on it."),
        MockEvent.tool_call("add_internal_note", NOTE), *escalation,
        MockEvent.done("Escalate: yes"),
    ]


def test_one_script_drives_every_stage_on_its_own_framework() -> None:
    result = mock_run(pipeline, TICKET, script())
    (expect(result).completed().handoff_sequence(["responder", "escalation_checker"])
     .tool_call_order(["check_service_status", "add_internal_note"]))
    assert result.output == "Escalate: yes"
    status = next(c for c in result.tool_calls if c.name == "check_service_status")
    assert "degraded" in str(status.result)  # the responder's real ToolNode ran the tool
    classified = next(e for e in result.events if e.agent == "classifier" and e.type == "message")
    assert Classification.model_validate_json(classified.content).priority == "P1"


def test_a_gated_stage_call_is_approved_or_left_waiting_by_the_script() -> None:
    approved = mock_run(pipeline, TICKET, script(MockEvent.approve()),
                        require_approval=["add_internal_note"])
    expect(approved).completed().approved("add_internal_note")
    waiting = mock_run(pipeline, TICKET, script(MockEvent.waiting())[:-1],
                       require_approval=["add_internal_note"])
    assert waiting.status is Status.WAITING
    assert [p.tool_name for p in waiting.pending_approvals] == ["add_internal_note"]


def test_a_turn_a_stage_cannot_take_names_the_stage() -> None:
    wrong = script()
    wrong[1] = MockEvent.tool_call("add_internal_note", NOTE)  # the responder has no such tool
    with pytest.raises(MockScriptError, match="agent 'responder' has no tool 'add_internal_note'"):
        mock_run(pipeline, TICKET, wrong)
