"""From a stored run to a regression test: the MockEvent script that reproduces it, and a
pytest file that replays that script against the same agent."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .._errors import KeelError
from ..runtime._events import Event
from ..runtime._family import PIPELINE
from ..runtime._json import loads, message_text
from ..runtime._runtime import AgentRuntime
from ..runtime._schema import ExecutionRow
from ._script import HANDOFF_PREFIX, MockEvent, MockScriptError

__all__ = ["events_from", "export_test"]

_MAX_STAGES = 10_000


def events_from(
    execution_id: str, runtime: AgentRuntime | None = None, *, tool_results: bool = True
) -> list[MockEvent]:
    """The script that makes `mock_run` repeat the stored execution.

    With `tool_results` (the default) every tool's journaled result is supplied, so the
    replay calls no real system; without, the real tools run again. An agent used as a tool
    (OpenAI's `agent.as_tool()`, ADK's `AgentTool`) runs again in the replay: its result is
    never supplied, and the script has its turns (with the calls in them that waited, and
    their decisions), marked off from its caller's with `MockEvent.agent_turn`. Agent tools
    that one agent called together ran at the same time, their turns interleaved: no script
    can repeat them, and MockScriptError says so. The decisions of the calls that waited are
    replayed as the reviewers decided; a pause nobody decided becomes `waiting()`. A call
    waits in the replay only if it is gated there too: a call the runtime's rules gated needs
    them in `mock_run` as well, e.g. `require_approval=[the names of the calls that waited]`,
    as in the test `export_test` writes. (A policy's automatic decision, made without waiting,
    is no scripted decision: the call's journaled result says what it decided.)
    """
    with _opened(runtime) as opened:
        return _script(opened, opened.store.execution(execution_id), tool_results=tool_results)


def _script(runtime: AgentRuntime, row: ExecutionRow, *, tool_results: bool) -> list[MockEvent]:
    """The script of the execution `row`. A pipeline's is its stages' scripts in order, each
    ending with the stage's `done`: mock_run gives the stages the script's turns one after
    another, and the pipeline's own events (a handoff from stage to stage) are no model's."""
    if row.framework != PIPELINE:
        _, events, approvals, steps = runtime.store.snapshot(row.id)
        return script_of(events, tool_results=tool_results, framework=row.framework,
                         agent_tools=_agent_tools(steps), responses={
                             a.call_id: loads(a.response) for a in approvals
                             if a.response is not None})
    stages = sorted(runtime.store.executions(parent=row.id, limit=_MAX_STAGES),
                    key=lambda stage: int(stage.id.rsplit(".", 1)[1]))
    return [event for stage in stages
            for event in _script(runtime, stage, tool_results=tool_results)]


def _agent_tools(steps: Collection[str]) -> set[str]:
    """The ids of the calls whose tool ran an agent, from the keys of the journal's `steps`.
    The adapters journal that agent's model turns within the call: `model:<call id>/<its
    turn>`, with the ids of all the calls it runs in, outermost first, where an agent tool's
    agent calls agent tools."""
    return {call_id for key in steps if key.startswith("model:")
            for call_id in key.removeprefix("model:").split("/")[:-1]}


def script_of(
    events: Sequence[Event], *, tool_results: bool = True, framework: str = "openai",
    agent_tools: Collection[str] = (), responses: Mapping[str, Any] = MappingProxyType({}),
) -> list[MockEvent]:
    """The script of one agent's (not a pipeline's) events. A graph's (`framework`
    "langgraph") are read in the script's terms: its `thinking` events are its nodes
    starting, not its model reasoning; its model hands off by calling a `transfer_to_<agent>`
    tool, and its other handoffs are its edges; its `done` is the graph's state, of which the
    model said the last AI message. `agent_tools`: the ids of the calls whose tool ran an
    agent, which runs again in the replay on its turns of the script. `responses`: the values
    reviewers answered pauses with (`respond()`), by call id."""
    graph = framework == "langgraph"
    _refuse_agent_tools_called_together(events, agent_tools)
    results = {e.call_id: e.result for e in events if e.type == "tool_result"}
    waited = {e.call_id for e in events if e.type == "waiting"}
    decisions = {e.call_id: e for e in events
                 if e.type in ("approved", "rejected") and e.call_id in waited}
    script: list[MockEvent] = []
    paused = False
    # The agent whose model answers the script's turn, and in how many agent tools' calls
    # it runs: an agent tool's agent may have its caller's name.
    speaker: tuple[str | None, int] | None = None
    within: list[str] = []  # the agent tools' calls in progress, outermost first
    calls = {e.call_id for e in events if e.type in ("tool_call", "handoff")}
    said_done = _model_done(events, framework)
    running: set[str] = set()  # the calls with no result yet
    supplied: set[str] = set()  # the calls whose results the script supplies

    def said(event: MockEvent, agent: str | None) -> None:
        """`event`, in a turn of `agent`'s model. Where an agent tool's agent starts
        answering, or its caller answers again, nothing else tells the replay whose turn it
        is (a handoff does: its target answers next)."""
        nonlocal speaker
        if agent_tools and speaker is not None and (agent, len(within)) != speaker:
            script.append(MockEvent.agent_turn(agent or ""))
        speaker = (event.target if event.type == "handoff" else agent, len(within))
        script.append(event)

    def decision(call_id: str | None) -> None:
        decided = decisions.get(call_id or "")
        if decided is None:
            return
        if decided.type == "rejected":
            script.append(MockEvent.reject(decided.reason or ""))
        elif decided.call_id in responses:
            script.append(MockEvent.respond(responses[decided.call_id]))
        else:
            script.append(MockEvent.approve())

    for index, event in enumerate(events):
        if event.type == "thinking" and not graph:
            said(MockEvent.thinking(event.content), event.agent)
        elif event.type == "message" and not _answers(events, index, said_done):
            said(MockEvent.message(event.content), event.agent)
        elif event.type == "tool_call" and graph and event.tool_name.startswith(HANDOFF_PREFIX):
            said(MockEvent.handoff(event.tool_name.removeprefix(HANDOFF_PREFIX)), event.agent)
            decision(event.call_id)
        elif event.type == "tool_call":
            said(MockEvent.tool_call(event.tool_name, event.args), event.agent)
            decision(event.call_id)
            if event.call_id in agent_tools:
                within.append(event.call_id)
            running.add(event.call_id)
            rejected = getattr(decisions.get(event.call_id), "type", None) == "rejected"
            if tool_results and event.call_id not in agent_tools and \
                    event.call_id in results and not rejected:
                script.append(MockEvent.tool_result(event.tool_name, results[event.call_id]))
                supplied.add(event.call_id)
        elif event.type == "tool_result":
            running.discard(event.call_id)
            if event.call_id in within:
                within.remove(event.call_id)
        elif event.type == "handoff" and not graph:
            said(MockEvent.handoff(event.target), event.agent)
            decision(event.call_id)
        elif event.type == "waiting" and event.call_id in decisions and \
                event.call_id not in calls:
            # The framework's own pause (interrupt(), RequestInput), decided where the run
            # paused; unless a supplied result stands in for the tool that made it.
            if not running & supplied:
                decision(event.call_id)
        elif event.type == "waiting" and event.call_id not in decisions and not paused:
            script.append(MockEvent.waiting())
            paused = True
        elif event.type in ("guardrail_pass", "guardrail_fail"):
            make = MockEvent.guardrail_pass if event.type == "guardrail_pass" \
                else MockEvent.guardrail_fail
            script.append(make(event.guardrail_name, event.content or ""))
        elif event.type == "done" and not graph:
            if index in said_done:
                said(MockEvent.done(event.output), event.agent)
        elif event.type == "done" and (answer := _graph_answer(event.output)) is not None:
            said(MockEvent.done(answer), event.agent)
        elif event.type == "error" and _model_failed(events[:index]):
            said(MockEvent.error(event.content), event.agent)
    return script


def _refuse_agent_tools_called_together(events: Sequence[Event],
                                        agent_tools: Collection[str]) -> None:
    """Raise MockScriptError where one agent called agent tools together (in one model
    response): the framework ran their agents at the same time, and a script, whose turns
    come one after another, cannot say which agent's model answers when."""
    running: dict[str, str | None] = {}  # the agent tools' calls in progress, and their callers
    for event in events:
        if event.type == "tool_call" and event.call_id in agent_tools:
            if event.agent in running.values():
                together = [e.tool_name for e in events if e.type == "tool_call"
                            and e.call_id in (*running, event.call_id)]
                raise MockScriptError(
                    f"Execution {event.execution_id!r} cannot be scripted: {event.agent!r} "
                    f"called the agent tools {together} together, and their agents ran at the "
                    "same time, their model turns interleaved; a script's turns come one after "
                    "another. Test each agent tool's agent with mock_run on its own, and the "
                    f"caller with the agent tools' results supplied (MockEvent.tool_result).")
            running[event.call_id] = event.agent
        elif event.type == "tool_result":
            running.pop(event.call_id, None)


def _gated(events: Sequence[Event]) -> list[str]:
    """The names of the tools (and handoffs) whose calls waited for a decision in `events`:
    what a replay must gate (`mock_run(..., require_approval=...)`) to wait where the run did.
    A mock run has none of the runtime's rules, and gating a call its tool flags itself
    changes nothing. A graph's own interrupt() waits with an id of no call: it pauses the
    replay by itself."""
    calls = {e.call_id for e in events if e.type in ("tool_call", "handoff")}
    return sorted({e.tool_name for e in events if e.type == "waiting" and e.call_id in calls})


def _answers(events: Sequence[Event], index: int, said_done: Collection[int]) -> bool:
    """Whether the message at `index` is the final answer, which `done` scripts by itself."""
    following = [i for i in range(index + 1, len(events))
                 if events[i].type not in ("thinking", "guardrail_pass")]
    return bool(following) and following[0] in said_done


def _model_done(events: Sequence[Event], framework: str) -> set[int]:
    """The positions of the `done` events whose output a model said. An ADK Workflow's output
    may be a function node's, announced by the workflow itself, of which no model said
    anything before: the replay's function nodes make it again."""
    dones = {i for i, e in enumerate(events) if e.type == "done"}
    if framework != "adk":
        return dones
    return {i for i in dones
            if any(e.agent == events[i].agent for e in events[:i] if e.type != "done")}


def _graph_answer(state: Any) -> Any:
    """What a graph's model said last, the text of the last AI message in the graph's final
    state; None when that is no answer (no AI message, or one that called tools)."""
    messages = state.get("messages") if isinstance(state, dict) else None
    said = [m for m in messages if isinstance(m, dict) and m.get("type") == "ai"] \
        if isinstance(messages, list) else []
    return message_text(said[-1]) if said and not said[-1].get("tool_calls") else None


def _model_failed(before: Sequence[Event]) -> bool:
    """Whether a run that failed after `before` failed calling its model, which
    `MockEvent.error` scripts. Otherwise it failed after the model answered, and the replay
    fails there by itself: in a tool that raised (a call with no result; the real tool runs
    again), at a guardrail that tripped (scripted as such), or at a final answer the framework
    refused."""
    ended = {e.call_id for e in before if e.type == "tool_result"}
    if any(e.type == "tool_call" and e.call_id not in ended for e in before):
        return False
    last = next((e.type for e in reversed(before) if e.type != "thinking"), None)
    return last not in ("message", "guardrail_fail")


def export_test(
    execution_id: str, path: str | Path | None = None, runtime: AgentRuntime | None = None
) -> str:
    """A pytest module that replays the execution with `mock_run` against the same agent and
    checks it ends the same way; written to `path` when given. Returns the source."""
    with _opened(runtime) as opened:
        row = opened.store.execution(execution_id)
        result = opened.result(execution_id)
        script = _script(opened, row, tool_results=True)
    reference = row.agent_ref or ""
    module, _, attribute = reference.partition(":")
    if not attribute or module.endswith(".py") or "/" in module or "\\" in module:
        raise KeelError(
            f"Execution {execution_id!r} ran the agent {row.agent_name!r} from "
            f"{reference or 'no module-level name'}; an exported test imports its agent, so "
            "define the agent at module level in an importable module and run it again."
        )
    events = result.events  # a pipeline's hold its stages' too
    checks = [f".status({result.status.value!r})"]
    calls = [e.tool_name for e in events if e.type == "tool_call"]
    if calls:
        checks.append(f".tool_call_order({calls!r})")
    handoffs = [e.target for e in events if e.type == "handoff"]
    checks.append(f".handoff_sequence({handoffs!r})")
    if isinstance(result.output, str):
        checks.append(f".output_equals({result.output!r})")
    gated = _gated(events)
    rules = f", require_approval={gated!r}" if gated else ""
    lines = [
        f'"""Regression test exported by keel from execution {execution_id}',
        f'({row.agent_name}, {result.status.value})."""',
        "",
        "from keel.testing import MockEvent, expect, mock_run",
        "",
        f"from {module} import {attribute}",
        "",
        "EVENTS = [",
        *(f"    {to_code(event)}," for event in script),
        "]",
        "",
        "",
        f"def test_replays_execution_{execution_id[:12]}() -> None:",
        f"    result = mock_run({attribute}, {loads(row.input)!r}, events=EVENTS{rules})",
        "    (expect(result)",
        *(f"        {check}" for check in checks),
        "    )",
        "",
    ]
    source = "\n".join(lines)
    if path is not None:
        Path(path).write_text(source)
    return source


_ARGUMENTS = {
    "thinking": ("content",), "message": ("content",), "error": ("content",),
    "tool_call": ("tool_name", "args"), "tool_result": ("tool_name", "result"),
    "handoff": ("target",), "done": ("output",), "guardrail_pass": ("guardrail_name", "content"),
    "guardrail_fail": ("guardrail_name", "content"), "waiting": (), "approve": (),
    "reject": ("reason",), "respond": ("value",), "agent_turn": ("agent",),
}


def to_code(event: MockEvent) -> str:
    """The Python expression that builds `event`."""
    # Everything keel stores is JSON data, whose repr() is valid Python.
    arguments = ", ".join(repr(getattr(event, name)) for name in _ARGUMENTS[event.type])
    return f"MockEvent.{event.type}({arguments})"


@contextmanager
def _opened(runtime: AgentRuntime | None) -> Iterator[AgentRuntime]:
    """The given runtime, or one on the default store, closed afterwards."""
    if runtime is not None:
        yield runtime
        return
    with AgentRuntime(auto_resume=False) as own:
        yield own
