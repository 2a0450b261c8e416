"""ADK Workflows for tests, at module level so that exported tests import them.

- `reply_flow`: START -> draft -> review -> send, where review asks for input (RequestInput)
  before the reply is sent;
- `refunds()`: START -> a clerk agent whose refund tool needs approval -> a report function
  node (a new one each call: its scripted model counts the turns it was asked);
  `refunds_flow` is one of them.

`DONE` lists what the nodes and tools did, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.events import RequestInput
from google.adk.tools.function_tool import FunctionTool
from google.adk.workflow import Workflow

import keel
from adk_turns import TurnsLlm

__all__ = ["DONE", "refunds", "refunds_flow", "reply_flow"]

DONE: list[Any] = []


def draft(node_input: str) -> str:
    DONE.append("draft")
    return f"Dear customer, about your {node_input}: it ships today."


def review(node_input: str) -> Iterator[RequestInput]:
    DONE.append("review")
    yield RequestInput(message="Send this reply?", payload={"draft": node_input})


def send(node_input: Any) -> str:
    DONE.append(("send", node_input))
    return f"sent after {node_input}"


reply_flow = Workflow(name="reply", edges=[("START", draft, review, send)])


def refund(invoice: str) -> dict[str, str]:
    """Refund an invoice."""
    DONE.append(("refund", invoice))
    return {"refunded": invoice}


def report(node_input: str) -> str:
    DONE.append(("report", node_input))
    return f"report: {node_input}"


def refunds() -> Workflow:
    clerk = LlmAgent(name="clerk", instruction="Refund.", model=TurnsLlm(turns=[
        {"name": "refund", "args": {"invoice": "INV-1"}, "id": "call_refund"},
        "Refunded INV-1."], asked=[]),
        tools=[keel.tool(approval_required=True)(FunctionTool(refund))])
    return Workflow(name="refunds", edges=[("START", clerk, report)])


refunds_flow = refunds()
