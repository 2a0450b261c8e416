"""The support team: plain OpenAI Agents SDK code; keel adds only `@keel.tool` on one tool.

With OPENAI_API_KEY set the agents use a real model; without it they use the scripted support
model, which answers from the conversation alone.
"""

from __future__ import annotations

import os

from agents import Agent, function_tool, handoff

import keel

from . import backend
from .model import SupportScriptedModel

MODEL = os.environ.get("SUPPORT_MODEL", "gpt-4o") if os.environ.get("OPENAI_API_KEY") \
    else SupportScriptedModel()


@function_tool
def get_account(customer_id: str) -> dict[str, object]:
    """Look up a customer's account: plan, billing status, usage."""
    return backend.ACCOUNTS.get(customer_id, {"error": f"no account {customer_id}"})


@function_tool
def get_invoice(invoice_id: str) -> dict[str, object]:
    """Fetch an invoice by ID."""
    return backend.INVOICES.get(invoice_id, {"error": f"no invoice {invoice_id}"})


@keel.tool(approval_required=True)
def process_refund(invoice_id: str, reason: str) -> dict[str, object]:
    """Issue a full refund for an invoice. Requires human approval."""
    call = keel.current_call()
    return backend.refund(invoice_id, reason, call.idempotency_key if call else None)


@function_tool
def get_ticket_history(customer_id: str) -> list[dict[str, object]]:
    """Get the last 5 support tickets for a customer."""
    return backend.TICKETS.get(customer_id, [])[:5]


@function_tool
def reset_password(customer_id: str) -> dict[str, object]:
    """Send a password reset email to the customer."""
    return {"status": "reset_sent", "customer_id": customer_id}


@function_tool
def check_service_status(region: str) -> dict[str, object]:
    """Check current service health for a region."""
    return {"region": region, "status": "operational"}


@function_tool
def escalate_to_human(ticket_id: str, reason: str, priority: str) -> dict[str, object]:
    """Escalate this ticket to a human agent."""
    return {"status": "escalated", "ticket_id": ticket_id, "priority": priority}


billing_agent = Agent(
    name="billing_specialist",
    model=MODEL,
    instructions="""You handle billing questions: invoices, charges, refunds, plan changes.
    Always look up the invoice first. Process refunds only for clear billing errors.
    For amounts over $200, escalate to a human.""",
    tools=[get_account, get_invoice, process_refund, escalate_to_human],
)

technical_agent = Agent(
    name="technical_specialist",
    model=MODEL,
    instructions="""You handle technical issues: login problems, service outages, API errors.
    Always check service status first. Reset passwords only after verifying identity.""",
    tools=[get_account, check_service_status, reset_password, escalate_to_human],
)

account_agent = Agent(
    name="account_specialist",
    model=MODEL,
    instructions="""You handle account changes: upgrades, downgrades, cancellations, exports.
    Always look up the account and ticket history before making changes.""",
    tools=[get_account, get_ticket_history, escalate_to_human],
)

triage_agent = Agent(
    name="support_triage",
    model=MODEL,
    instructions="""You are a support triage agent. Understand the customer's issue
    and hand off to the right specialist immediately.
    - Billing, charges, invoices, refunds -> billing_specialist
    - Login, outages, API errors, technical issues -> technical_specialist
    - Plan changes, cancellations, account settings -> account_specialist""",
    handoffs=[handoff(billing_agent), handoff(technical_agent), handoff(account_agent)],
)
