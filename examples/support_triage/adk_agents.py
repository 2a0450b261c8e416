"""The support team as Google ADK agents: plain ADK code, plus keel's marker on the refund.

The triage agent transfers to its specialist sub-agents (ADK's `transfer_to_agent`). Offline
the agents use `SupportLlm`, the ADK twin of the OpenAI demo's scripted model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.function_tool import FunctionTool
from google.genai import types

import keel

from . import backend
from .model import ROUTES, Say, decide, record_call

__all__ = ["SupportLlm", "triage_agent"]

SPECIALISTS = ("billing_specialist", "technical_specialist", "account_specialist")


class SupportLlm(BaseLlm):
    """Answers as the support team's model would: a pure function of the request."""

    model: str = "support-scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        record_call()
        parts = [part for content in llm_request.contents for part in content.parts or []]
        ticket = next((part.text for part in parts if part.text), "") or ""
        results = {part.function_response.name or "": json.dumps(part.function_response.response)
                   for part in parts if part.function_response}
        tools = set(llm_request.tools_dict)
        turns = sum(1 for part in parts if part.function_call)
        if tools == {"transfer_to_agent"}:  # the triage agent
            target = next((agent for pattern, agent in ROUTES if pattern.search(ticket)),
                          "account_specialist")
            reply = types.Part(function_call=types.FunctionCall(
                name="transfer_to_agent", args={"agent_name": target}, id=f"call_{turns + 1}"))
        else:
            turn = decide(ticket, results, tools, {})
            reply = types.Part(text=turn.text) if isinstance(turn, Say) else types.Part(
                function_call=types.FunctionCall(name=turn.name, args=turn.args,
                                                 id=f"call_{turns + 1}_{turn.name}"))
        yield LlmResponse(content=types.Content(role="model", parts=[reply]))


def get_account(customer_id: str) -> dict[str, Any]:
    """Look up a customer's account: plan, billing status, usage."""
    return backend.ACCOUNTS.get(customer_id, {"error": f"no account {customer_id}"})


def get_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice by ID."""
    return backend.INVOICES.get(invoice_id, {"error": f"no invoice {invoice_id}"})


def _refund(invoice_id: str, reason: str) -> dict[str, Any]:
    """Issue a full refund for an invoice. Requires human approval."""
    call = keel.current_call()
    return backend.refund(invoice_id, reason, call.idempotency_key if call else None)


process_refund = keel.tool(approval_required=True)(FunctionTool(_refund))
process_refund.name = "process_refund"


def check_service_status(region: str) -> dict[str, Any]:
    """Check current service health for a region."""
    return {"region": region, "status": "operational"}


MODEL = SupportLlm()

billing_agent = LlmAgent(name="billing_specialist", model=MODEL,
                         description="Billing: invoices, charges, refunds.",
                         instruction="You handle billing questions. Look up the invoice first.",
                         tools=[get_account, get_invoice, process_refund])
technical_agent = LlmAgent(name="technical_specialist", model=MODEL,
                           description="Technical issues: login, outages, API errors.",
                           instruction="You handle technical issues. Check the status first.",
                           tools=[get_account, check_service_status])
account_agent = LlmAgent(name="account_specialist", model=MODEL,
                         description="Account questions.", instruction="You handle accounts.",
                         tools=[get_account])
triage_agent = LlmAgent(name="support_triage", model=MODEL,
                        description="Routes each ticket to the right specialist.",
                        instruction="Route the ticket to the right specialist.",
                        sub_agents=[billing_agent, technical_agent, account_agent])
