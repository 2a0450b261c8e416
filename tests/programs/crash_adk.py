"""Test-only Google ADK twin of crash_agents: triage and billing as ADK agents, with kill points.

The agents are the example's (examples/support_triage/adk_agents.py) on its scripted model; the
refund is approval-free so that an uninterrupted run completes. Kill points (KEEL_TEST_KILL_AT /
KEEL_TEST_HANG_AT, see kill_points.py):

    model:N:before / model:N:answered   entering this process's Nth model call / with its
                                        answer ready, before ADK (and keel) have seen it
    tool:NAME:after_effect              inside tool NAME, after its side effect
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from examples.support_triage.adk_agents import SupportLlm, get_account
from google.adk.agents import LlmAgent
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools import FunctionTool
from kill_points import checkpoint, invoice, refund

import keel

_live = {"model": 0}


class KillableLlm(SupportLlm):
    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        _live["model"] += 1
        checkpoint(f"model:{_live['model']}:before")
        async for response in super().generate_content_async(llm_request, stream):
            checkpoint(f"model:{_live['model']}:answered")
            yield response


def get_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice by ID."""
    return invoice(invoice_id)


def process_refund(invoice_id: str, reason: str) -> dict[str, Any]:
    """Issue a full refund for an invoice (approval-free here, unlike the example)."""
    return refund(invoice_id, reason)


MODEL = KillableLlm()
billing_agent = LlmAgent(name="billing_specialist", model=MODEL,
                         description="Billing: invoices, charges, refunds.",
                         instruction="You handle billing questions. Look up the invoice first.",
                         tools=[get_account, get_invoice, process_refund])
triage_agent = LlmAgent(name="support_triage", model=MODEL,
                        description="Routes each ticket to the right specialist.",
                        instruction="Route the ticket to the right specialist.",
                        sub_agents=[billing_agent])

# The refund declared unsafe: a crash mid-call parks the run IN_DOUBT instead of a retry.
unsafe_refund = keel.tool(side_effects="unsafe")(FunctionTool(process_refund))
unsafe_triage_agent = triage_agent.clone(update={"sub_agents": [billing_agent.clone(
    update={"tools": [get_account, get_invoice, unsafe_refund]})]})
