"""Conversions between the SDK's items and keel's journal payloads and events."""

from __future__ import annotations

import dataclasses
import functools
import json
import weakref
from typing import Any

from agents import Handoff, ModelResponse, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseReasoningItem,
)
from pydantic import BaseModel, PydanticSchemaGenerationError, TypeAdapter

from ...runtime._execution import ApprovalRequest, Execution
from ...runtime._json import jsonable
from ...runtime._store import NewEvent

_OUTPUT_ITEMS: TypeAdapter[list[ResponseOutputItem]] = TypeAdapter(list[ResponseOutputItem])


def encode(response: ModelResponse, agent: str) -> dict[str, Any]:
    """A model response as journal payload (JSON data)."""
    usage = response.usage
    return {
        "agent": agent,
        "output": [item.model_dump(mode="json", exclude_none=True) for item in response.output],
        "usage": {
            "requests": usage.requests,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
        "response_id": response.response_id,
    }


def decode(payload: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        output=_OUTPUT_ITEMS.validate_python(payload["output"]),
        usage=Usage(**payload["usage"]),
        response_id=payload.get("response_id"),
    )


def model_events(response: ModelResponse, agent: str, handoffs: list[Handoff]) -> list[NewEvent]:
    """Events of one model response. Handoffs get theirs when they happen."""
    names = {h.tool_name for h in handoffs}
    events: list[NewEvent] = []
    for item in response.output:
        if isinstance(item, ResponseReasoningItem):
            text = " ".join(s.text for s in item.summary)
            if text:
                events.append(NewEvent("thinking", agent, {"content": text}))
        elif isinstance(item, ResponseOutputMessage):
            text = "".join(str(getattr(c, "text", None) or getattr(c, "refusal", ""))
                           for c in item.content)
            events.append(NewEvent("message", agent, {"content": text}))
        elif isinstance(item, ResponseFunctionToolCall) and item.name not in names:
            args = parse_args(item.arguments)
            events.append(NewEvent("tool_call", agent, {
                "tool_name": item.name, "call_id": item.call_id,
                "args": args if isinstance(args, dict) else {"_raw": item.arguments},
            }))
    return events


def journaled_call_ids(execution: Execution) -> set[str]:
    """The call ids of every model turn in the journal of a resumed execution (none for a
    fresh one). A resume does not replay every turn: the nested run of an agent tool whose
    result is journaled never runs again, so its ids are known only from here, and a new turn
    that repeats one of them must be renamed as it was when that run was live."""
    return {item["call_id"] for payload in execution.payloads("model")
            for item in payload["output"] if item["type"] == "function_call"}


def unique_call_ids(response: ModelResponse, seen: set[str], step_key: str) -> ModelResponse:
    """The response with every call id unique within the execution, as the journal, the
    approvals and the idempotency keys need. Some providers repeat ids (`call_0` each turn)
    or leave them empty; those are renamed, deterministically, before the response is
    journaled, so the SDK, the model and every replay see the same new ids."""
    output = []
    for index, item in enumerate(response.output):
        if isinstance(item, ResponseFunctionToolCall):
            call_id = item.call_id or f"call_{index}"
            if call_id in seen:
                call_id = f"{call_id}@{step_key}:{index}"
            if call_id != item.call_id:
                item = item.model_copy(update={"call_id": call_id})
            seen.add(call_id)
        output.append(item)
    return dataclasses.replace(response, output=output)


def first_handoff(
    response: ModelResponse, handoffs: list[Handoff]
) -> ResponseFunctionToolCall | None:
    """The handoff call the SDK will perform (it performs the first one only)."""
    names = {h.tool_name for h in handoffs}
    return next((item for item in response.output
                 if isinstance(item, ResponseFunctionToolCall) and item.name in names), None)


def runs_unjournaled(response: ModelResponse, tools: list[Any], handoffs: list[Handoff]) -> bool:
    """Whether the response asks for something that runs outside keel's journal (a hosted,
    computer or MCP tool), besides messages, reasoning, handoffs and journaled tools."""
    names = {h.tool_name for h in handoffs} | {
        t.name for t in tools if getattr(t, "on_invoke_tool", None) in JOURNALED_INVOKES}
    return any(
        not isinstance(item, ResponseOutputMessage | ResponseReasoningItem)
        and not (isinstance(item, ResponseFunctionToolCall) and item.name in names)
        for item in response.output
    )


JOURNALED_INVOKES: weakref.WeakSet[Any] = weakref.WeakSet()
"""The `on_invoke_tool` functions of the tools keel wraps: their calls sync the journal."""


def as_items(input: Any) -> list[Any]:
    return [{"role": "user", "content": input}] if isinstance(input, str) else list(input)


def parse_args(arguments: str | None) -> Any:
    """Tool arguments as JSON data, or the raw text when they are not JSON."""
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def approval_request(item: Any) -> ApprovalRequest:
    """keel's request for an SDK interruption (a ToolApprovalItem)."""
    raw = item.raw_item
    return ApprovalRequest(
        call_id=raw.call_id,
        tool_name=item.tool_name or raw.name,
        args=parse_args(raw.arguments),
        agent=item.agent.name if item.agent is not None else None,
    )


def guardrail_event(result: Any, agent: str | None) -> NewEvent:
    output = result.output
    info = output.output_info
    return NewEvent(
        "guardrail_fail" if output.tripwire_triggered else "guardrail_pass",
        agent,
        {
            "guardrail_name": result.guardrail.get_name(),
            "content": None if info is None else str(jsonable(info)),
        },
    )


class ContextState:
    """The run's context object (a dict, a pydantic model or a dataclass), journaled with each
    tool result and handoff so that replaying them restores what they changed in it."""

    def __init__(self, context: Any, dataclass: TypeAdapter[Any] | None = None) -> None:
        self.context = context
        self.dataclass = dataclass  # saves and rebuilds a dataclass context

    @classmethod
    def of(cls, context: Any) -> ContextState | None:
        if isinstance(context, dict | BaseModel):
            return cls(context)
        adapter = _dataclass_adapter(context.__class__)
        return None if adapter is None else cls(context, adapter)

    def save(self) -> Any:
        if self.dataclass is not None:
            return self.dataclass.dump_python(self.context, mode="json")
        if isinstance(self.context, BaseModel):
            return self.context.model_dump(mode="json")
        return jsonable(self.context)

    def restore(self, data: Any) -> None:
        """Set the saved values on the user's object (the one its tools hold)."""
        if isinstance(self.context, dict):
            self.context.clear()
            self.context.update(data)
            return
        if self.dataclass is not None:
            restored = self.dataclass.validate_python(data)
            names = [f.name for f in dataclasses.fields(self.context)]
        else:
            restored = type(self.context).model_validate(data)
            names = list(type(self.context).model_fields)
        for name in names:
            setattr(self.context, name, getattr(restored, name))


@functools.cache
def _dataclass_adapter(cls: Any) -> TypeAdapter[Any] | None:
    """How a dataclass context is saved as JSON data and rebuilt; None for other types and
    for dataclasses with fields that are no data (a client, a connection): those are not
    journaled, as a context of any other type is not."""
    if not dataclasses.is_dataclass(cls):
        return None
    try:
        return TypeAdapter(cls)
    except PydanticSchemaGenerationError:
        return None
