"""keel's ADK plugin: journals, replays and gates every model call and tool call of a run.

`before_model_callback` answers a journaled turn from the journal (the model is not asked
again; the agent's own model callbacks still run) and `after_model_callback` journals a new
one, with deterministic function-call ids (ADK invents random ones when the model gives
none). `before_tool_callback` returns a
journaled result (the tool does not run again), applying again what the tool did besides it
(a transfer, session state), and gates the call by keel's rules, `@keel.tool` and ADK's own
confirmations; `after_tool_callback` journals the result. ADK runs the calls of one model
response concurrently; those that must wait for a decision pause together, once the others
have finished (`Batch`). Agents starting are journaled events, so a replay does not announce
them twice.

An agent run inside a tool call (an `AgentTool`'s) is named in journal keys within that call
(`model:<call id>/<agent>:<turn>`): its turns are counted per call, so a key means the same
step whether or not the calls before it were replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any, NoReturn

from google.adk.agents import LlmAgent, ParallelAgent
from google.adk.models.llm_response import LlmResponse
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.adk.utils._callback_pipeline import _run_callbacks, _stop_on_truthy
from google.genai import types

from ..._errors import _Suspended
from ..._tool import tool_spec
from ...runtime._execution import STOPPING, ApprovalRequest, Execution, ToolRun, current_call
from ...runtime._json import jsonable
from ...runtime._store import NewEvent
from ...runtime._supplied import ModelSupplier, current_supplier
from ._batch import Batch
from ._messages import said

__all__ = ["KeelPlugin"]

_TRANSFER = "transfer_to_agent"


class KeelPlugin(BasePlugin):
    """Journals, replays and gates every model call and tool call of one execution."""

    def __init__(self, execution: Execution) -> None:
        super().__init__(name="keel")
        self.execution = execution
        self._turns: dict[str, int] = {}  # per agent: calls in one agent are sequential
        self._starts: dict[str, int] = {}  # per agent: how often it started in this run
        # Per tool call and branch: the model-driven agent that started last there.
        self._last_agent: dict[tuple[str | None, str | None], str] = {}
        self._pending: dict[str, str] = {}  # agent -> the journal key of its model call
        self._tools: dict[str, tuple[ToolRun, AbstractContextManager[None]]] = {}
        self._batches: dict[str, Batch] = {}  # call id -> the calls of its model response

    # -- agents ---------------------------------------------------------------------------

    async def before_agent_callback(self, *, agent: Any, callback_context: Any) -> None:
        """An agent starting is a `thinking` event, and a model-driven agent starting after
        another in the same branch is a `handoff` before it (a workflow agent's next step; a
        transfer announced it already; parallel branches and an agent a tool runs start
        afresh). Journaled with the run's next write, so a replay does not announce it again."""
        name = _scoped(agent.name)
        count = self._starts.get(name, 0)
        self._starts[name] = count + 1
        events, lane = [], _lane(callback_context)
        if isinstance(agent, LlmAgent):
            before = self._last_agent.get(lane)
            if before not in (None, agent.name):
                events.append(NewEvent("handoff", before, {"target": agent.name}))
            self._last_agent[lane] = agent.name
        elif isinstance(agent, ParallelAgent):  # what follows comes after all its branches
            self._last_agent.pop(lane, None)
        events.append(NewEvent("thinking", agent.name, {"content": agent.name}))
        key = f"agent:{name}:{count}"
        if self.execution.recorded(key) is None:
            self.execution.record(key, kind="agent", name=agent.name, payload={},
                                  events=events, defer=True)

    # -- model calls ----------------------------------------------------------------------

    async def before_model_callback(self, *, callback_context: Any,
                                    llm_request: Any) -> LlmResponse | None:
        agent, name = callback_context.agent_name, _scoped(callback_context.agent_name)
        turn = self._turns.get(name, 0)
        self._turns[name] = turn + 1
        key = self._pending[name] = f"model:{name}:{turn}"
        stored = self.execution.recorded(key)
        if stored is not None:
            await _called_before(callback_context, llm_request)
            return self._batched(await _called_back(
                callback_context, key, LlmResponse.model_validate(stored)))
        self.execution.before_model_call()
        self.execution.flush()
        supplier = current_supplier()  # a mock run's script answers instead of the model
        if isinstance(supplier, ModelSupplier):
            # ADK skips after_model_callback for an answer given here: journal it now.
            del self._pending[name]
            response = supplier.model_response(agent, llm_request)
            return await self._journaled(callback_context, key, response)
        return None

    async def after_model_callback(self, *, callback_context: Any,
                                   llm_response: LlmResponse) -> LlmResponse | None:
        if llm_response.partial:
            return None
        key = self._pending.pop(_scoped(callback_context.agent_name), None)
        if key is None or self.execution.recorded(key) is not None:
            return None  # a replayed response
        return await self._journaled(callback_context, key, llm_response)

    async def _journaled(self, callback_context: Any, key: str,
                         response: LlmResponse) -> LlmResponse:
        """Journal the model's response as it came (the agent's own after-model callbacks run
        again on replay: they are code), and announce what the callbacks made of it, which
        is what runs."""
        agent = callback_context.agent_name
        _with_call_ids(response, key)
        raw = response.model_dump(mode="json", exclude_none=True)
        response = self._batched(await _called_back(callback_context, key, response))
        calls = _function_calls(response)
        tools = any(call.name != _TRANSFER for call in calls)
        self.execution.record(key, kind="model", name=agent, payload=raw,
                              events=_model_events(response, agent, calls),
                              defer=not tools, durable=tools)
        return response

    def _batched(self, response: LlmResponse) -> LlmResponse:
        """Note the function calls of `response` (as they run) as one batch, within the batch
        of the tool call that runs its agent, if one does."""
        running = current_call()
        outer = self._batches.get(running.call_id) if running is not None else None
        batch = Batch([call.id or "" for call in _function_calls(response)],
                      within=(outer, running.call_id) if outer and running else None)
        self._batches.update(dict.fromkeys(batch.call_ids, batch))
        return response

    def _batch_of(self, call_id: str) -> Batch:
        return self._batches.pop(call_id, None) or Batch([call_id])

    def _settle(self, call_id: str, batch: Batch | None = None,
                asking: Sequence[ApprovalRequest] = ()) -> None:
        """The call has finished (or was answered without running), or waits for `asking`.
        Once each call of its batch has settled, what they wait for is asked about: with the
        calls beside the tool call the batch is within, else in one pause."""
        batch = batch or self._batch_of(call_id)
        waiting = batch.settle(call_id, asking)
        if not waiting:
            return
        if batch.within is None:
            self.execution.suspend(waiting)
        else:
            outer, outer_call = batch.within
            self._batches.pop(outer_call, None)
            self._settle(outer_call, outer, waiting)

    # -- tool calls -----------------------------------------------------------------------

    async def before_tool_callback(self, *, tool: Any, tool_args: dict[str, Any],
                                   tool_context: Any) -> dict[str, Any] | None:
        if type(tool) is BaseTool:
            return None  # ADK's stand-in for a tool the model made up: no call; ADK answers
        ex, call_id, name = self.execution, tool_context.function_call_id, tool.name
        agent, args = tool_context.agent_name, jsonable(tool_args)
        flag = await _flag(tool, tool_args, tool_context)
        gated = ex.rules.may_gate(name, flagged=flag is not None) or ex.decision(call_id)
        if gated and ex.verdict(call_id, name, args, agent=agent,
                                flagged_by=flag).action == "ask":
            await self._ask(tool, tool_context, args)
        if (decided := ex.decision(call_id)) is not None and decided.action == "approve":
            # ADK's own confirmation check in the tool's body finds the call confirmed.
            tool_context.tool_confirmation = ToolConfirmation(
                confirmed=True, payload=ex.response(call_id))
        spec = tool_spec(tool) or tool_spec(getattr(tool, "func", None))
        try:
            run = ex.start_tool(call_id=call_id, tool_name=name, agent=agent, args=args,
                                gated=bool(gated), flagged_by=flag,
                                unsafe=bool(spec and spec.unsafe), state=_ToolActions(tool_context))
        except STOPPING as stop:
            await ex.tools_settled()
            ex.unwind(stop)
        if run.done:  # journaled (replay) or rejected
            if name == _TRANSFER and tool_context.actions.transfer_to_agent:
                # A replayed transfer's handoff was announced when it ran.
                self._last_agent[_lane(tool_context)] = tool_context.actions.transfer_to_agent
            result = run.result
            return result if isinstance(result, dict) else {"error": result}
        found, supplied = run.supplied()  # a mock run's script answers instead of the tool
        if found:
            answer = supplied if isinstance(supplied, dict) else {"result": supplied}
            run.finish(answer)
            return answer
        running = run.running()
        running.__enter__()  # keel.current_call() for the tool body, until after_tool
        self._tools[call_id] = (run, running)
        return None

    async def after_tool_callback(self, *, tool: Any, tool_args: dict[str, Any],
                                  tool_context: Any, result: Any) -> dict[str, Any] | None:
        call_id = tool_context.function_call_id
        started = self._tools.pop(call_id, None)
        if started is None:  # answered (from the journal, say) before it would run
            self._settle(call_id)
            return None
        run, running = started
        running.__exit__(None, None, None)
        if tool_context.actions.requested_tool_confirmations:
            # The tool asked for a confirmation itself (tool_context.request_confirmation()):
            # keel waits for the decision, and the tool runs again once it is given.
            await self._ask(tool, tool_context, run.args,
                            rule=f"tool_context.request_confirmation() in {tool.name}")
        target = tool_context.actions.transfer_to_agent
        if tool.name == _TRANSFER and target:  # a handoff, announced as the OpenAI SDK's are
            self._last_agent[_lane(tool_context)] = target
            run.finish(result, [NewEvent("handoff", run.agent, {
                "target": target, "call_id": run.call_id})])
        else:
            run.finish(result)
        self._settle(call_id)
        return None

    async def _ask(self, tool: Any, tool_context: Any, args: Any,
                   rule: str | None = None) -> NoReturn:
        """Pause the run until this call is decided, with the other calls that wait too: the
        call that settles the run's outermost batch last asks about them all (the others'
        results are journaled by then), and then every waiting call stops."""
        call_id = tool_context.function_call_id
        batch = self._batch_of(call_id)
        self._settle(call_id, batch, [ApprovalRequest(
            call_id, tool.name, args, tool_context.agent_name,
            kind="handoff" if tool.name == _TRANSFER else "tool", rule=rule)])
        await batch.outermost().settled.wait()
        raise _Suspended

    async def on_tool_error_callback(self, *, tool: Any, tool_args: dict[str, Any],
                                     tool_context: Any, error: Exception) -> None:
        call_id = tool_context.function_call_id
        self._settle(call_id)
        started = self._tools.pop(call_id, None)
        if started is not None:
            started[1].__exit__(None, None, None)
        elif type(tool) is BaseTool and self.execution.recorded(f"tool:{call_id}") is None:
            # The model's response announced the call: say how it ended (not a tool run,
            # so it counts against no budget).
            self.execution.record(
                f"tool:{call_id}", kind="unknown_tool", name=tool.name, payload={}, defer=True,
                events=[NewEvent("tool_result", tool_context.agent_name, {
                    "tool_name": tool.name, "call_id": call_id, "result": {"error": str(error)}})])
        return None

    def end_unfinished(self) -> None:
        """End the tool runs that a pause or a stop cut off before their after_tool_callback
        (the tool that runs an agent which paused): they count as running until then. Their
        task has ended, and with it the context in which `keel.current_call()` was set;
        resetting it there is neither possible nor needed."""
        for _, running in self._tools.values():
            with suppress(ValueError):
                running.__exit__(None, None, None)
        self._tools.clear()


async def _flag(tool: Any, args: dict[str, Any], tool_context: Any) -> str | None:
    """What marks a call as needing approval: keel's marker, or ADK's require_confirmation."""
    spec = tool_spec(tool) or tool_spec(getattr(tool, "func", None))
    if spec is not None and spec.approval_required:
        return "@keel.tool(approval_required=True)"
    if await tool.check_require_confirmation(args, tool_context):
        return "require_confirmation"
    return None


class _ToolActions:
    """What a tool did besides its result (a transfer, session state changes, a request not to
    summarize its result, an output_schema answer), journaled with it and applied again when
    the result is replayed: all of it happens in the tool's body, which a replay skips.
    Artifacts are not: the artifact service would not hold them again."""

    def __init__(self, tool_context: Any) -> None:
        self.context = tool_context

    def save(self) -> Any:
        actions = self.context.actions
        return {**actions.model_dump(mode="json", include=_REPLAYED_ACTIONS),
                "state_delta": jsonable(dict(actions.state_delta))}

    def restore(self, data: Any) -> None:
        actions = self.context.actions
        for field in _REPLAYED_ACTIONS & data.keys():
            setattr(actions, field, data[field])
        for key, value in (data.get("state_delta") or {}).items():
            self.context.state[key] = value


_REPLAYED_ACTIONS = {"transfer_to_agent", "transfer_reason", "escalate", "skip_summarization",
                     "set_model_response", "route"}
"""The EventActions fields a tool sets that change how the run goes on, besides state."""


def _scoped(agent: str) -> str:
    """`agent` as journal keys name it: within the tool call that runs it (an AgentTool's)."""
    call = current_call()
    return f"{call.call_id}/{agent}" if call is not None else agent


def _lane(context: Any) -> tuple[str | None, str | None]:
    """Where agents run one after another: one tool call's agent run (or the run itself), and
    in it one ADK branch (a parallel agent runs each sub-agent on a branch of its own)."""
    call = current_call()
    return (call.call_id if call is not None else None, context.branch)


async def _called_before(callback_context: Any, llm_request: Any) -> None:
    """Run the agent's own before-model callbacks for what they do (session state, say). ADK
    skips them for an answer a plugin gives (a replayed turn): keel runs them itself, so that
    they run once for every turn, as the after-model ones do. What they return is ignored: the
    turn was journaled because they let the model answer it."""
    agent = callback_context._invocation_context.agent
    await _run_callbacks(agent.canonical_before_model_callbacks, _stop_on_truthy,
                         callback_context=callback_context, llm_request=llm_request)


async def _called_back(callback_context: Any, key: str, response: LlmResponse) -> LlmResponse:
    """`response` as the agent's own after-model callbacks leave it. ADK runs them after a
    model answers, and skips them for an answer a plugin gives (a replayed turn, a mock
    run's): keel runs them itself, so that they run once for every turn, replayed or not."""
    agent = callback_context._invocation_context.agent
    altered = await _run_callbacks(agent.canonical_after_model_callbacks, _stop_on_truthy,
                                   callback_context=callback_context, llm_response=response)
    return _with_call_ids(altered, key) if altered else response


def _with_call_ids(response: LlmResponse, key: str) -> LlmResponse:
    """Deterministic ids for the calls that have none, so that a replay finds their journaled
    results (ADK would invent random ones)."""
    for index, call in enumerate(_function_calls(response)):
        call.id = call.id or f"{key}:{index}"
    return response


def _function_calls(response: LlmResponse) -> list[types.FunctionCall]:
    parts = response.content.parts if response.content and response.content.parts else []
    return [part.function_call for part in parts if part.function_call]


def _model_events(response: LlmResponse, agent: str,
                  calls: list[types.FunctionCall]) -> list[NewEvent]:
    parts = response.content.parts if response.content and response.content.parts else []
    events = []
    thought = "".join(part.text or "" for part in parts if part.thought)
    if thought:
        events.append(NewEvent("thinking", agent, {"content": thought}))
    events += [NewEvent("message", agent, {"content": text}) for text in said(response.content)]
    for call in calls:
        if call.name != _TRANSFER:
            events.append(NewEvent("tool_call", agent, {
                "tool_name": call.name, "call_id": call.id, "args": jsonable(call.args or {})}))
    return events
