"""Test-only agents that mirror examples/support_triage and can die at chosen points.

The model is the example's `SupportScriptedModel`, so the conversation, call ids and final answer
are the example's. `triage_agent`'s refund is approval-free, so an uninterrupted run completes;
`gated_triage_agent` keeps the example's `@keel.tool(approval_required=True)` refund;
`unsafe_triage_agent`'s refund is `@keel.tool(side_effects="unsafe")`. Nothing
here hooks keel: the kill points sit in the user's code (model and tools), where a real crash
would happen, and keel must recover from them as it would from any other.

Environment variables (all optional):

    KEEL_TEST_KILL_AT   where this process SIGKILLs itself:
                          model:N:before        entering this process's Nth model call
                          model:N:after         after that call returned, before keel journals it
                          tool:NAME:after_effect  inside tool NAME, after its side effect
                          handoff:NAME          in the on_handoff callback of the handoff to NAME
    KEEL_TEST_HANG_AT   the same syntax, but the process blocks there so that the parent can
                        SIGKILL it from outside
    KEEL_TEST_TOOL_LEDGER  file that every tool run appends one fsynced JSON line to
    SUPPORT_LEDGER, SUPPORT_MODEL_CALLS  read by the example's backend and model
"""

from __future__ import annotations

from typing import Any

from agents import Agent, ModelResponse, function_tool, handoff
from agents.models.interface import Model
from examples.support_triage.model import SupportScriptedModel
from kill_points import checkpoint, invoice, refund

import keel

_live_model_calls = 0  # model calls this process made (journaled turns never reach the model)


class KillableModel(Model):
    """The example's scripted model, with kill points around each call this process makes."""

    def __init__(self) -> None:
        self.inner = SupportScriptedModel()

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        global _live_model_calls
        _live_model_calls += 1
        checkpoint(f"model:{_live_model_calls}:before")
        response = await self.inner.get_response(*args, **kwargs)
        checkpoint(f"model:{_live_model_calls}:after")
        return response

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("keel drives Runner.run, which does not stream")
        yield


MODEL = KillableModel()


@function_tool
def get_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice by ID."""
    return invoice(invoice_id)



@function_tool
def process_refund(invoice_id: str, reason: str) -> dict[str, Any]:
    """Issue a full refund for an invoice (approval-free here, unlike the example)."""
    return refund(invoice_id, reason)


def _gated_refund(invoice_id: str, reason: str) -> dict[str, Any]:
    """Issue a full refund for an invoice. Requires human approval."""
    return refund(invoice_id, reason)


# The example's gated refund plus a kill point; it keeps the example's tool name, which the
# scripted model looks for.
gated_refund = keel.tool(approval_required=True)(
    function_tool(_gated_refund, name_override="process_refund")
)

billing_agent = Agent(
    name="billing_specialist",
    model=MODEL,
    instructions="You handle billing questions. Always look up the invoice first.",
    tools=[get_invoice, process_refund],
)

triage_agent = Agent(
    name="support_triage",
    model=MODEL,
    instructions="Hand billing questions off to the billing specialist.",
    handoffs=[handoff(billing_agent,
                      on_handoff=lambda _: checkpoint("handoff:billing_specialist"))],
)

gated_billing_agent = billing_agent.clone(tools=[get_invoice, gated_refund])

gated_triage_agent = triage_agent.clone(handoffs=[handoff(gated_billing_agent)])

# The refund declared unsafe: a crash mid-call parks the run IN_DOUBT instead of a retry.
unsafe_refund = keel.tool(side_effects="unsafe")(
    function_tool(_gated_refund, name_override="process_refund")
)
unsafe_triage_agent = triage_agent.clone(handoffs=[handoff(
    billing_agent.clone(tools=[get_invoice, unsafe_refund]))])
