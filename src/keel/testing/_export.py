"""From a stored run to a regression test: the MockEvent script that reproduces it, and a
pytest file that replays that script against the same agent."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._errors import KeelError
from ..runtime._events import Event
from ..runtime._family import PIPELINE
from ..runtime._json import loads, message_text
from ..runtime._runtime import AgentRuntime
from ..runtime._schema import ExecutionRow
from ._script import HANDOFF_PREFIX, MockEvent

__all__ = ["events_from", "export_test"]

_MAX_STAGES = 10_000


def events_from(
    execution_id: str, runtime: AgentRuntime | None = None, *, tool_results: bool = True
) -> list[MockEvent]:
    """The script that makes `mock_run` repeat the stored execution.

    With `tool_results` (the default) every tool's journaled result is supplied, so the
    replay calls no real system; without, the real tools run again, except agents used as
    tools (OpenAI's `agent.as_tool()`, ADK's `AgentTool`): their results are supplied either
    way, and the turns of the agents they ran are left out: the replay does not run them
    again. The decisions of the calls that waited are replayed as the reviewers decided; a
    pause nobody decided becomes `waiting()`. A call waits in the replay only if it is gated
    there too: a call the runtime's rules gated needs them in `mock_run` as well, e.g.
    `require_approval=[the names of the calls that waited]`, as in the test `export_test`
    writes. (A policy's automatic decision, made without waiting, is no scripted decision:
    the call's journaled result says what it decided.)
    """
    with _opened(runtime) as opened:
        return _script(opened, opened.store.execution(execution_id), tool_results=tool_results)


def _script(runtime: AgentRuntime, row: ExecutionRow, *, tool_results: bool) -> list[MockEvent]:
    """The script of the execution `row`. A pipeline's is its stages' scripts in order, each
    ending with the stage's `done`: mock_run gives the stages the script's turns one after
    another, and the pipeline's own events (a handoff from stage to stage) are no model's."""
    if row.framework != PIPELINE:
        return script_of(runtime.result(row.id).events, tool_results=tool_results,
                         framework=row.framework)
    stages = sorted(runtime.store.executions(parent=row.id, limit=_MAX_STAGES),
                    key=lambda stage: int(stage.id.rsplit(".", 1)[1]))
    return [event for stage in stages
            for event in _script(runtime, stage, tool_results=tool_results)]


def script_of(
    events: Sequence[Event], *, tool_results: bool = True, framework: str = "openai"
) -> list[MockEvent]:
    """The script of one agent's (not a pipeline's) events. A graph's (`framework`
    "langgraph") are read in the script's terms: its `thinking` events are its nodes
    starting, not its model reasoning; its model hands off by calling a `transfer_to_<agent>`
    tool, and its other handoffs are its edges; its `done` is the graph's state, of which the
    model said the last AI message."""
    graph = framework == "langgraph"
    events, agent_tools = _replayed(events)
    results = {e.call_id: e.result for e in events if e.type == "tool_result"}
    waited = {e.call_id for e in events if e.type == "waiting"}
    decisions = {e.call_id: e for e in events
                 if e.type in ("approved", "rejected") and e.call_id in waited}
    script: list[MockEvent] = []
    paused = False

    def decision(call_id: str | None) -> None:
        decided = decisions.get(call_id or "")
        if decided is not None:
            script.append(MockEvent.approve() if decided.type == "approved"
                          else MockEvent.reject(decided.reason or ""))

    for index, event in enumerate(events):
        if event.type == "thinking" and not graph:
            script.append(MockEvent.thinking(event.content))
        elif event.type == "message" and not _answers(events, index):
            script.append(MockEvent.message(event.content))
        elif event.type == "tool_call" and graph and event.tool_name.startswith(HANDOFF_PREFIX):
            script.append(MockEvent.handoff(event.tool_name.removeprefix(HANDOFF_PREFIX)))
            decision(event.call_id)
        elif event.type == "tool_call":
            script.append(MockEvent.tool_call(event.tool_name, event.args))
            decision(event.call_id)
            rejected = getattr(decisions.get(event.call_id), "type", None) == "rejected"
            supplied = tool_results or event.call_id in agent_tools
            if supplied and event.call_id in results and not rejected:
                script.append(MockEvent.tool_result(event.tool_name, results[event.call_id]))
        elif event.type == "handoff" and not graph:
            script.append(MockEvent.handoff(event.target))
            decision(event.call_id)
        elif event.type == "waiting" and event.call_id not in decisions and not paused:
            script.append(MockEvent.waiting())
            paused = True
        elif event.type in ("guardrail_pass", "guardrail_fail"):
            make = MockEvent.guardrail_pass if event.type == "guardrail_pass" \
                else MockEvent.guardrail_fail
            script.append(make(event.guardrail_name, event.content or ""))
        elif event.type == "done" and not graph:
            script.append(MockEvent.done(event.output))
        elif event.type == "done" and (answer := _graph_answer(event.output)) is not None:
            script.append(MockEvent.done(answer))
        elif event.type == "error" and _model_failed(events[:index]):
            script.append(MockEvent.error(event.content))
    return script


def _replayed(events: Sequence[Event]) -> tuple[list[Event], set[str]]:
    """The events a replay goes through, and the ids of the calls whose tool ran an agent (an
    agent used as a tool: OpenAI's `agent.as_tool()`, ADK's `AgentTool`).

    Such an agent runs its turns between its caller's call and the call's result, as another
    agent. The replay supplies that result (what the caller saw), so the nested run does not
    happen again, and its events are left out. Its turns could not be scripted reliably
    anyway: nothing in a script separates the nested agent's last turn from its caller's
    next, and the nested runs of calls made together interleave.
    """
    spans: list[tuple[str, int, int]] = []  # a call's id, its index and its result's
    unanswered: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        if event.type == "tool_call":
            unanswered.setdefault(event.call_id, []).append(index)
        elif event.type == "tool_result" and unanswered.get(event.call_id):
            spans.append((event.call_id, unanswered[event.call_id].pop(0), index))
    nested: set[int] = set()
    agent_tools: set[str] = set()
    for call_id, start, end in spans:
        caller = events[start].agent
        others = [i for i in range(start + 1, end) if events[i].agent not in (None, caller)]
        # A graph's node starts (its `thinking`) name the graph the node is in, which may be
        # the caller's parent graph: they are no nested run.
        if any(events[i].type != "thinking" for i in others):
            nested.update(others)
            agent_tools.add(call_id)
    return [e for index, e in enumerate(events) if index not in nested], agent_tools


def _gated(events: Sequence[Event]) -> list[str]:
    """The names of the tools (and handoffs) whose calls waited for a decision in `events`:
    what a replay must gate (`mock_run(..., require_approval=...)`) to wait where the run did.
    A mock run has none of the runtime's rules, and gating a call its tool flags itself
    changes nothing. A graph's own interrupt() waits with an id of no call: it pauses the
    replay by itself."""
    calls = {e.call_id for e in events if e.type in ("tool_call", "handoff")}
    return sorted({e.tool_name for e in events if e.type == "waiting" and e.call_id in calls})


def _answers(events: Sequence[Event], index: int) -> bool:
    """Whether the message at `index` is the final answer, which `done` scripts by itself."""
    following = [e.type for e in events[index + 1:] if e.type not in ("thinking",
                                                                      "guardrail_pass")]
    return bool(following) and following[0] == "done"


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
    events, _ = _replayed(result.events)  # a pipeline's hold its stages' too
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
    "reject": ("reason",),
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
