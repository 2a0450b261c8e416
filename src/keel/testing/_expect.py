"""Assertions on an AgentResult, from a mock run or a real one: `expect(result)...` chains, and
the same checks as plain `assert_*` functions. A failure shows the run's trace."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NoReturn

from ..runtime._events import Status
from ..runtime._json import jsonable, message_text
from ..runtime._result import AgentResult
from ..runtime._trace import describe, trace

__all__ = [
    "Expectation",
    "assert_agent_ran",
    "assert_approved",
    "assert_completed",
    "assert_event_sequence",
    "assert_events_contain",
    "assert_failed",
    "assert_guardrail_failed",
    "assert_guardrail_passed",
    "assert_handoff_sequence",
    "assert_handoff_to",
    "assert_in_doubt",
    "assert_max_turns",
    "assert_no_errors",
    "assert_output_contains",
    "assert_output_equals",
    "assert_output_matches",
    "assert_output_type",
    "assert_paused_for_approval",
    "assert_rejected",
    "assert_resumed",
    "assert_status",
    "assert_tool_call_order",
    "assert_tool_called_with",
    "assert_tool_not_used",
    "assert_tool_used",
    "assert_tools_used_exactly",
    "expect",
]


def _fail(result: AgentResult, message: str) -> NoReturn:
    raise AssertionError(f"{message}\n\n{trace(result)}")


def _types(result: AgentResult, event_type: str) -> list[Any]:
    return [e for e in result.events if e.type == event_type]


def _is_subsequence(wanted: Sequence[Any], seen: Sequence[Any]) -> bool:
    remaining = iter(seen)
    return all(any(item == s for s in remaining) for item in wanted)


# -- status ---------------------------------------------------------------------------------


def assert_status(result: AgentResult, status: Status | str) -> None:
    """`status`: a Status, or its name in any case (`"waiting"`, as the CLI takes it)."""
    try:
        expected = Status(status.upper())
    except ValueError:
        raise ValueError(f"{status!r} is no status; the statuses: "
                         f"{', '.join(s.value for s in Status)}.") from None
    if result.status is not expected:
        _fail(result, f"Expected status {expected.value}, got {result.status.value}.")


def assert_completed(result: AgentResult) -> None:
    assert_status(result, Status.COMPLETED)


def assert_failed(result: AgentResult) -> None:
    assert_status(result, Status.FAILED)


def assert_in_doubt(result: AgentResult) -> None:
    assert_status(result, Status.IN_DOUBT)


def assert_no_errors(result: AgentResult) -> None:
    errors = [describe(e) for e in _types(result, "error")]
    if errors or result.error:
        _fail(result, f"Expected no errors, got: {'; '.join(errors) or result.error}")


# -- tools ----------------------------------------------------------------------------------
# A call counts as used when the agent made it, also if a reviewer rejected it; `rejected()`
# tells those apart.


def _called(result: AgentResult) -> list[str]:
    return [call.name for call in result.tool_calls]


def assert_tool_used(result: AgentResult, name: str) -> None:
    if name not in _called(result):
        _fail(result, f"Expected a call to {name!r}; calls made: {_called(result)}.")


def assert_tool_called_with(result: AgentResult, name: str, *, args: dict[str, Any]) -> None:
    """Some call of `name` had at least these arguments (others may be there too)."""
    calls = [c for c in result.tool_calls if c.name == name]
    if not any(all(k in c.args and c.args[k] == v for k, v in args.items()) for c in calls):
        made = [c.args for c in calls] or "none"
        _fail(result, f"Expected a call to {name!r} with arguments including {args}; "
                      f"its calls had: {made}.")


def assert_tool_not_used(result: AgentResult, name: str) -> None:
    if name in _called(result):
        _fail(result, f"Expected no call to {name!r}, but the agent called it.")


def assert_tool_call_order(result: AgentResult, names: Sequence[str]) -> None:
    """The calls include `names` in this order (other calls may come in between)."""
    if not _is_subsequence(list(names), _called(result)):
        _fail(result, f"Expected calls in the order {list(names)}; calls made: "
                      f"{_called(result)}.")


def assert_tools_used_exactly(result: AgentResult, names: Sequence[str]) -> None:
    """The set of tools called is exactly `names`."""
    if set(_called(result)) != set(names):
        _fail(result, f"Expected exactly the tools {sorted(set(names))}; called: "
                      f"{sorted(set(_called(result)))}.")


# -- output ---------------------------------------------------------------------------------


def assert_output_contains(result: AgentResult, text: str, *, case_sensitive: bool = True) -> None:
    output = _answer(result)
    found = text in output if case_sensitive else text.lower() in output.lower()
    if not found:
        _fail(result, f"Expected the output to contain {text!r}; it is {output!r}.")


def assert_output_matches(result: AgentResult, pattern: str) -> None:
    output = _answer(result)
    if re.search(pattern, output) is None:
        _fail(result, f"Expected the output to match /{pattern}/; it is {output!r}.")


def _answer(result: AgentResult) -> str:
    """The output as text: of a LangGraph state with messages, the last message's (the
    answer; the whole state holds the question too, which would pass for it)."""
    output = result.output
    messages = output.get("messages") if isinstance(output, dict) else None
    if isinstance(messages, list) and messages:
        return str(message_text(jsonable(messages[-1])))
    return str(output)


def assert_output_type(result: AgentResult, type_: type) -> None:
    if not isinstance(result.output, type_):
        _fail(result, f"Expected output of type {type_.__name__}; got "
                      f"{type(result.output).__name__}: {result.output!r}.")


def assert_output_equals(result: AgentResult, value: Any) -> None:
    if result.output != value:
        _fail(result, f"Expected the output {value!r}; it is {result.output!r}.")


# -- events ---------------------------------------------------------------------------------


def assert_events_contain(
    result: AgentResult, event_type: str, *, expected: bool = True, **attrs: Any
) -> None:
    """An event of `event_type` whose attributes equal `attrs` is there (or, with
    `expected=False`, is not)."""
    found = any(all(getattr(e, k, None) == v for k, v in attrs.items())
                for e in _types(result, event_type))
    if found != expected:
        what = f"{event_type} event" + (f" with {attrs}" if attrs else "")
        _fail(result, f"Expected {'an' if expected else 'no'} {what}.")


def assert_event_sequence(result: AgentResult, types: Sequence[str]) -> None:
    """The events include these types in this order (others may come in between)."""
    seen = [e.type for e in result.events]
    if not _is_subsequence(list(types), seen):
        _fail(result, f"Expected events in the order {list(types)}.")


def assert_max_turns(result: AgentResult, n: int) -> None:
    """At most `n` turns, counting tool calls and the final answer."""
    turns = len(_types(result, "tool_call")) + len(_types(result, "done"))
    if turns > n:
        _fail(result, f"Expected at most {n} turns (tool calls + final answer); got {turns}.")


# -- agents ---------------------------------------------------------------------------------


def _handoffs(result: AgentResult) -> list[str]:
    return [e.target for e in _types(result, "handoff")]


def assert_handoff_to(result: AgentResult, name: str) -> None:
    if name not in _handoffs(result):
        _fail(result, f"Expected a handoff to {name!r}; handoffs: {_handoffs(result)}.")


def assert_handoff_sequence(result: AgentResult, names: Sequence[str]) -> None:
    """The handoffs were exactly these, in this order."""
    if _handoffs(result) != list(names):
        _fail(result, f"Expected the handoffs {list(names)}; got {_handoffs(result)}.")


def assert_agent_ran(result: AgentResult, name: str) -> None:
    """The agent started the run, was handed off to, or produced an event."""
    ran = {result.agent, *_handoffs(result), *(e.agent for e in result.events)}
    if name not in ran:
        _fail(result, f"Expected agent {name!r} to run; ran: {sorted(a for a in ran if a)}.")


def assert_guardrail_passed(result: AgentResult, name: str) -> None:
    assert_events_contain(result, "guardrail_pass", guardrail_name=name)


def assert_guardrail_failed(result: AgentResult, name: str) -> None:
    assert_events_contain(result, "guardrail_fail", guardrail_name=name)


# -- approvals ------------------------------------------------------------------------------


def assert_paused_for_approval(result: AgentResult, tool: str) -> None:
    """The run waited for a decision on a call of `tool` (it may have been decided since)."""
    assert_events_contain(result, "waiting", tool_name=tool)


def assert_approved(result: AgentResult, tool: str) -> None:
    assert_events_contain(result, "approved", tool_name=tool)


def assert_rejected(result: AgentResult, tool: str) -> None:
    assert_events_contain(result, "rejected", tool_name=tool)


def assert_resumed(result: AgentResult) -> None:
    assert_events_contain(result, "resumed")


# -- expect ---------------------------------------------------------------------------------


def expect(result: AgentResult) -> Expectation:
    """Chainable checks on `result`: `expect(result).completed().used_tool("x")`."""
    return Expectation(result)


class Expectation:
    """Each method checks one thing, raises AssertionError with the run's trace, or returns
    the expectation for the next check."""

    def __init__(self, result: AgentResult) -> None:
        self.result = result

    def completed(self) -> Expectation:
        assert_completed(self.result)
        return self

    def failed(self) -> Expectation:
        assert_failed(self.result)
        return self

    def status(self, status: Status | str) -> Expectation:
        assert_status(self.result, status)
        return self

    def in_doubt(self) -> Expectation:
        assert_in_doubt(self.result)
        return self

    def no_errors(self) -> Expectation:
        assert_no_errors(self.result)
        return self

    def used_tool(self, name: str, *, args: dict[str, Any] | None = None) -> Expectation:
        if args is None:
            assert_tool_used(self.result, name)
        else:
            assert_tool_called_with(self.result, name, args=args)
        return self

    def did_not_use_tool(self, name: str) -> Expectation:
        assert_tool_not_used(self.result, name)
        return self

    def tool_call_order(self, names: Sequence[str]) -> Expectation:
        assert_tool_call_order(self.result, names)
        return self

    def tools_used_exactly(self, names: Sequence[str]) -> Expectation:
        assert_tools_used_exactly(self.result, names)
        return self

    def output_contains(self, text: str, *, case_sensitive: bool = True) -> Expectation:
        assert_output_contains(self.result, text, case_sensitive=case_sensitive)
        return self

    def output_matches(self, pattern: str) -> Expectation:
        assert_output_matches(self.result, pattern)
        return self

    def output_type(self, type_: type) -> Expectation:
        assert_output_type(self.result, type_)
        return self

    def output_equals(self, value: Any) -> Expectation:
        assert_output_equals(self.result, value)
        return self

    def events_contain(self, event_type: str, *, expected: bool = True,
                       **attrs: Any) -> Expectation:
        assert_events_contain(self.result, event_type, expected=expected, **attrs)
        return self

    def event_sequence(self, types: Sequence[str]) -> Expectation:
        assert_event_sequence(self.result, types)
        return self

    def max_turns(self, n: int) -> Expectation:
        assert_max_turns(self.result, n)
        return self

    def handoff_to(self, name: str) -> Expectation:
        assert_handoff_to(self.result, name)
        return self

    def handoff_sequence(self, names: Sequence[str]) -> Expectation:
        assert_handoff_sequence(self.result, names)
        return self

    def agent_ran(self, name: str) -> Expectation:
        assert_agent_ran(self.result, name)
        return self

    def guardrail_passed(self, name: str) -> Expectation:
        assert_guardrail_passed(self.result, name)
        return self

    def guardrail_failed(self, name: str) -> Expectation:
        assert_guardrail_failed(self.result, name)
        return self

    def paused_for_approval(self, tool: str) -> Expectation:
        assert_paused_for_approval(self.result, tool)
        return self

    def approved(self, tool: str) -> Expectation:
        assert_approved(self.result, tool)
        return self

    def rejected(self, tool: str) -> Expectation:
        assert_rejected(self.result, tool)
        return self

    def resumed(self) -> Expectation:
        assert_resumed(self.result)
        return self
