"""From a stored run to a regression test: the MockEvent script that reproduces it, and a
pytest file that replays that script against the same agent."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._errors import KeelError
from ..runtime._events import Event
from ..runtime._json import loads
from ..runtime._runtime import AgentRuntime
from ._script import MockEvent

__all__ = ["events_from", "export_test"]


def events_from(
    execution_id: str, runtime: AgentRuntime | None = None, *, tool_results: bool = True
) -> list[MockEvent]:
    """The script that makes `mock_run` repeat the stored execution.

    With `tool_results` (the default) every tool's journaled result is supplied, so the
    replay calls no real system; without, the real tools run again. Approvals and rejections
    are replayed as the reviewers decided; a pause nobody decided becomes `waiting()`.
    """
    with _opened(runtime) as opened:
        events = opened.result(execution_id).events
    return script_of(events, tool_results=tool_results)


def script_of(events: Sequence[Event], *, tool_results: bool = True) -> list[MockEvent]:
    results = {e.call_id: e.result for e in events if e.type == "tool_result"}
    decisions = {e.call_id: e for e in events if e.type in ("approved", "rejected")}
    script: list[MockEvent] = []
    paused = False

    def decision(call_id: str | None) -> None:
        decided = decisions.get(call_id or "")
        if decided is not None:
            script.append(MockEvent.approve() if decided.type == "approved"
                          else MockEvent.reject(decided.reason or ""))

    for index, event in enumerate(events):
        if event.type == "thinking":
            script.append(MockEvent.thinking(event.content))
        elif event.type == "message" and not _answers(events, index):
            script.append(MockEvent.message(event.content))
        elif event.type == "tool_call":
            script.append(MockEvent.tool_call(event.tool_name, event.args))
            decision(event.call_id)
            rejected = getattr(decisions.get(event.call_id), "type", None) == "rejected"
            if tool_results and event.call_id in results and not rejected:
                script.append(MockEvent.tool_result(event.tool_name, results[event.call_id]))
        elif event.type == "handoff":
            script.append(MockEvent.handoff(event.target))
            decision(event.call_id)
        elif event.type == "waiting" and event.call_id not in decisions and not paused:
            script.append(MockEvent.waiting())
            paused = True
        elif event.type in ("guardrail_pass", "guardrail_fail"):
            make = MockEvent.guardrail_pass if event.type == "guardrail_pass" \
                else MockEvent.guardrail_fail
            script.append(make(event.guardrail_name, event.content or ""))
        elif event.type == "done":
            script.append(MockEvent.done(event.output))
        elif event.type == "error":
            script.append(MockEvent.error(event.content))
    return script


def _answers(events: Sequence[Event], index: int) -> bool:
    """Whether the message at `index` is the final answer, which `done` scripts by itself."""
    following = [e.type for e in events[index + 1:] if e.type not in ("thinking",
                                                                      "guardrail_pass")]
    return bool(following) and following[0] == "done"


def export_test(
    execution_id: str, path: str | Path | None = None, runtime: AgentRuntime | None = None
) -> str:
    """A pytest module that replays the execution with `mock_run` against the same agent and
    checks it ends the same way; written to `path` when given. Returns the source."""
    with _opened(runtime) as opened:
        row = opened.store.execution(execution_id)
        result = opened.result(execution_id)
    reference = row.agent_ref or ""
    module, _, attribute = reference.partition(":")
    if not attribute or module.endswith(".py") or "/" in module or "\\" in module:
        raise KeelError(
            f"Execution {execution_id!r} ran the agent {row.agent_name!r} from "
            f"{reference or 'no module-level name'}; an exported test imports its agent, so "
            "define the agent at module level in an importable module and run it again."
        )
    script = script_of(result.events)
    checks = [f".status({result.status.value!r})"]
    calls = [call.name for call in result.tool_calls]
    if calls:
        checks.append(f".tool_call_order({calls!r})")
    handoffs = [e.target for e in result.events if e.type == "handoff"]
    checks.append(f".handoff_sequence({handoffs!r})")
    if isinstance(result.output, str):
        checks.append(f".output_equals({result.output!r})")
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
        f"    result = mock_run({attribute}, {loads(row.input)!r}, events=EVENTS)",
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
