"""The order desk as an OpenAI Agents SDK agent, on a scripted model.

The model fails at the fault point `model:call` when a trial says so: during the model call,
where a real crash would cut off a request in flight.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import Agent, ModelResponse, Usage, function_tool
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from chaos import workload
from chaos.marks import gated, unsafe
from keel.runtime._faults import fault_point

__all__ = ["agent"]


class OrderDeskModel(Model):
    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any,
                           tools: Any, output_schema: Any, handoffs: Any, tracing: Any,
                           **kwargs: Any) -> ModelResponse:
        fault_point("model:call")
        await asyncio.sleep(workload.thinking_time())
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        move = workload.next_move(_ticket(items), _results(items))
        if isinstance(move, workload.Say):
            output: list[Any] = [ResponseOutputMessage(
                id="msg_1", type="message", role="assistant", status="completed",
                content=[ResponseOutputText(type="output_text", text=move.text,
                                            annotations=[])])]
        else:
            made = sum(1 for i in items if _is(i, "function_call"))
            output = [ResponseFunctionToolCall(
                id=f"fc_{made + k}", call_id=f"call_{made + k}_{call.name}",
                type="function_call", name=call.name, arguments=json.dumps(call.args),
                status="completed") for k, call in enumerate(move, start=1)]
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("keel drives Runner.run, which does not stream")
        yield


def _is(item: Any, kind: str) -> bool:
    return isinstance(item, dict) and item.get("type") == kind


def _ticket(items: list[Any]) -> str:
    return next((str(i.get("content")) for i in items
                 if isinstance(i, dict) and i.get("role") == "user"), "")


def _results(items: list[Any]) -> dict[str, str]:
    names = {i.get("call_id"): i.get("name") for i in items if _is(i, "function_call")}
    return {str(names.get(i.get("call_id"))): str(i.get("output")) for i in items
            if _is(i, "function_call_output")}


agent = Agent(
    name="order_desk",
    model=OrderDeskModel(),
    instructions="Process the order: look it up, reserve, charge, ship, send the receipt, "
                 "log an audit line, then report.",
    tools=[
        function_tool(workload.lookup_order),
        function_tool(workload.reserve_stock),
        gated(function_tool(workload.charge_card)),
        function_tool(workload.book_shipment),
        unsafe(function_tool(workload.send_receipt)),
        unsafe(function_tool(workload.log_audit)),
    ],
)
