"""An ADK Workflow whose review node asks for input (RequestInput) before the reply is sent:
START -> draft -> review -> send. `DONE` lists what the nodes did, in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.adk.events import RequestInput
from google.adk.workflow import Workflow

__all__ = ["DONE", "reply_flow"]

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
