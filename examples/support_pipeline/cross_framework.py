"""The classifier -> responder -> escalation-checker pipeline, each stage on another framework:

    pipeline = keel.agent(classifier) >> responder >> escalation_checker

- `classifier`: an OpenAI Agents SDK agent with a structured output (`Classification`); the
  next stage receives it as its JSON text;
- `responder`: a LangGraph graph (a model node, and a ToolNode that checks the service
  status) that drafts the reply to the customer from the classification;
- `escalation_checker`: a Google ADK agent that decides from the draft whether engineering
  must be pulled in and, if so, files an internal note with a tool.

Each agent is plain code of its framework; keel only chains them. Offline every stage runs on a
deterministic scripted model, a pure function of what it is asked, so a fresh process carries
a crashed run on where it stopped. OPENAI_API_KEY switches the classifier and the responder to
a real model (the responder through langchain-openai), GOOGLE_API_KEY the escalation checker.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from agents import Agent, ModelResponse, Usage
from agents.models.interface import Model
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from pydantic import BaseModel

import keel

from .graph import INSTRUCTIONS, TICKET

__all__ = ["TICKET", "Classification", "classifier", "escalation_checker", "pipeline",
           "responder"]


class Classification(BaseModel):
    customer: str
    priority: str
    """P0 (outage), P1 (critical), P2 (degraded), P3 (minor)."""
    category: str
    product_area: str
    sentiment: str


def record(what: str, **details: Any) -> None:
    """Append one fsynced JSON line per model call and tool run to $PIPELINE_LEDGER, if set
    (the crash tests count what ran in which process)."""
    path = os.environ.get("PIPELINE_LEDGER")
    if path:
        with open(path, "a") as ledger:
            ledger.write(json.dumps({"what": what, "pid": os.getpid(), **details}) + "\n")
            ledger.flush()
            os.fsync(ledger.fileno())


# -- the classifier: OpenAI Agents SDK --------------------------------------------------------


def classify(ticket: str) -> Classification:
    urgent = bool(re.search(r"urgent|outage|sla|blocking", ticket, re.I))
    sender = re.search(r"From: ([^<\n]+?) <", ticket)
    company = re.search(r"Company: ([^(\n]+)", ticket)
    return Classification(
        customer=", ".join(m[1].strip() for m in (sender, company) if m) or "unknown",
        priority="P1" if urgent else "P3",
        category="performance" if re.search(r"slow|latency|time(s)? ?out", ticket, re.I)
        else "bug",
        product_area="batch API and dashboard" if "batch" in ticket.lower() else "web app",
        sentiment="frustrated" if urgent else "neutral",
    )


class ClassifierModel(Model):
    """Answers as the classifier's model would: the ticket's classification as JSON."""

    async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                           **kwargs: Any) -> ModelResponse:
        record("model", stage="classifier")
        ticket = input if isinstance(input, str) else str(input[0].get("content", ""))
        text = classify(ticket).model_dump_json()
        message = ResponseOutputMessage(
            id="msg_1", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])])
        return ModelResponse(output=[message], response_id=None, usage=Usage(
            requests=1, input_tokens=len(ticket.split()), output_tokens=len(text.split()),
            total_tokens=len(ticket.split()) + len(text.split())))

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("keel drives Runner.run, which does not stream")
        yield


classifier = Agent(
    name="classifier",
    model=os.environ.get("SUPPORT_MODEL", "gpt-4o") if os.environ.get("OPENAI_API_KEY")
    else ClassifierModel(),
    instructions=INSTRUCTIONS["classifier"],
    output_type=Classification,
)


# -- the responder: LangGraph ------------------------------------------------------------------


@tool
def check_service_status(region: str) -> str:
    """Check current service health for a region."""
    record("tool", name="check_service_status")
    return json.dumps({"region": region, "status": "degraded", "since": "13:05 UTC"})


class ResponderChatModel(BaseChatModel):
    """Answers as the responder's model would: checks the service status, then drafts."""

    @property
    def _llm_type(self) -> str:
        return "responder-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        record("model", stage="responder")
        asked = next(str(m.content) for m in messages if isinstance(m, HumanMessage))
        status = next((json.loads(str(m.content)) for m in messages
                       if isinstance(m, ToolMessage)), None)
        if status is None:
            reply = AIMessage(content="", id="responder-0", tool_calls=[{
                "name": "check_service_status", "args": {"region": "us-east"},
                "type": "tool_call", "id": "call_status"}])
        else:
            reply = AIMessage(content=draft(Classification.model_validate_json(asked), status),
                              id="responder-1")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def draft(tags: Classification, status: dict[str, Any]) -> str:
    name = tags.customer.split()[0] if tags.customer != "unknown" else "there"
    return (f"Hi {name}, thank you for the detail. The {tags.product_area} is slow on our side "
            f"({tags.priority}, {tags.category}): {status['region']} has been {status['status']} "
            f"since {status['since']}. Engineering is on it, and we will update you within "
            "the hour.")


def responder_graph(model: BaseChatModel) -> Any:
    tools = [check_service_status]
    bound = model.bind_tools(tools)

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke([("system", INSTRUCTIONS["responder"]),
                                           *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", answer)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name="responder")


def _responder_model() -> BaseChatModel:
    if not os.environ.get("OPENAI_API_KEY"):
        return ResponderChatModel()
    from langchain.chat_models import init_chat_model  # needs: pip install langchain-openai

    return init_chat_model(f"openai:{os.environ.get('SUPPORT_MODEL', 'gpt-4o')}")


responder = responder_graph(_responder_model())


# -- the escalation checker: Google ADK --------------------------------------------------------


def add_internal_note(note: str) -> dict[str, Any]:
    """Add a private note on the ticket for the engineering team."""
    record("tool", name="add_internal_note")
    return {"status": "noted", "note": note}


class EscalationLlm(BaseLlm):
    """Answers as the escalation checker's model would: files a note for urgent drafts."""

    model: str = "escalation-scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        record("model", stage="escalation_checker")
        parts = [part for content in llm_request.contents for part in content.parts or []]
        draft_text = next((part.text for part in parts if part.text), "") or ""
        noted = any(part.function_response for part in parts)
        urgent = re.search(r"\b(P0|P1)\b", draft_text)
        if urgent and not noted:
            reply = types.Part(function_call=types.FunctionCall(
                name="add_internal_note", id="call_note", args={
                    "note": f"{urgent[1]} performance regression reported by an enterprise "
                            "customer; investigate US-East API latency."}))
        elif urgent:
            reply = types.Part(text="Escalate: yes. Customer-facing latency on the batch API "
                                    "with an SLA at risk; internal note filed for engineering.")
        else:
            reply = types.Part(text="Escalate: no. Support can handle it.")
        yield LlmResponse(content=types.Content(role="model", parts=[reply]),
                          usage_metadata=types.GenerateContentResponseUsageMetadata(
                              prompt_token_count=len(draft_text.split()),
                              candidates_token_count=12,
                              total_token_count=len(draft_text.split()) + 12))


escalation_checker = LlmAgent(
    name="escalation_checker",
    model="gemini-2.5-flash" if os.environ.get("GOOGLE_API_KEY") else EscalationLlm(),
    instruction=INSTRUCTIONS["escalation_checker"],
    tools=[add_internal_note],
)


pipeline = keel.agent(classifier) >> responder >> escalation_checker
