"""Providers that repeat call ids (or give none) still get one journal entry, one approval and
one idempotency key per call."""

from __future__ import annotations

from typing import Any

from agents import Agent, function_tool
from openai.types.responses import ResponseFunctionToolCall

import keel
from keel import AgentResult, AgentRuntime, Status
from keel.runtime._result import PendingApproval
from scripted import ScriptedModel, call, say

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


def _approving_each(runtime: AgentRuntime, agent: Any,
                    prompt: str) -> tuple[AgentResult, list[PendingApproval]]:
    """Run `agent`, approving each call it waits for (one at a time), and resuming."""
    asked = []
    result = runtime.run(agent, prompt)
    while result.status is Status.WAITING:
        [pending] = result.pending_approvals
        asked.append(pending)
        runtime.handle(result.execution_id).approve()
        result = runtime.resume(result.execution_id)
    return result, asked


def test_repeated_or_missing_call_ids_are_made_unique(database_url: str) -> None:
    KEYS.clear()
    with AgentRuntime(database_url, require_approval=["charge"], auto_resume=False) as runtime:
        # Each charge is a new call: asked about, never riding on an earlier yes.
        result, asked = _approving_each(runtime, cashier, "charge three times")
    assert result.status is Status.COMPLETED, result.error
    assert [p.args for p in asked] == [{"amount": 1}, {"amount": 2}, {"amount": 3}]
    assert len({p.call_id for p in asked}) == 3
    assert [c.result for c in result.tool_calls] == ["charged 1", "charged 2", "charged 3"]
    assert len(set(KEYS)) == 3


REFUNDED: list[str] = []


@keel.tool(approval_required=True)
def refund(invoice: str) -> str:
    """Refund an invoice."""
    REFUNDED.append(invoice)
    return f"refunded {invoice}"


@keel.tool(approval_required=True)
def notify(text: str) -> str:
    """Tell the customer."""
    return "notified"


def _numbered_per_response(agent: str, outputs: dict[str, str]) -> list[Any]:
    """Every response numbers its calls from call_0; each billing agent refunds as call_1."""
    if agent.startswith("INV-"):
        return [say(outputs["refund"])] if "refund" in outputs else [
            call("refund", "call_1", invoice=agent)]
    if "first_billing" not in outputs:
        return [call("first_billing", "call_0", input="refund")]
    if "notify" not in outputs:
        return [call("notify", "call_0", text="first refund done")]
    if "second_billing" not in outputs:
        return [call("second_billing", "call_0", input="refund")]
    return [say(f"{outputs['first_billing']}, {outputs['second_billing']}")]


_billing = Agent(name="billing", instructions="INV-1: refund",
                 tools=[refund], model=ScriptedModel(_numbered_per_response))
boss = Agent(name="boss", instructions="boss: delegate", model=_billing.model, tools=[
    notify,
    _billing.as_tool(tool_name="first_billing", tool_description="Billing."),
    _billing.clone(instructions="INV-2: refund").as_tool(
        tool_name="second_billing", tool_description="Billing."),
])


def test_a_repeated_id_is_renamed_after_a_resume_that_skips_its_first_use(
        database_url: str) -> None:
    # After the resume for `notify`, the first agent tool's result comes from the journal and
    # its nested run does not run again: its call_1 is known only from the journal, and the
    # second nested run's call_1 must not be answered with the first one's refund.
    REFUNDED.clear()
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        result, asked = _approving_each(runtime, boss, "refund both")
    assert result.status is Status.COMPLETED, result.error
    assert [p.tool_name for p in asked] == ["refund", "notify", "refund"]
    assert len({p.call_id for p in asked}) == 3
    assert REFUNDED == ["INV-1", "INV-2"]
    assert result.output == "refunded INV-1, refunded INV-2"
