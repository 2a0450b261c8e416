"""The order desk as a LangGraph graph (a model node and a `ToolNode`), on a scripted chat
model that fails at the fault point `model:call` when a trial says so."""

from __future__ import annotations

import time
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

from chaos import workload
from chaos.marks import gated, unsafe
from keel.runtime._faults import fault_point

__all__ = ["agent"]


class OrderDeskChatModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "order-desk-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        fault_point("model:call")
        time.sleep(workload.thinking_time())
        ticket = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
        names = {c["id"]: c["name"] for m in messages if isinstance(m, AIMessage)
                 for c in m.tool_calls}
        results = {names.get(m.tool_call_id, ""): str(m.content) for m in messages
                   if isinstance(m, ToolMessage)}
        move = workload.next_move(ticket, results)
        turn = sum(1 for m in messages if isinstance(m, AIMessage))
        if isinstance(move, workload.Say):
            message = AIMessage(content=move.text, id=f"order-desk-{turn}")
        else:
            message = AIMessage(content="", id=f"order-desk-{turn}", tool_calls=[
                {"name": call.name, "args": call.args, "type": "tool_call",
                 "id": f"call_{len(names) + k}_{call.name}"}
                for k, call in enumerate(move, start=1)])
        return ChatResult(generations=[ChatGeneration(message=message)])


# LangChain tools answer a function's dict as JSON text.
TOOLS = [
    tool(workload.lookup_order),
    tool(workload.reserve_stock),
    gated(tool(workload.charge_card)),
    tool(workload.book_shipment),
    unsafe(tool(workload.send_receipt)),
    unsafe(tool(workload.log_audit)),
]


def _graph() -> Any:
    bound = OrderDeskChatModel().bind_tools(TOOLS)

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", think)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name="order_desk")


agent = _graph()
