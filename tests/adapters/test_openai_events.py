"""Events the OpenAI adapter derives besides tools and handoffs: reasoning and guardrails."""

from __future__ import annotations

from typing import Any

from agents import Agent, GuardrailFunctionOutput, input_guardrail
from openai.types.responses import ResponseReasoningItem
from openai.types.responses.response_reasoning_item import Summary

from keel import AgentRuntime, Status
from scripted import ScriptedModel, say


def _thoughtful(agent: str, outputs: dict[str, str]) -> list[Any]:
    thought = ResponseReasoningItem(id="r1", type="reasoning",
                                    summary=[Summary(text="The user wants a status.",
                                                     type="summary_text")])
    return [thought, say("All systems go.")]


@input_guardrail
def no_secrets(context: Any, agent: Any, input: Any) -> GuardrailFunctionOutput:
    leaked = "password" in str(input)
    return GuardrailFunctionOutput(output_info={"leaked": leaked}, tripwire_triggered=leaked)


guarded = Agent(name="guarded", instructions="guarded: answer", model=ScriptedModel(_thoughtful),
                input_guardrails=[no_secrets])


def test_reasoning_becomes_thinking_and_a_passing_guardrail_is_recorded(database_url: str) -> None:
    with AgentRuntime(database_url) as runtime:
        result = runtime.run(guarded, "status please")
    assert result.status is Status.COMPLETED
    kinds = [(e.type, getattr(e, "content", None)) for e in result.events]
    assert ("thinking", "The user wants a status.") in kinds
    assert ("message", "All systems go.") in kinds
    [passed] = [e for e in result.events if e.type == "guardrail_pass"]
    assert passed.guardrail_name == "no_secrets"
    assert result.events[-1].type == "done"


def test_a_tripped_guardrail_fails_the_run_with_its_event(database_url: str) -> None:
    with AgentRuntime(database_url) as runtime:
        result = runtime.run(guarded, "my password is hunter2")
    assert result.status is Status.FAILED
    [failed] = [e for e in result.events if e.type == "guardrail_fail"]
    assert failed.guardrail_name == "no_secrets" and "True" in (failed.content or "")
    assert result.events[-1].type == "error"
    assert "InputGuardrailTripwireTriggered" in (result.error or "")
