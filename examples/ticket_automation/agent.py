"""The triage agent (plain OpenAI Agents SDK code) and the rules keel runs it with.

With OPENAI_API_KEY set the agent uses a real model; without it, the scripted triage model.
"""

from __future__ import annotations

import json
import os

from agents import Agent, function_tool

import keel
from keel import Deny, Rule

from . import crm
from .model import TriageScriptedModel

MODEL = os.environ.get("TICKET_MODEL", "gpt-4o") if os.environ.get("OPENAI_API_KEY") \
    else TriageScriptedModel()

RULES = [
    Rule("send_reply", when=lambda args: float(args["confidence"]) >= 0.9,
         otherwise=Deny("Confidence below 0.9: save a draft for a human with draft_reply."),
         name="send only when confident"),
]
"""keel's permission rules: `send_reply` runs only at confidence >= 0.9; below, the agent is
told why and drafts instead. A call whose confidence cannot be read waits for a human."""


@function_tool
def get_customer_profile(email: str) -> str:
    """Look up the customer's plan and open tickets."""
    return json.dumps(crm.CUSTOMERS.get(email, {"error": f"no customer {email}"}))


@function_tool
def get_order_status(order_id: str) -> str:
    """Get an order's shipping status."""
    return json.dumps(crm.ORDERS.get(order_id, {"error": f"no order {order_id}"}))


@function_tool
def search_kb(query: str) -> str:
    """Search the help-center knowledge base."""
    return next((text for topic, text in crm.KB.items() if topic in query.lower()),
                "No article found.")


@function_tool
def draft_reply(ticket_id: str, text: str, confidence: float) -> str:
    """Save a reply as a draft for a human to review and send."""
    return crm.post("draft", ticket_id, text, confidence, _key())


@function_tool
def send_reply(ticket_id: str, text: str, confidence: float) -> str:
    """Send the reply to the customer. Only when confidence >= 0.9; otherwise draft it."""
    return crm.post("sent", ticket_id, text, confidence, _key())


def _key() -> str:
    """keel's idempotency key for this call: the same if the call runs again after a crash."""
    call = keel.current_call()
    return call.idempotency_key if call else os.urandom(8).hex()


triage_agent = Agent(
    name="ticket_triage",
    model=MODEL,
    instructions="""You triage support tickets. Look up the customer, check any order the
    ticket names, search the knowledge base, then answer with a confidence between 0 and 1.
    Send the reply with send_reply only if the answer is unambiguous and your confidence is at
    least 0.9; otherwise save it with draft_reply. Always draft for refunds, cancellations,
    legal questions and enterprise customers.""",
    tools=[get_customer_profile, get_order_status, search_kb, draft_reply, send_reply],
)
