"""Providers that repeat call ids (or give none) still get one journal entry, one approval and
one idempotency key per call."""

from __future__ import annotations

from typing import Any

from agents import Agent, function_tool
from openai.types.responses import ResponseFunctionToolCall

import keel
from keel import AgentRuntime, Status
from scripted import ScriptedModel, say

KEYS: list[str] = []


@function_tool
def charge(amount: int) -> str:
    """Charge an amount."""
    call = keel.current_call()
    assert call is not None
    KEYS.append(call.idempotency_key)
    return f"charged {amount}"


def _same_id_every_turn(agent: str, outputs: dict[str, str]) -> list[Any]:
    charged = len(KEYS)
    if charged == 3:
        return [say("all charged")]
    call_id = ["call_0", "call_0", ""][charged]  # a repeated id, then none at all
    return [ResponseFunctionToolCall(id="fc", call_id=call_id, type="function_call",
                                     name="charge", arguments=f'{{"amount": {charged + 1}}}',
                                     status="completed")]


cashier = Agent(name="cashier", instructions="cashier: charge", tools=[charge],
                model=ScriptedModel(_same_id_every_turn))


def test_repeated_or_missing_call_ids_are_made_unique(database_url: str) -> None:
    KEYS.clear()
    asked = []
    with AgentRuntime(database_url, require_approval=["charge"], auto_resume=False) as runtime:
        result = runtime.run(cashier, "charge three times")
        while result.status is Status.WAITING:
            # Each charge is a new call: asked about, never riding on an earlier yes.
            [pending] = result.pending_approvals
            asked.append((pending.call_id, pending.args))
            runtime.handle(result.execution_id).approve()
            result = runtime.resume(result.execution_id)
    assert result.status is Status.COMPLETED, result.error
    assert [args for _, args in asked] == [{"amount": 1}, {"amount": 2}, {"amount": 3}]
    assert len({call_id for call_id, _ in asked}) == 3
    assert [c.result for c in result.tool_calls] == ["charged 1", "charged 2", "charged 3"]
    assert len(set(KEYS)) == 3
