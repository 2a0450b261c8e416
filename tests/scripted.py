"""A tiny scripted OpenAI model for tests: a pure function of the conversation.

`script(agent_name, outputs)` returns what the model says next, where `outputs` maps each
answered call's tool name to its output text. Return a list of `call(...)` / `say(...)` items.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agents import ModelResponse, Usage
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

Script = Callable[[str, dict[str, str]], list[Any]]


class ScriptedModel(Model):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls = 0

    async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                           **kwargs: Any) -> ModelResponse:
        self.calls += 1
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        names = {i.get("call_id"): i.get("name") for i in items
                 if isinstance(i, dict) and i.get("type") == "function_call"}
        outputs = {names[i["call_id"]]: str(i.get("output")) for i in items
                   if isinstance(i, dict) and i.get("type") == "function_call_output"}
        agent = (system_instructions or "").split(":", 1)[0]
        return ModelResponse(output=self.script(agent, outputs),
                             usage=Usage(requests=1, input_tokens=10, output_tokens=5,
                                         total_tokens=15),
                             response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
        yield


def call(name: str, call_id: str, **args: Any) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(id=f"fc_{call_id}", call_id=call_id, type="function_call",
                                    name=name, arguments=json.dumps(args), status="completed")


def say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )
