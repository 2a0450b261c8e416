"""The OpenAI Agents SDK adapter.

keel runs the user's agent with `Runner.run`, unchanged, on a private copy of the agent graph:
every agent is cloned with its function tools wrapped (journal, approvals, idempotency key) and
its handoffs pointed at the clones. Models are journaled at the model boundary: the user's
`RunConfig.model` and `model_provider` are wrapped, never replaced, so a LiteLLM or Azure
provider stays in charge. On resume the run starts again from its input and every journaled
model turn and tool result is answered from the journal.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    Handoff,
    InputGuardrailTripwireTriggered,
    ModelResponse,
    OutputGuardrailTripwireTriggered,
    RunConfig,
    Runner,
    Usage,
    function_tool,
    handoff,
)
from agents.models.interface import Model, ModelProvider
from agents.run_config import CallModelData, ModelInputData
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseReasoningItem,
)
from pydantic import BaseModel, TypeAdapter

from .._errors import ReplayMismatchError, _Suspended
from .._tool import ToolSpec, tool_spec
from ..runtime._execution import ApprovalRequest, Execution, rejection_message
from ..runtime._json import jsonable
from ..runtime._store import NewEvent
from . import Outcome, RunOptions

__all__ = ["ADAPTER", "KeelFunctionTool", "OpenAIAdapter", "as_function_tool"]

_OUTPUT_ITEMS: TypeAdapter[list[ResponseOutputItem]] = TypeAdapter(list[ResponseOutputItem])


class OpenAIAdapter:
    framework = "openai"

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, Agent)

    def agent_name(self, agent: Any) -> str:
        return str(agent.name)

    def output_type(self, agent: Any) -> type | None:
        output_type = agent.output_type
        return output_type if isinstance(output_type, type) and output_type is not str else None

    async def execute(
        self, execution: Execution, agent: Any, input: Any, options: RunOptions
    ) -> Outcome:
        journal = _Journal(execution)
        graph = _AgentGraph(journal)
        root = graph.clone(agent)
        run_config = journal.compose(options.run_config or RunConfig())
        try:
            if options.max_turns is None:  # the SDK's own default applies
                result = await Runner.run(root, input, run_config=run_config,
                                          context=options.context)
            else:
                result = await Runner.run(root, input, run_config=run_config,
                                          context=options.context, max_turns=options.max_turns)
        except (InputGuardrailTripwireTriggered, OutputGuardrailTripwireTriggered) as exc:
            execution.emit([_guardrail_event(exc.guardrail_result, journal.agent_name)])
            raise
        if result.interruptions:
            execution.suspend([_approval_request(item) for item in result.interruptions])
            return Outcome("waiting")
        guardrails = [*result.input_guardrail_results, *result.output_guardrail_results]
        return Outcome(
            "completed",
            output=result.final_output,
            agent=result.last_agent.name,
            output_type=self.output_type(result.last_agent),
            events=[_guardrail_event(g, result.last_agent.name) for g in guardrails],
        )


@dataclasses.dataclass
class KeelFunctionTool(FunctionTool):
    """A FunctionTool made by `@keel.tool`; calling it calls the function."""

    keel_spec: ToolSpec | None = dataclasses.field(default=None, kw_only=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.keel_spec is None or self.keel_spec.func is None:
            raise TypeError(f"The tool {self.name!r} wraps no Python function to call.")
        return self.keel_spec.func(*args, **kwargs)


def as_function_tool(target: Any, spec: ToolSpec) -> KeelFunctionTool:
    """`target` (a function or a FunctionTool) as a FunctionTool carrying keel's spec."""
    base = target if isinstance(target, FunctionTool) else function_tool(target)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    fields.pop("keel_spec", None)
    return KeelFunctionTool(**fields, keel_spec=spec)


class _Journal:
    """Per-run state shared by the wrapped models and tools of one execution."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.agent: Any = None  # the agent whose model call comes next (set by the filter)
        self.handoff_call: ResponseFunctionToolCall | None = None  # from the last model turn
        self._models: dict[int, _JournaledModel] = {}

    @property
    def agent_name(self) -> str | None:
        return None if self.agent is None else str(self.agent.name)

    def wrap_model(self, model: Model) -> _JournaledModel:
        if isinstance(model, _JournaledModel):
            return model
        wrapped = self._models.get(id(model))
        if wrapped is None:
            wrapped = self._models[id(model)] = _JournaledModel(model, self)
        return wrapped

    def compose(self, run_config: RunConfig) -> RunConfig:
        """The user's RunConfig with keel's wrappers around its model, provider and filter."""
        user_filter = run_config.call_model_input_filter

        async def note_agent(data: CallModelData[Any]) -> ModelInputData:
            self.agent = data.agent
            if user_filter is None:
                return data.model_data
            filtered = user_filter(data)
            return await filtered if inspect.isawaitable(filtered) else filtered

        changes: dict[str, Any] = {
            "model_provider": _JournaledProvider(run_config.model_provider, self),
            "call_model_input_filter": note_agent,
        }
        if isinstance(run_config.model, Model):
            changes["model"] = self.wrap_model(run_config.model)
        return dataclasses.replace(run_config, **changes)

    async def model_turn(
        self, call: Callable[[Any], Awaitable[ModelResponse]], input: Any,
        handoffs: list[Handoff],
    ) -> ModelResponse:
        """Answer a model turn from the journal, or call the model and journal its response.

        A gated handoff in the response pauses the run. A rejected one is taken out of the
        conversation: the model is asked again, told the reviewer's reason.
        """
        ex = self.execution
        key = f"model:{ex.model_turn}"
        response = await self._journaled(key, partial(call, input), handoffs)
        while (gate := _first_handoff(response, handoffs)) is not None and \
                ex.rules.may_gate(gate.name, flagged=False):
            args = _parse_args(gate.arguments)
            verdict = ex.verdict(gate.call_id, gate.name, args if isinstance(args, dict) else {},
                                 agent=self.agent_name, kind="handoff")
            ex.store_decision(gate.call_id, gate.name, self.agent_name, args, verdict, "handoff")
            if verdict.action == "ask":
                ex.suspend([ApprovalRequest(gate.call_id, gate.name, args, self.agent_name,
                                            kind="handoff")])
                raise _Suspended
            if verdict.action != "reject":
                break
            input = [*_as_items(input), gate.model_dump(mode="json", exclude_none=True),
                     {"type": "function_call_output", "call_id": gate.call_id,
                      "output": rejection_message(gate.name, verdict.reason)}]
            key = f"{key}:after-rejection"
            response = await self._journaled(key, partial(call, input), handoffs)
        self.handoff_call = _first_handoff(response, handoffs)
        ex.model_turn += 1
        return response

    async def hand_off(
        self, context: Any, input_json: str, invoke: Callable[[Any, str], Awaitable[Any]],
        target: Any,
    ) -> Any:
        """Perform the handoff the last model turn asked for, once: on replay the user's
        `on_handoff` does not run again and the context it changed is restored."""
        ex = self.execution
        call_id = self.handoff_call.call_id if self.handoff_call else f"turn-{ex.model_turn}"
        key = f"handoff:{call_id}"
        state = _ContextState.of(context.context)
        stored = ex.recorded(key)
        if stored is not None:
            if state is not None and "state" in stored:
                state.restore(stored["state"])
            return target if target is not None else await invoke(context, input_json)
        agent = await invoke(context, input_json)
        payload: dict[str, Any] = {"target": agent.name}
        if state is not None:
            payload["state"] = state.save()
        ex.record(key, kind="handoff", name=agent.name, payload=payload,
                  events=[NewEvent("handoff", self.agent_name,
                                   {"target": agent.name, "call_id": call_id})])
        return agent

    async def _journaled(
        self, key: str, call: Callable[[], Awaitable[ModelResponse]], handoffs: list[Handoff]
    ) -> ModelResponse:
        ex = self.execution
        agent = self.agent_name or "?"
        stored = ex.recorded(key)
        if stored is not None:
            if stored["agent"] != agent:
                raise ReplayMismatchError(
                    f"Execution {ex.id!r}: the journal recorded {key} for agent "
                    f"{stored['agent']!r}, but the agent graph now asks {agent!r}. The agent "
                    "code changed since the run started; resume it with the code it ran with."
                )
            return _decode(stored)
        ex.check_cancelled()
        response = await call()
        ex.record(key, kind="model", name=agent, payload=_encode(response, agent),
                  events=_model_events(response, agent, handoffs))
        return response


class _JournaledModel(Model):
    """Wraps the model the SDK resolved; journals its responses and replays them."""

    def __init__(self, inner: Model, journal: _Journal) -> None:
        self.inner = inner
        self.journal = journal

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: Any, tracing: Any, **kwargs: Any,
    ) -> ModelResponse:
        return await self.journal.model_turn(
            lambda model_input: self.inner.get_response(
                system_instructions, model_input, model_settings, tools, output_schema,
                handoffs, tracing, **kwargs,
            ),
            input,
            handoffs,
        )

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        # keel drives Runner.run, which never streams; answer a streamed caller in one piece.
        response = await self.get_response(*args, **kwargs)
        yield ResponseCompletedEvent(
            type="response.completed",
            sequence_number=0,
            response=Response(
                id=response.response_id or "keel-replay", created_at=0, model="keel",
                object="response", output=response.output, tool_choice="auto", tools=[],
                parallel_tool_calls=True, status="completed",
            ),
        )

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)

    async def close(self) -> None:
        await self.inner.close()


class _JournaledProvider(ModelProvider):
    """The user's provider, with every model it yields journaled."""

    def __init__(self, inner: ModelProvider, journal: _Journal) -> None:
        self.inner = inner
        self.journal = journal

    def get_model(self, model_name: str | None) -> Model:
        return self.journal.wrap_model(self.inner.get_model(model_name))

    async def aclose(self) -> None:
        await self.inner.aclose()


class _AgentGraph:
    """Clones the agent graph once per run with keel's tool wrappers; the user's stays as is."""

    def __init__(self, journal: _Journal) -> None:
        self.journal = journal
        self._clones: dict[int, Agent[Any]] = {}
        self._originals: list[Agent[Any]] = []  # keep ids valid while cloning

    def clone(self, agent: Agent[Any]) -> Agent[Any]:
        existing = self._clones.get(id(agent))
        if existing is not None:
            return existing
        self._originals.append(agent)
        changes: dict[str, Any] = {
            "tools": [self._tool(t, agent.name) for t in agent.tools],
            "handoffs": list(agent.handoffs),
        }
        if isinstance(agent.model, Model):
            changes["model"] = self.journal.wrap_model(agent.model)
        clone = agent.clone(**changes)
        self._clones[id(agent)] = clone
        clone.handoffs = [self._handoff(h) for h in agent.handoffs]
        return clone

    def _handoff(self, item: Agent[Any] | Handoff[Any, Any]) -> Handoff[Any, Any]:
        spec = handoff(item) if isinstance(item, Agent) else item  # as the SDK does for agents
        original = spec.on_invoke_handoff
        target = spec._agent_ref() if spec._agent_ref is not None else None

        async def invoke(context: Any, input_json: str) -> Agent[Any]:
            return self.clone(await self.journal.hand_off(context, input_json, original, target))

        wrapped = dataclasses.replace(spec, on_invoke_handoff=invoke)
        if isinstance(target, Agent):
            wrapped._agent_ref = weakref.ref(self.clone(target))
        return wrapped

    def _tool(self, tool: Any, agent_name: str) -> Any:
        spec = tool_spec(tool)
        if spec is not None and spec.func is not None and not isinstance(tool, FunctionTool):
            tool = function_tool(spec.func)  # a plain function marked with @keel.tool
        if not isinstance(tool, FunctionTool):
            return tool  # hosted and MCP tools run as the SDK runs them
        return _wrap_tool(tool, spec, self.journal, agent_name)


def _wrap_tool(tool: FunctionTool, spec: ToolSpec | None, journal: _Journal, agent: str) -> Any:
    ex = journal.execution
    native = tool.needs_approval
    flag = "@keel.tool(approval_required=True)" if spec and spec.approval_required else None
    gated = ex.rules.may_gate(tool.name, flagged=flag is not None or native is not False)
    invoke_original = tool.on_invoke_tool

    async def needs_approval(context: Any, params: dict[str, Any], call_id: str) -> bool:
        flagged_by = flag
        if flagged_by is None and native is not False:
            asked: Any = native(context, params, call_id) if callable(native) else native
            if inspect.isawaitable(asked):
                asked = await asked
            flagged_by = "needs_approval" if asked else None
        verdict = ex.verdict(call_id, tool.name, params, agent=agent, flagged_by=flagged_by)
        return verdict.action == "ask"

    async def on_invoke_tool(context: Any, arguments: str) -> Any:
        call_id = context.tool_call_id
        try:
            context.idempotency_key = f"{ex.id}:{call_id}"
        except AttributeError:  # a context type that refuses new attributes
            pass
        return await ex.run_tool(
            call_id=call_id,
            tool_name=tool.name,
            agent=agent,
            args=_parse_args(arguments),
            invoke=lambda: invoke_original(context, arguments),
            flagged_by=flag,
            gated=gated,
            state=_ContextState.of(context.context),
        )

    changes: dict[str, Any] = {"on_invoke_tool": on_invoke_tool}
    if gated:
        changes["needs_approval"] = needs_approval
    return dataclasses.replace(tool, **changes)


class _ContextState:
    """The run's context object (a dict or a pydantic model), journaled with each tool result
    so that replaying a tool call restores what the tool changed in it."""

    def __init__(self, context: dict[str, Any] | BaseModel) -> None:
        self.context = context

    @classmethod
    def of(cls, context: Any) -> _ContextState | None:
        return cls(context) if isinstance(context, dict | BaseModel) else None

    def save(self) -> Any:
        if isinstance(self.context, BaseModel):
            return self.context.model_dump(mode="json")
        return jsonable(self.context)

    def restore(self, data: Any) -> None:
        if isinstance(self.context, BaseModel):
            restored = type(self.context).model_validate(data)
            for name in type(self.context).model_fields:
                setattr(self.context, name, getattr(restored, name))
        else:
            self.context.clear()
            self.context.update(data)


def _encode(response: ModelResponse, agent: str) -> dict[str, Any]:
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


def _decode(payload: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        output=_OUTPUT_ITEMS.validate_python(payload["output"]),
        usage=Usage(**payload["usage"]),
        response_id=payload.get("response_id"),
    )


def _model_events(response: ModelResponse, agent: str, handoffs: list[Handoff]) -> list[NewEvent]:
    """Events of one model response. Handoffs get theirs when they happen (`hand_off`)."""
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
            args = _parse_args(item.arguments)
            events.append(NewEvent("tool_call", agent, {
                "tool_name": item.name, "call_id": item.call_id,
                "args": args if isinstance(args, dict) else {"_raw": item.arguments},
            }))
    return events


def _first_handoff(
    response: ModelResponse, handoffs: list[Handoff]
) -> ResponseFunctionToolCall | None:
    names = {h.tool_name for h in handoffs}
    return next((item for item in response.output
                 if isinstance(item, ResponseFunctionToolCall) and item.name in names), None)


def _as_items(input: Any) -> list[Any]:
    return [{"role": "user", "content": input}] if isinstance(input, str) else list(input)


def _parse_args(arguments: str | None) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def _approval_request(item: Any) -> ApprovalRequest:
    raw = item.raw_item
    return ApprovalRequest(
        call_id=raw.call_id,
        tool_name=item.tool_name or raw.name,
        args=_parse_args(raw.arguments),
        agent=item.agent.name if item.agent is not None else None,
    )


def _guardrail_event(result: Any, agent: str | None) -> NewEvent:
    output = result.output
    failed = bool(output.tripwire_triggered)
    info = output.output_info
    return NewEvent(
        "guardrail_fail" if failed else "guardrail_pass",
        agent,
        {
            "guardrail_name": result.guardrail.get_name(),
            "content": None if info is None else str(jsonable(info)),
        },
    )


ADAPTER = OpenAIAdapter()
