"""Small agents of each framework for the pipeline tests, each answering by a plain function of
the text it was given (so a test sees exactly what each stage received).

    openai_agent("upper", str.upper)               an Agents SDK agent that says upper(text)
    graph_agent("lower", str.lower)                a LangGraph graph with a messages channel
    adk_agent("title", str.title)                  an ADK LlmAgent
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypedDict

from agents import Agent, ModelResponse, Usage
from agents.models.interface import Model
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import BaseModel

from scripted import say

Answer = Callable[[str], str]
SEEN: dict[str, list[str]] = {}
"""What each agent was given, by agent name, in this process (cleared by the tests)."""


class Ticket(BaseModel):
    customer: str
    priority: str


class TextModel(Model):
    def __init__(self, name: str, answer: Answer) -> None:
        self.name, self.answer = name, answer

    async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                           **kwargs: Any) -> ModelResponse:
        text = input if isinstance(input, str) else str(input[0]["content"])
        SEEN.setdefault(self.name, []).append(text)
        return ModelResponse(output=[say(self.answer(text))], response_id=None, usage=Usage(
            requests=1, input_tokens=3, output_tokens=2, total_tokens=5))

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
        yield


def openai_agent(name: str, answer: Answer, **options: Any) -> Agent[Any]:
    return Agent(name=name, model=TextModel(name, answer), instructions=name, **options)


def graph_agent(name: str, answer: Answer) -> Any:
    def node(state: MessagesState) -> dict[str, Any]:
        text = str(next(m.content for m in reversed(state["messages"])
                        if isinstance(m, HumanMessage)))
        SEEN.setdefault(name, []).append(text)
        return {"messages": [AIMessage(content=answer(text))]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", node)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(name=name)


class TicketState(TypedDict, total=False):
    customer: str
    priority: str
    reply: str


def ticket_graph(name: str) -> Any:
    """A graph whose state is structured (no messages): it replies from the ticket's fields."""

    def node(state: TicketState) -> dict[str, Any]:
        SEEN.setdefault(name, []).append(repr(dict(state)))
        return {"reply": f"{state['priority']} for {state['customer']}"}

    graph = StateGraph(TicketState)
    graph.add_node("reply", node)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    return graph.compile(name=name)


class TextLlm(BaseLlm):
    answer: Any = None

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        parts = [part for content in llm_request.contents for part in content.parts or []]
        text = next((part.text for part in parts if part.text), "") or ""
        SEEN.setdefault(self.model, []).append(text)
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=self.answer(text))]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=1, candidates_token_count=1, total_token_count=2))


def adk_agent(name: str, answer: Answer, **options: Any) -> LlmAgent:
    return LlmAgent(name=name, model=TextLlm(model=name, answer=answer), instruction=name,
                    **options)


class ToolCallingLlm(BaseLlm):
    """Calls its agent's one tool once (with call id `call_<model>`), then answers with the
    tool's result."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        parts = [part for content in llm_request.contents for part in content.parts or []]
        answered = next((part.function_response for part in parts if part.function_response),
                        None)
        if answered is None:
            (tool,) = llm_request.tools_dict
            reply = types.Part(function_call=types.FunctionCall(
                name=tool, id=f"call_{self.model}", args={"text": parts[0].text or ""}))
        else:
            reply = types.Part(text=f"{self.model}: {answered.response}")
        yield LlmResponse(
            content=types.Content(role="model", parts=[reply]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=1, candidates_token_count=1, total_token_count=2))


def adk_tool_agent(name: str, tool: Callable[[str], Any]) -> LlmAgent:
    """An ADK agent that calls `tool(text=...)` with what it was given, then reports it."""
    return LlmAgent(name=name, model=ToolCallingLlm(model=name), instruction=name,
                    tools=[tool])
