"""One scripted agent in each framework, for tests that must hold for all three.

The agent's model makes the calls of its plan, a turn for each entry (the next once the
previous one's results are in): one call, or a list of calls made at once. Then it answers
`final`. Every turn reports 10 input and 5 output tokens.
The tools are plain functions; each framework wraps them its own way. `SEEN` collects every
text the models were given, so a test can check what the live model saw.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

FRAMEWORKS = ("openai", "langgraph", "adk")
TOKENS_PER_TURN = 15

Call = tuple[str, dict[str, Any]]
Plan = Sequence[Call | list[Call]]
SEEN: list[str] = []


def scripted_agent(framework: str, plan: Plan, tools: Sequence[Callable[..., Any]], *,
                   final: str = "All done.", name: str = "assistant") -> Any:
    return {"openai": _openai, "langgraph": _graph, "adk": _adk}[framework](
        plan, tools, final, name)


def _turn(plan: Plan, answered: int, final: str) -> list[tuple[str, Call]] | str:
    """The calls of the turn after `answered` results (with their ids), or the answer."""
    for index, entry in enumerate(plan):
        calls = entry if isinstance(entry, list) else [entry]
        if answered < len(calls):
            return [(f"c{index}.{n}", call) for n, call in enumerate(calls)]
        answered -= len(calls)
    return final


def _openai(plan: Plan, tools: Sequence[Callable[..., Any]], final: str, name: str) -> Any:
    from agents import Agent, ModelResponse, Usage, function_tool
    from agents.models.interface import Model

    from scripted import call, say

    class PlanModel(Model):
        async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                               **kwargs: Any) -> ModelResponse:
            items = [{"role": "user", "content": input}] if isinstance(input, str) else input
            SEEN.append(json.dumps(items, default=str))
            answered = sum(1 for i in items if isinstance(i, dict)
                           and i.get("type") == "function_call_output")
            turn = _turn(plan, answered, final)
            output = [say(turn)] if isinstance(turn, str) else \
                [call(name, call_id, **args) for call_id, (name, args) in turn]
            return ModelResponse(output=output, response_id=None, usage=Usage(
                requests=1, input_tokens=10, output_tokens=5, total_tokens=TOKENS_PER_TURN))

        async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
            raise NotImplementedError
            yield

    return Agent(name=name, instructions="Follow the plan.", model=PlanModel(),
                 tools=[function_tool(t) for t in tools])


def _graph(plan: Plan, tools: Sequence[Callable[..., Any]], final: str, name: str) -> Any:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    class PlanChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "plan-scripted"

        def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                      run_manager: Any = None, **kwargs: Any) -> ChatResult:
            SEEN.append(json.dumps([m.model_dump(mode="json") for m in messages]))
            answered = sum(1 for m in messages if isinstance(m, ToolMessage))
            turn = _turn(plan, answered, final)
            usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": TOKENS_PER_TURN}
            message = AIMessage(content=turn, usage_metadata=usage) if isinstance(turn, str) \
                else AIMessage(content="", usage_metadata=usage, tool_calls=[
                    {"name": name, "args": args, "id": call_id, "type": "tool_call"}
                    for call_id, (name, args) in turn])
            return ChatResult(generations=[ChatGeneration(message=message)])

    model = PlanChatModel()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([tool(t) for t in tools]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name=name)


def _adk(plan: Plan, tools: Sequence[Callable[..., Any]], final: str, name: str) -> Any:
    from google.adk.agents import LlmAgent
    from google.adk.models.base_llm import BaseLlm
    from google.adk.models.llm_request import LlmRequest
    from google.adk.models.llm_response import LlmResponse
    from google.genai import types

    class PlanLlm(BaseLlm):
        model: str = "plan-scripted"

        async def generate_content_async(self, llm_request: LlmRequest, stream: bool = False
                                         ) -> AsyncGenerator[LlmResponse, None]:
            SEEN.append(json.dumps([c.model_dump(mode="json") for c in llm_request.contents]))
            answered = sum(1 for content in llm_request.contents
                           for part in content.parts or [] if part.function_response)
            turn = _turn(plan, answered, final)
            parts = [types.Part(text=turn)] if isinstance(turn, str) else [
                types.Part(function_call=types.FunctionCall(name=name, args=args, id=call_id))
                for call_id, (name, args) in turn]
            yield LlmResponse(
                content=types.Content(role="model", parts=parts),
                usage_metadata=types.GenerateContentResponseUsageMetadata(
                    prompt_token_count=10, candidates_token_count=5,
                    total_token_count=TOKENS_PER_TURN))

    return LlmAgent(name=name, model=PlanLlm(), instruction="Follow the plan.",
                    tools=list(tools))
