"""A scripted triage model for offline runs: a pure function of the conversation, so any
process can carry a run on.

It looks the customer up, checks the order a ticket names, searches the knowledge base, and
then answers with a confidence: 0.96 for a password reset, 0.88 for an order question (it tries
to send that reply anyway, as models do; keel's rule says no, and it drafts), and 0.55 for
anything risky (refunds, cancellations, legal words, enterprise customers), which it drafts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agents import ModelResponse, Usage
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

RISKY = re.compile(r"refund|cancel|gdpr|lawsuit|legal", re.I)


class TriageScriptedModel(Model):
    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any,
                           tools: Any, output_schema: Any, handoffs: Any, tracing: Any,
                           **kwargs: Any) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        results = {str(i.get("name")): str(i.get("output")) for i in _answered(items)}
        move = decide(str(items[0]["content"]), results)
        output = _say(move) if isinstance(move, str) else _call(*move, len(results))
        return ModelResponse(output=[output], usage=Usage(requests=1), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("the ticket worker runs with Runner.run")
        yield


def decide(ticket: str, results: dict[str, str]) -> tuple[str, dict[str, Any]] | str:
    """The next tool call (name, arguments), or the final answer, from the ticket text and the
    results of the tools called so far (tool name -> output)."""
    ticket_id = re.search(r"#(\S+)", ticket)
    email = re.search(r"from (\S+?):", ticket)
    body = ticket.split("\n\n", 1)[-1]
    order = re.search(r"ORD-\d+", body)
    if "get_customer_profile" not in results:
        return "get_customer_profile", {"email": email[1] if email else ""}
    if order and "get_order_status" not in results:
        return "get_order_status", {"order_id": order[0]}
    topic = "password" if "password" in body.lower() else "order" if order else body[:40]
    if "search_kb" not in results:
        return "search_kb", {"query": topic}
    for tool, done in (("send_reply", "Sent"), ("draft_reply", "Drafted")):
        if results.get(tool, "").endswith(("sent.", "review.")):
            return f"{done} a reply to ticket {ticket_id[1] if ticket_id else '?'}."
    risky = bool(RISKY.search(body)) or '"enterprise"' in results["get_customer_profile"]
    confidence = 0.55 if risky else 0.96 if topic == "password" else 0.88
    reply = {"ticket_id": ticket_id[1] if ticket_id else "?", "confidence": confidence,
             "text": f"Thanks for writing in. {results['search_kb']}"}
    if confidence > 0.8 and "send_reply" not in results:
        return "send_reply", reply
    return "draft_reply", reply  # risky, or keel's rule refused the send


def _answered(items: list[Any]) -> list[dict[str, Any]]:
    names = {i.get("call_id"): i.get("name") for i in items
             if isinstance(i, dict) and i.get("type") == "function_call"}
    return [{"name": names.get(i.get("call_id")), "output": i.get("output")} for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"]


def _call(name: str, args: dict[str, Any], n: int) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(id=f"fc_{n + 1}", call_id=f"call_{n + 1}_{name}",
                                    type="function_call", name=name,
                                    arguments=json.dumps(args), status="completed")


def _say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])])
