"""What passes from one stage to the next: text by default, structured data for stages that
declare the structure they take.

A stage hands on its output as JSON data (`handover`): a LangGraph graph with a `messages`
channel hands on its last message's text (the agent's answer, not the whole conversation);
every other output goes on as it is (a structured output as its JSON data, a parallel stage's
as a dict keyed by branch name).

The next stage gets it in the form it takes (`stage_input`):
  - a Google ADK agent with an `input_schema` (as ADK finds it for an AgentTool): the data
    validated by that schema, as its JSON text (what ADK itself sends such an agent);
  - a LangGraph graph without a `messages` channel: the data as its input state (a dict; a
    JSON object in text is parsed);
  - any other agent: text (a string as it is, other data as its JSON text).
A pipeline's own input reaches its first stage the same way, so a string stays a string.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from .._errors import PipelineError
from ..runtime._json import dumps, jsonable, message_text
from ._build import AgentStage, Parallel, Pipeline, Stage

__all__ = ["handover", "stage_input"]


def handover(stage: Stage, output: Any) -> Any:
    """`output` of `stage` as the JSON data the next stage is given."""
    data = jsonable(output)
    if isinstance(stage, Pipeline):
        return handover(stage.stages[-1], data)
    if isinstance(stage, Parallel):
        return {b.name: handover(b, data.get(b.name)) for b in stage.branches}
    if stage.framework == "langgraph" and isinstance(data, dict):
        messages = data.get("messages")
        if isinstance(messages, list) and messages:
            return message_text(messages[-1])
    return data


def stage_input(stage: Stage, value: Any) -> Any:
    """`value` (a handover, or the pipeline's input) in the form `stage` takes it; a pipeline or
    parallel stage takes it as it is, and its own stages convert it."""
    if not isinstance(stage, AgentStage):
        return value
    if stage.framework == "adk" and (schema := _adk_input_schema(stage.agent)) is not None:
        return _validated(stage, schema, value)
    if stage.framework == "langgraph":
        if "messages" not in stage.agent.channels:
            return _state(stage, value)
        if isinstance(value, dict) and "messages" in value:
            return value  # already the graph's input state
    return value if isinstance(value, str) else dumps(value)


def _adk_input_schema(agent: Any) -> type[BaseModel] | None:
    """An LlmAgent's input_schema; a workflow agent's is its first sub-agent's (ADK's rule)."""
    root = getattr(agent, "root_agent", agent)  # an App
    while root is not None:
        schema = getattr(root, "input_schema", None)
        if schema is not None or hasattr(root, "input_schema"):
            return schema if isinstance(schema, type) else None
        subs = getattr(root, "sub_agents", None) or []
        root = subs[0] if subs else None
    return None


def _validated(stage: AgentStage, schema: type[BaseModel], value: Any) -> str:
    try:
        model = schema.model_validate_json(value) if isinstance(value, str) \
            else schema.model_validate(value)
    except ValidationError as exc:
        raise PipelineError(
            f"Stage {stage.name!r} takes input_schema {schema.__name__}, and the output "
            f"handed to it does not fit: {_first_error(exc)}. Give the stage before it an "
            "output with these fields (an OpenAI output_type, an ADK output_schema, a "
            "LangGraph state), or drop input_schema to pass text.") from exc
    return model.model_dump_json(exclude_none=True)


def _state(stage: AgentStage, value: Any) -> dict[str, Any]:
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            data = None
    if not isinstance(data, dict):
        raise PipelineError(
            f"Stage {stage.name!r} is a LangGraph graph without a messages channel, so it "
            f"takes its input state as a dict, and it was handed {_short(value)}. Give the "
            "stage before it a structured output (an OpenAI output_type, an ADK "
            "output_schema), or add a `messages` channel to the graph's state to take text.")
    return data


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the input"
    return f"{where}: {error['msg']}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
