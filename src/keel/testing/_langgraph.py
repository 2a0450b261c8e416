"""Mock runs of LangGraph graphs: the script answers for every chat model in the graph.

A graph holds its chat models deep inside its nodes (bound with tools, in closures), so keel
answers at the one place every LangChain chat model passes through, `BaseChatModel`'s
generate step, and only while a mock run's script is current: elsewhere, and in other tasks,
models run as usually. The model's bound tools (the OpenAI tool format LangChain's provider
models bind) tell the script what the current agent has; `transfer_to_<agent>` tools are its
handoffs, as in LangGraph's supervisor and swarm libraries.
"""

from __future__ import annotations

import functools
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from ..adapters.langgraph._tools import agent_of
from ..runtime._json import jsonable
from ..runtime._supplied import current_supplier
from ._script import HANDOFF_PREFIX, AgentView, Script

__all__ = ["MockModelError", "run_options"]


class MockModelError(Exception):
    """What a chat model raises for `MockEvent.error(text)`."""


def run_options(script: Script, options: dict[str, Any]) -> dict[str, Any]:
    """Graph options are the user's own; the script reaches the models through the supplier."""
    _install()
    return options


@functools.cache
def _install() -> None:
    """Answer from the current mock run's script, if there is one (once per process)."""
    generate, agenerate = BaseChatModel._generate_with_cache, BaseChatModel._agenerate_with_cache

    def scripted_generate(self: BaseChatModel, messages: Any, stop: Any = None,
                          run_manager: Any = None, **kwargs: Any) -> ChatResult:
        script = _script()
        if script is None:
            return generate(self, messages, stop, run_manager, **kwargs)
        return _answer(script, run_manager, kwargs)

    async def scripted_agenerate(self: BaseChatModel, messages: Any, stop: Any = None,
                                 run_manager: Any = None, **kwargs: Any) -> ChatResult:
        script = _script()
        if script is None:
            return await agenerate(self, messages, stop, run_manager, **kwargs)
        return _answer(script, run_manager, kwargs)

    BaseChatModel._generate_with_cache = scripted_generate  # type: ignore[method-assign]
    BaseChatModel._agenerate_with_cache = scripted_agenerate  # type: ignore[method-assign]


def _script() -> Script | None:
    """The current mock run's script (as it is, or as ADK's stages of a pipeline ask it)."""
    supplier = current_supplier()
    script = getattr(supplier, "script", supplier)
    return script if isinstance(script, Script) else None


def _answer(script: Script, run_manager: Any, kwargs: dict[str, Any]) -> ChatResult:
    metadata = getattr(run_manager, "metadata", None) or {}
    tools = {_tool_name(tool): _tool_schema(tool) for tool in kwargs.get("tools") or ()}
    view = AgentView(
        name=agent_of({"configurable": {
            "checkpoint_ns": metadata.get("langgraph_checkpoint_ns", "")}})
        or "agent",
        tools={name: schema for name, schema in tools.items()
               if not name.startswith(HANDOFF_PREFIX)},
        handoffs={name.removeprefix(HANDOFF_PREFIX): name for name in tools
                  if name.startswith(HANDOFF_PREFIX)},
    )
    turn = script.next_turn(view)
    if turn.error is not None:
        raise MockModelError(turn.error)
    texts = [*turn.messages]
    if turn.done is not None:
        output = turn.done.output
        texts.append(output if isinstance(output, str) else str(jsonable(output)))
    message = AIMessage(
        content="\n".join(texts),
        tool_calls=[{"name": call.name, "args": call.args, "id": call.call_id,
                     "type": "tool_call"} for call in turn.calls],
        additional_kwargs={"reasoning": "\n".join(turn.thinking)} if turn.thinking else {},
    )
    return ChatResult(generations=[ChatGeneration(message=message)])


def _tool_schema(tool: Any) -> dict[str, Any] | None:
    """A bound tool's argument schema: OpenAI's "parameters", Anthropic's "input_schema", or a
    LangChain tool's own."""
    if isinstance(tool, dict):
        schema = (tool.get("function") or tool).get("parameters") or tool.get("input_schema")
        return schema if isinstance(schema, dict) else None
    schema = getattr(getattr(tool, "tool_call_schema", None), "model_json_schema", None)
    return schema() if callable(schema) else None


def _tool_name(tool: Any) -> str:
    """A bound tool's name, in the OpenAI format ({"function": {"name"}}) or Anthropic's."""
    if isinstance(tool, dict):
        return str((tool.get("function") or tool).get("name", ""))
    return str(getattr(tool, "name", ""))
