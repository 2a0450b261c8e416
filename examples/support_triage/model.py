"""A scripted support model for offline runs: routes and resolves tickets by their content.

It is a pure function of the request (which tools and handoffs the asking agent has, and what
the conversation holds), with no hidden cursor, so a fresh instance in a new process carries a
crashed run on exactly where the old one stopped.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from agents import ModelResponse, Usage
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

ROUTES = (
    (re.compile(r"refund|charge|invoice|billing|bill\b", re.I), "billing_specialist"),
    (re.compile(r"log ?in|password|outage|error|api|down\b", re.I), "technical_specialist"),
)


class SupportScriptedModel(Model):
    """Answers as the support team's model would, deterministically."""

    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any,
                           tools: Any, output_schema: Any, handoffs: Any, tracing: Any,
                           **kwargs: Any) -> ModelResponse:
        record_call()
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        turn = decide(_first_user_text(items), _tool_results(items), {t.name for t in tools},
                      {h.agent_name: h.tool_name for h in handoffs})
        output: list[Any] = [_say(turn.text) if isinstance(turn, Say)
                             else _call(turn.name, turn.args, items)]
        words = sum(len(str(i).split()) for i in items)
        return ModelResponse(
            output=output,
            usage=Usage(requests=1, input_tokens=words, output_tokens=12,
                        total_tokens=words + 12),
            response_id=None,
        )

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("the support demo runs with Runner.run")
        yield


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Say:
    text: str


def decide(ticket: str, results: dict[str, str], tools: set[str],
           handoffs: dict[str, str]) -> Call | Say:
    """The support team's next move, from the ticket, the tool results so far (tool name ->
    output text), the asking agent's tools and its handoffs (target agent -> tool name)."""
    if handoffs and not tools - {"escalate_to_human"} - set(handoffs.values()):  # triage
        target = next((agent for pattern, agent in ROUTES if pattern.search(ticket)),
                      "account_specialist")
        return Call(handoffs[target], {})
    if "process_refund" in tools:
        found = re.search(r"INV-\d+", ticket)
        invoice = found[0] if found else "unknown"
        if "get_invoice" not in results:
            return Call("get_invoice", {"invoice_id": invoice})
        if "process_refund" not in results:
            return Call("process_refund", {"invoice_id": invoice, "reason": "Duplicate charge"})
        outcome = results["process_refund"]
        if "rejected" in outcome:
            return Say(f"I'm sorry, I could not refund invoice {invoice}: {outcome}")
        amount = re.search(r"amount_usd\W+([\d.]+)", outcome)
        paid = f"${float(amount[1]):.2f}" if amount else "the charge"
        return Say(f"I've refunded {paid} for invoice {invoice}. You'll see it on your "
                   "statement in 3-5 business days.")
    if "check_service_status" in tools:
        if "check_service_status" not in results:
            return Call("check_service_status", {"region": "us-east"})
        return Say("Our services are operational. Please try signing in again; "
                   "reply if the problem persists.")
    if "get_account" not in results:
        return Call("get_account", {"customer_id": "cust_123"})
    return Say("I've reviewed your account; a specialist will follow up on your request.")


def _first_user_text(items: list[Any]) -> str:
    for item in items:
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _tool_results(items: list[Any]) -> dict[str, str]:
    """Tool name -> output text, for the calls answered so far."""
    names = {i.get("call_id"): i.get("name") for i in items
             if isinstance(i, dict) and i.get("type") == "function_call"}
    return {str(names.get(i.get("call_id"))): str(i.get("output")) for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"}


def _call(name: str, args: dict[str, Any], items: list[Any]) -> ResponseFunctionToolCall:
    n = sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call")
    return ResponseFunctionToolCall(
        id=f"fc_{n + 1}", call_id=f"call_{n + 1}_{name}", type="function_call", name=name,
        arguments=json.dumps(args), status="completed",
    )


def _say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def record_call() -> None:
    """Count model calls in a file when SUPPORT_MODEL_CALLS names one (crash tests)."""
    path = os.environ.get("SUPPORT_MODEL_CALLS")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
