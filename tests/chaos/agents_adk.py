"""The order desk as a Google ADK agent, on a scripted model that fails at the fault point
`model:call` when a trial says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.function_tool import FunctionTool
from google.genai import types

from chaos import workload
from chaos.marks import gated, unsafe
from keel.runtime._faults import fault_point

__all__ = ["agent"]


class OrderDeskLlm(BaseLlm):
    model: str = "order-desk-scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        fault_point("model:call")
        await asyncio.sleep(workload.thinking_time())
        parts = [part for content in llm_request.contents for part in content.parts or []]
        ticket = next((part.text for part in parts if part.text), "") or ""
        results = {part.function_response.name or "": json.dumps(part.function_response.response)
                   for part in parts if part.function_response}
        move = workload.next_move(ticket, results)
        if isinstance(move, workload.Say):
            replies = [types.Part(text=move.text)]
        else:
            made = sum(1 for part in parts if part.function_call)
            replies = [types.Part(function_call=types.FunctionCall(
                name=call.name, args=call.args, id=f"call_{made + k}_{call.name}"))
                for k, call in enumerate(move, start=1)]
        yield LlmResponse(content=types.Content(role="model", parts=replies),
                          usage_metadata=types.GenerateContentResponseUsageMetadata(
                              prompt_token_count=len(parts), candidates_token_count=1,
                              total_token_count=len(parts) + 1))


agent = LlmAgent(
    name="order_desk",
    model=OrderDeskLlm(),
    instruction="Process the order: look it up, reserve, charge, ship, send the receipt, log "
                "an audit line, then report.",
    tools=[
        FunctionTool(workload.lookup_order),
        FunctionTool(workload.reserve_stock),
        gated(FunctionTool(workload.charge_card)),
        FunctionTool(workload.book_shipment),
        unsafe(FunctionTool(workload.send_receipt)),
        unsafe(FunctionTool(workload.log_audit)),
    ],
)
