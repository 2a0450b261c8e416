"""Journaling at the model boundary, for one run at a time.

The wrapped models and tools are built once per agent graph and shared by runs; each call finds
its run's `_Journal` in a context variable, which asyncio copies into every task the SDK starts.
An `agent.as_tool()` call runs a nested run under its own `_Journal`, whose step keys are scoped
by the call's id: nested runs of one turn may interleave, and each replays exactly.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from agents import Handoff, ModelResponse, RunConfig
from agents.models.interface import Model, ModelProvider
from agents.run_config import CallModelData, ModelInputData
from openai.types.responses import Response, ResponseCompletedEvent, ResponseFunctionToolCall

from ..._errors import KeelError, ReplayMismatchError, _Suspended
from ...runtime._execution import ApprovalRequest, Execution, rejection_message
from ...runtime._store import NewEvent
from ._items import (
    ContextState,
    as_items,
    decode,
    encode,
    first_handoff,
    journaled_call_ids,
    model_events,
    parse_args,
    runs_unjournaled,
    unique_call_ids,
)

__all__ = ["JournaledModel", "current_journal", "journaled", "journaling"]

_MAX_REJECTED_HANDOFFS = 3
_CURRENT: ContextVar[_Journal | None] = ContextVar("keel_openai_journal", default=None)


def current_journal() -> _Journal:
    journal = _CURRENT.get()
    if journal is None:
        raise KeelError("keel's wrapped agents run only inside a keel execution.")
    return journal


@contextmanager
def journaling(execution: Execution, run_config: RunConfig) -> Iterator[RunConfig]:
    """Make `execution` the current run; yields the user's RunConfig composed with keel's."""
    token = _CURRENT.set(_Journal(execution))
    try:
        yield journaled(run_config)
    finally:
        _CURRENT.reset(token)


def journaled(run_config: RunConfig) -> RunConfig:
    """The user's RunConfig with keel's wrappers around its model, provider and filter, which
    journal into whichever run (or nested run) is current when they are called."""
    user_filter = run_config.call_model_input_filter

    async def note_agent(data: CallModelData[Any]) -> ModelInputData:
        current_journal().agent = data.agent
        if user_filter is None:
            return data.model_data
        filtered = user_filter(data)
        return await filtered if inspect.isawaitable(filtered) else filtered

    changes: dict[str, Any] = {
        "model_provider": _JournaledProvider(run_config.model_provider),
        "call_model_input_filter": note_agent,
    }
    if isinstance(run_config.model, Model) and not isinstance(run_config.model, JournaledModel):
        changes["model"] = JournaledModel(run_config.model)
    return dataclasses.replace(run_config, **changes)


class _Journal:
    """Per-run state: the execution, and which agent the next model call is for."""

    def __init__(self, execution: Execution, parent: _Journal | None = None,
                 scope: str = "") -> None:
        self.execution = execution
        self.scope = scope  # "" for the run, "<call id>/" for a nested run, in step keys
        self.agent: Any = None  # the agent whose model call comes next (set by the filter)
        self.handoff_call: ResponseFunctionToolCall | None = None  # from the last model turn
        self.decided: Sequence[dict[str, Any]] = []  # a policy's decision on that handoff
        # Shared with nested runs: call ids are unique in the execution; a nested run the SDK
        # resumes (after a decision) goes on counting its turns where it stopped.
        self.call_ids: set[str] = parent.call_ids if parent else journaled_call_ids(execution)
        self.turns: dict[str, int] = parent.turns if parent else {}
        self._models: dict[int, JournaledModel] = parent._models if parent else {}

    @property
    def agent_name(self) -> str | None:
        return None if self.agent is None else str(self.agent.name)

    @contextmanager
    def nested(self, call_id: str) -> Iterator[None]:
        """Journal the nested run of the agent tool called as `call_id` in its own scope."""
        token = _CURRENT.set(_Journal(self.execution, self, f"{self.scope}{call_id}/"))
        try:
            yield
        finally:
            _CURRENT.reset(token)

    def wrap_model(self, model: Model) -> Model:
        if isinstance(model, JournaledModel):
            return model
        wrapped = self._models.get(id(model))
        if wrapped is None:
            wrapped = self._models[id(model)] = JournaledModel(model)
        return wrapped

    async def model_turn(
        self, call: Callable[[Any], Awaitable[ModelResponse]], input: Any,
        tools: list[Any], handoffs: list[Handoff],
    ) -> ModelResponse:
        """Answer a model turn from the journal, or call the model and journal its response.

        A gated handoff in the response pauses the run. A rejected one is taken out of the
        conversation: the model is asked again, told the reviewer's reason.
        """
        ex = self.execution
        turn = self.turns.get(self.scope, 0)
        key = f"model:{self.scope}{turn}"
        response = await self._journaled(key, partial(call, input), tools, handoffs)
        rejected = 0
        while (gate := first_handoff(response, handoffs)) is not None and \
                ex.rules.may_gate(gate.name, flagged=False):
            args = parse_args(gate.arguments)
            verdict = ex.verdict(gate.call_id, gate.name, args if isinstance(args, dict) else {},
                                 agent=self.agent_name, kind="handoff")
            decided = ex.policy_rows(gate.call_id, gate.name, self.agent_name, args, verdict,
                                     "handoff")
            if verdict.action == "ask":
                ex.suspend([ApprovalRequest(gate.call_id, gate.name, args, self.agent_name,
                                            kind="handoff")])
                raise _Suspended
            if verdict.action != "reject":
                self.decided = decided  # committed with the handoff step
                break
            rejected += 1
            if rejected > _MAX_REJECTED_HANDOFFS:
                raise KeelError(
                    f"The model asked for a handoff ({gate.name}) again after "
                    f"{_MAX_REJECTED_HANDOFFS} rejections in one turn; the run stops here. "
                    "Tell the agent in its instructions what to do when a handoff is refused."
                )
            input = [*as_items(input), gate.model_dump(mode="json", exclude_none=True),
                     {"type": "function_call_output", "call_id": gate.call_id,
                      "output": rejection_message(gate.name, verdict.reason)}]
            key = f"{key}:after-rejection"
            response = await self._journaled(key, partial(call, input), tools, handoffs,
                                             decided)
        self.handoff_call = first_handoff(response, handoffs)
        self.turns[self.scope] = turn + 1
        return response

    async def hand_off(
        self, context: Any, input_json: str, invoke: Callable[[Any, str], Awaitable[Any]],
        target: Any,
    ) -> Any:
        """Perform the handoff the last model turn asked for, once: on replay the user's
        `on_handoff` does not run again and the context it changed is restored."""
        ex = self.execution
        call_id = (self.handoff_call.call_id if self.handoff_call
                   else f"turn-{self.scope}{self.turns.get(self.scope, 0)}")
        key = f"handoff:{call_id}"
        state = ContextState.of(context.context)
        stored = ex.recorded(key)
        if stored is not None:
            if state is not None and "state" in stored:
                state.restore(stored["state"])
            return target if target is not None else await invoke(context, input_json)
        agent = await invoke(context, input_json)
        payload: dict[str, Any] = {"target": agent.name}
        if state is not None:
            payload["state"] = state.save()
        ex.record(key, kind="handoff", name=agent.name, payload=payload, approvals=self.decided,
                  events=[NewEvent("handoff", self.agent_name,
                                   {"target": agent.name, "call_id": call_id})])
        self.decided = []
        return agent

    async def _journaled(
        self, key: str, call: Callable[[], Awaitable[ModelResponse]], tools: list[Any],
        handoffs: list[Handoff], decided: Sequence[dict[str, Any]] = (),
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
            return decode(stored)
        ex.before_model_call()
        ex.flush()  # what earlier turns journaled is kept before the model is asked again
        response = unique_call_ids(await call(), self.call_ids, key)
        # A turn commits with the run's next write: its handoff, its completion, or the
        # durable one before its first tool runs (with that tool's intent, if it has one).
        # Only what runs outside keel's journal needs the turn on disk at once.
        unjournaled = runs_unjournaled(response, tools, handoffs)
        ex.record(key, kind="model", name=agent, payload=encode(response, agent),
                  events=model_events(response, agent, handoffs), approvals=decided,
                  defer=not unjournaled, durable=unjournaled)
        return response


class JournaledModel(Model):
    """Wraps a model the SDK resolved; journals its responses and replays them."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: Any, tracing: Any, **kwargs: Any,
    ) -> ModelResponse:
        return await current_journal().model_turn(
            lambda model_input: self.inner.get_response(
                system_instructions, model_input, model_settings, tools, output_schema,
                handoffs, tracing, **kwargs,
            ),
            input,
            tools,
            handoffs,
        )

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
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

    def __init__(self, inner: ModelProvider) -> None:
        self.inner = inner

    def get_model(self, model_name: str | None) -> Model:
        return current_journal().wrap_model(self.inner.get_model(model_name))

    async def aclose(self) -> None:
        await self.inner.aclose()
