"""Three agents in a row, plain LangGraph: each reads the ticket and what the agents before it
wrote, and adds its own part. Offline they run on `PipelineChatModel`, which answers each role
from the ticket alone.

    ticket -> [classifier] -> tags -> [responder] -> draft reply -> [escalation_checker]
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph

__all__ = ["INSTRUCTIONS", "PipelineChatModel", "TICKET", "answer", "pipeline"]

TICKET = """Subject: URGENT - API extremely slow, blocking our monthly batch processing
From: David Park <david.park@acmelogistics.com>
Company: Acme Logistics (Enterprise plan)

Our batch API calls have gone from ~200ms to 15-30 seconds per call, the dashboard times out,
and nothing changed on our end. Our SLA with our own customers is at risk. Is there a known
issue, a workaround, and when can we expect normal performance?"""

INSTRUCTIONS = {
    "classifier": "You are a support ticket classifier: tag priority, category, product "
                  "area, sentiment and key facts.",
    "responder": "You are a senior support engineer: draft a reply to the customer from the "
                 "ticket and its classification.",
    "escalation_checker": "You are a support team lead: decide whether engineering must be "
                          "pulled in, and write the internal note if so.",
}


def answer(role: str, ticket: str) -> str:
    """What the agent with instructions `role` writes about `ticket` (deterministic)."""
    urgent = bool(re.search(r"urgent|outage|sla", ticket, re.I))
    if INSTRUCTIONS["classifier"] in role:
        return (f"Priority: {'P1' if urgent else 'P3'}; category: performance; product "
                "area: batch API and dashboard; sentiment: frustrated.")
    if INSTRUCTIONS["responder"] in role:
        return ("Hi David, thanks for the detail: batch calls at 15-30 s and dashboard "
                "timeouts since today. Engineering is looking at US-East now; we will "
                "update you within the hour.")
    if urgent:
        return ("Escalate: yes. Enterprise customer, P1 latency regression on the batch API; "
                "SLA at risk. Investigate US-East API latency since 1 PM.")
    return "Escalate: no. Support can handle it."


class PipelineChatModel(BaseChatModel):
    """Answers each pipeline role deterministically, from the ticket."""

    @property
    def _llm_type(self) -> str:
        return "pipeline-scripted"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        role = str(messages[0].content) if isinstance(messages[0], SystemMessage) else ""
        ticket = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
        reply = AIMessage(content=answer(role, ticket))
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _agent(name: str, model: BaseChatModel) -> Any:
    def answer(state: MessagesState) -> dict[str, Any]:
        reply = model.invoke([SystemMessage(INSTRUCTIONS[name]), *state["messages"]])
        return {"messages": [reply]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(name=name)


def build(model: BaseChatModel | None = None) -> Any:
    model = model or PipelineChatModel()
    graph = StateGraph(MessagesState)
    previous = START
    for name in INSTRUCTIONS:
        graph.add_node(name, _agent(name, model))
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph.compile(name="support_pipeline")


pipeline = build()
