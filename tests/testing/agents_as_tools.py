"""A boss agent that asks the support demo's billing specialist, called as a tool, to refund a
ticket, in the OpenAI Agents SDK (`agent.as_tool()`) and in ADK (`AgentTool`). They are
defined at module level, so that a test exported from their runs imports them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from agents import Agent
from examples.support_triage import adk_agents
from examples.support_triage.agents import billing_agent
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.agent_tool import AgentTool
from google.genai import types

from scripted import ScriptedModel, call, say

REQUEST = "Refund invoice INV-8821, the customer was charged twice."


def _asks_billing(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "billing_tool" not in outputs:
        return [call("billing_tool", "call_billing", input=REQUEST)]
    return [say(f"boss: {outputs['billing_tool']}")]


openai_boss = Agent(name="boss", instructions="boss", model=ScriptedModel(_asks_billing), tools=[
    billing_agent.as_tool(tool_name="billing_tool", tool_description="Billing.")])


class _BossLlm(BaseLlm):
    model: str = "boss"

    async def generate_content_async(self, llm_request: LlmRequest,
                                      stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        answers = [part.function_response.response for content in llm_request.contents
                   for part in content.parts or [] if part.function_response]
        part = types.Part(text=f"boss: {answers[0]}") if answers else types.Part(
            function_call=types.FunctionCall(name="billing_specialist", id="ask_billing",
                                             args={"request": REQUEST}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


adk_boss = LlmAgent(name="boss", model=_BossLlm(), instruction="Ask billing.",
                    tools=[AgentTool(agent=adk_agents.billing_agent.clone())])


def _files_it(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "file_tool" not in outputs:
        return [call("file_tool", "call_file", input="Duplicate charge on INV-8821")]
    return [say(f"desk: {outputs['file_tool']}")]


# The agent the desk calls as a tool has the desk's own name, as a team's agents may.
desk_clerk = Agent(name="desk", instructions="clerk",
                   model=ScriptedModel(lambda agent, outputs: [say("filed as TKT-7")]))
openai_desk = Agent(name="desk", instructions="desk", model=ScriptedModel(_files_it), tools=[
    desk_clerk.as_tool(tool_name="file_tool", tool_description="Files a ticket.")])
