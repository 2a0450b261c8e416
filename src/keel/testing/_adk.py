"""Mock runs of Google ADK agents: the script answers every model call, through keel's plugin.

keel's ADK plugin asks the current supplier for a model response before it calls a model
(`model_response`); in a mock run the supplier is this wrapper around the script, so no model
of the agent tree is called. The current agent's tools and transfer targets come from the
request ADK built for it.
"""

from __future__ import annotations

import json
from typing import Any

from google.adk.models.llm_response import LlmResponse
from google.genai import types

from ..adapters.adk._messages import SCRIPTED_MESSAGE
from ..runtime._json import jsonable
from ._script import AgentView, Script

__all__ = ["MockModelError", "run_options", "supplier"]

_TRANSFER = "transfer_to_agent"


class MockModelError(Exception):
    """What a model call raises for `MockEvent.error(text)`."""


def run_options(script: Script, options: dict[str, Any]) -> dict[str, Any]:
    return options


def supplier(script: Script) -> _AdkScript:
    return _AdkScript(script)


class _AdkScript:
    """The script as keel's ADK plugin asks it: results and guardrails, and model responses."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def tool_result(self, call_id: str) -> tuple[bool, Any]:
        return self.script.tool_result(call_id)

    def guardrail(self, name: str) -> tuple[bool, str] | None:
        return self.script.guardrail(name)

    def model_response(self, agent: str, request: Any) -> LlmResponse:
        tools = dict(request.tools_dict)
        transfer = tools.pop(_TRANSFER, None)
        targets = getattr(transfer, "_agent_names", None) or []
        turn = self.script.next_turn(AgentView(
            name=agent, tools={name: _schema(tool) for name, tool in tools.items()},
            handoffs=dict.fromkeys(targets, _TRANSFER)))
        if turn.error is not None:
            raise MockModelError(turn.error)
        parts = [types.Part(text=text, thought=True) for text in turn.thinking]
        texts = [*turn.messages]
        if turn.done is not None:
            output = turn.done.output
            texts.append(output if isinstance(output, str) else json.dumps(jsonable(output)))
        # Apart, as the OpenAI mock's message items are: the last is the answer.
        parts += [types.Part(text=text, part_metadata={SCRIPTED_MESSAGE: True})
                  for text in texts]
        parts += [types.Part(function_call=types.FunctionCall(
            name=call.name, id=call.call_id,
            args={"agent_name": call.handoff_to} if call.handoff_to else call.args))
            for call in turn.calls]
        return LlmResponse(content=types.Content(role="model", parts=parts))


def _schema(tool: Any) -> dict[str, Any] | None:
    """The JSON schema of a tool's arguments, from the declaration ADK gives the model."""
    declaration = tool._get_declaration()
    if declaration is None:
        return None
    if declaration.parameters_json_schema:
        return dict(declaration.parameters_json_schema)
    parameters = declaration.parameters
    return parameters.model_dump(exclude_none=True) if parameters is not None else None
