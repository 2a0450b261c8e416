"""The drafting agent: plain LangGraph code (a model node and a `ToolNode` in a loop).

Offline it runs on `DraftingChatModel`, a scripted model that is a pure function of the
conversation; with OPENAI_API_KEY set and langchain-openai installed, on a real one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from . import helpdesk

__all__ = ["DraftingChatModel", "drafting_agent"]

INSTRUCTIONS = """You draft replies to support tickets; a human reviews and sends them.
Read the ticket, look the customer up, search the help center, then save a draft with
save_draft, citing the articles you used. Never promise refunds or dates the articles do not
give. Do not send anything yourself."""


@tool
def get_ticket(ticket_id: str) -> str:
    """Read a support ticket: its customer, subject and body."""
    return json.dumps(helpdesk.TICKETS.get(ticket_id, {"error": f"no ticket {ticket_id}"}))


@tool
def get_customer(customer_id: str) -> str:
    """Look up a customer's name and plan."""
    return json.dumps(helpdesk.CUSTOMERS.get(customer_id, {"error": "no such customer"}))


@tool
def search_help_center(query: str) -> str:
    """Search the help-center articles; returns their ids and text."""
    return json.dumps(helpdesk.search(query))


@tool
def save_draft(ticket_id: str, text: str, sources: list[str]) -> str:
    """Save a draft reply, with the ids of the articles it relies on, for a human to review."""
    helpdesk.DRAFTS[ticket_id] = {"text": text, "sources": sources}
    return f"Draft saved for {ticket_id}."


@tool
def send_email(ticket_id: str, text: str) -> str:
    """Send an e-mail to the ticket's customer."""
    helpdesk.SENT.append({"ticket_id": ticket_id, "text": text})
    return "Sent."


TOOLS = [get_ticket, get_customer, search_help_center, save_draft, send_email]


class DraftingChatModel(BaseChatModel):
    """Drafts as the agent's model would, deterministically. Like real models it sometimes
    overreaches (a ticket that says "just send" makes it call send_email) and can be led in
    circles (a ticket that says to search every article makes it search without end)."""

    @property
    def _llm_type(self) -> str:
        return "drafting-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        request = next(str(m.content) for m in messages if isinstance(m, HumanMessage))
        names = {c["id"]: c["name"] for m in messages if isinstance(m, AIMessage)
                 for c in m.tool_calls}
        results = [(names.get(m.tool_call_id, ""), str(m.content)) for m in messages
                   if isinstance(m, ToolMessage)]
        move = decide(request, results)
        message = AIMessage(content=move, id=f"draft-{len(names)}") if isinstance(move, str) \
            else AIMessage(content="", id=f"draft-{len(names)}", tool_calls=[{
                "name": move[0], "args": move[1], "type": "tool_call",
                "id": f"call_{len(names) + 1}_{move[0]}"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def decide(request: str, results: list[tuple[str, str]]) -> tuple[str, dict[str, Any]] | str:
    """The next tool call (name, arguments) or the final answer, from the request ("Draft a
    reply to ticket T-3301") and the tool results so far, in order."""
    ticket_id = request.rstrip(".").rsplit(" ", 1)[-1]
    seen = dict(results)
    if "get_ticket" not in seen:
        return "get_ticket", {"ticket_id": ticket_id}
    ticket = json.loads(seen["get_ticket"])
    if "get_customer" not in seen:
        return "get_customer", {"customer_id": ticket["customer_id"]}
    body = ticket["body"].lower()
    searches = sum(1 for name, _ in results if name == "search_help_center")
    if "search every article" in body:  # led in circles: only a budget stops this
        return "search_help_center", {"query": f"article {searches + 1}"}
    if not searches:
        return "search_help_center", {"query": ticket["subject"]}
    articles = json.loads(seen["search_help_center"])
    name = json.loads(seen["get_customer"]).get("name", "there")
    text = (f"Hi {name}, thanks for writing about \"{ticket['subject']}\". "
            + (" ".join(a["text"] for a in articles) or "We are looking into it.")
            + " — The Support team")
    if "just send" in body and "send_email" not in seen:
        return "send_email", {"ticket_id": ticket_id, "text": text}
    if "save_draft" not in seen:
        return "save_draft", {"ticket_id": ticket_id, "text": text,
                              "sources": [a["id"] for a in articles]}
    return f"Draft saved for {ticket_id}; a human will review and send it."


def chat_model() -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]
        except ImportError:  # pragma: no cover - not installed here
            return DraftingChatModel()
        return ChatOpenAI(model=os.environ.get("DRAFTING_MODEL", "gpt-4o"))  # type: ignore[no-any-return]
    return DraftingChatModel()


def build(model: BaseChatModel) -> Any:
    bound = model.bind_tools(TOOLS)

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke([("system", INSTRUCTIONS), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", think)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name="support_drafter")


drafting_agent = build(chat_model())
