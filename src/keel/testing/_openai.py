"""Mock runs of OpenAI Agents SDK agents: one scripted `Model` answers for every agent.

The SDK runs as usual (handoffs, tools, output types, approvals); only the model is replaced,
through `RunConfig.model`, which the SDK uses for every agent of the run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Handoff, ModelBehaviorError, ModelResponse, RunConfig, Usage
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)
from openai.types.responses.response_reasoning_item import Summary
from pydantic import TypeAdapter, ValidationError

from ..adapters.openai._journal import current_journal
from ..runtime._json import jsonable
from ._script import AgentView, MockEvent, MockScriptError, Script

__all__ = ["MockModelError", "run_options"]


class MockModelError(Exception):
    """What the model raises for `MockEvent.error(text)`."""


def run_options(script: Script, options: dict[str, Any]) -> dict[str, Any]:
    """The user's run options with the scripted model in the user's RunConfig."""
    run_config = options.get("run_config") or RunConfig()
    return {**options, "run_config": dataclasses.replace(run_config, model=MockModel(script))}


class MockModel(Model):
    """Answers each model call with the script's next turn for the calling agent."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: list[Handoff], tracing: Any, **kwargs: Any,
    ) -> ModelResponse:
        agent = current_journal().agent_name or "?"
        view = AgentView(
            name=agent,
            tools={str(getattr(tool, "name", type(tool).__name__)):
                   getattr(tool, "params_json_schema", None) for tool in tools},
            handoffs={h.agent_name: h.tool_name for h in handoffs},
        )
        turn = self.script.next_turn(view)
        if turn.error is not None:
            raise MockModelError(turn.error)
        output: list[Any] = [
            ResponseReasoningItem(id=f"rs_{i}", type="reasoning",
                                  summary=[Summary(text=text, type="summary_text")])
            for i, text in enumerate(turn.thinking)
        ]
        texts = [*turn.messages]
        if turn.done is not None:
            try:
                texts.append(_final_text(turn.done, output_schema, agent))
            except MockScriptError as exc:
                raise self.script.fail(exc) from None
        output += [_message(text) for text in texts]
        output += [
            ResponseFunctionToolCall(id=f"fc_{call.call_id}", call_id=call.call_id,
                                     type="function_call", name=call.name,
                                     arguments=json.dumps(jsonable(call.args)),
                                     status="completed")
            for call in turn.calls
        ]
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("keel drives Runner.run, which does not stream")
        yield  # pragma: no cover


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_mock", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def _final_text(event: MockEvent, schema: Any, agent: str) -> str:
    """`done`'s output as the text the model would send, checked against the output type."""
    if schema is None or schema.is_plain_text():
        return event.output if isinstance(event.output, str) else json.dumps(
            jsonable(event.output))
    data = jsonable(event.output)
    try:  # pydantic says precisely what does not fit
        TypeAdapter(schema.output_type).validate_python(data)
    except ValidationError as exc:
        raise MockScriptError(
            f"{event} does not fit the output type of {agent!r} ({schema.name()}): {exc}"
        ) from None
    # The SDK wraps output types that are not JSON objects in {"response": ...}.
    for candidate in (data, {"response": data}):
        text = json.dumps(candidate)
        try:
            schema.validate_json(text)
            return text
        except ModelBehaviorError:
            continue
    raise MockScriptError(f"{event} does not fit the output type of {agent!r} ({schema.name()}).")
