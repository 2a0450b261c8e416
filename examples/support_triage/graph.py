"""The support team as a LangGraph multi-agent graph: plain LangGraph code.

Each agent is a small subgraph (a model node and a `ToolNode`); the triage agent hands off with
tools that return `Command(goto=..., graph=Command.PARENT)`, the swarm pattern. keel adds only
`@keel.tool(approval_required=True)` on `process_refund`. Offline the agents use
`SupportChatModel`, the LangChain twin of the OpenAI demo's scripted model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, InjectedToolCallId, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState, ToolNode, tools_condition
from langgraph.types import Command

import keel

from . import backend
from .model import Say, decide, record_call

__all__ = ["SupportChatModel", "support_graph"]


class SupportChatModel(BaseChatModel):
    """Answers as the support team's model would: a pure function of the conversation."""

    @property
    def _llm_type(self) -> str:
        return "support-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        # The OpenAI tool format, as LangChain's provider models bind them.
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        record_call()
        tools = {t["function"]["name"] for t in kwargs.get("tools", ())}
        handoffs = {name.removeprefix("transfer_to_"): name for name in tools
                    if name.startswith("transfer_to_")}
        ticket = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
        names = {c["id"]: c["name"] for m in messages if isinstance(m, AIMessage)
                 for c in m.tool_calls}
        results = {names.get(m.tool_call_id, ""): str(m.content) for m in messages
                   if isinstance(m, ToolMessage)}
        turn = decide(ticket, results, tools, handoffs)
        turns = sum(1 for m in messages if isinstance(m, AIMessage))
        message = AIMessage(content=turn.text, id=f"support-{turns}") if isinstance(turn, Say) \
            else AIMessage(content="", id=f"support-{turns}", tool_calls=[{
                "name": turn.name, "args": turn.args, "type": "tool_call",
                "id": f"call_{len(names) + 1}_{turn.name}"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def get_account(customer_id: str) -> str:
    """Look up a customer's account: plan, billing status, usage."""
    return json.dumps(backend.ACCOUNTS.get(customer_id, {"error": f"no account {customer_id}"}))


@tool
def get_invoice(invoice_id: str) -> str:
    """Fetch an invoice by ID."""
    return json.dumps(backend.INVOICES.get(invoice_id, {"error": f"no invoice {invoice_id}"}))


@keel.tool(approval_required=True)
@tool
def process_refund(invoice_id: str, reason: str) -> str:
    """Issue a full refund for an invoice. Requires human approval."""
    call = keel.current_call()
    return json.dumps(backend.refund(invoice_id, reason, call.idempotency_key if call else None))


@tool
def check_service_status(region: str) -> str:
    """Check current service health for a region."""
    return json.dumps({"region": region, "status": "operational"})


@tool
def reset_password(customer_id: str) -> str:
    """Send a password reset email to the customer."""
    return json.dumps({"status": "reset_sent", "customer_id": customer_id})


def handoff_to(agent: str) -> BaseTool:
    """A tool that moves the conversation to `agent`, a sibling node of the parent graph."""

    @tool(f"transfer_to_{agent}", description=f"Hand the conversation to the {agent}.")
    def transfer(state: Annotated[dict[str, Any], InjectedState],
                 tool_call_id: Annotated[str, InjectedToolCallId]) -> Command[Any]:
        done = ToolMessage(f"Transferred to {agent}.", tool_call_id=tool_call_id)
        # The agent's conversation, with the call and its answer, goes to the next agent.
        return Command(goto=agent, graph=Command.PARENT,
                       update={"messages": [*state["messages"], done]})

    return transfer


def specialist(name: str, model: BaseChatModel, tools: list[BaseTool]) -> Any:
    """One agent: its model answers or calls tools until it has an answer."""
    bound = model.bind_tools(tools)

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", think)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name=name)


SPECIALISTS = ("billing_specialist", "technical_specialist", "account_specialist")


def support_graph(model: BaseChatModel | None = None) -> Any:
    """Triage and its three specialists, as one graph (no checkpointer: keel brings one)."""
    model = model or SupportChatModel()
    tools: dict[str, list[BaseTool]] = {
        "billing_specialist": [get_account, get_invoice, process_refund],
        "technical_specialist": [get_account, check_service_status, reset_password],
        "account_specialist": [get_account],
    }
    graph = StateGraph(MessagesState)
    graph.add_node("support_triage",
                   specialist("support_triage", model, [handoff_to(s) for s in SPECIALISTS]),
                   destinations=SPECIALISTS)
    for name in SPECIALISTS:
        graph.add_node(name, specialist(name, model, tools[name]))
        graph.add_edge(name, END)
    graph.add_edge(START, "support_triage")
    return graph.compile(name="support_triage")


triage_graph = support_graph()

