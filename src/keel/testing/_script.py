"""The script of a mock run, framework-neutral: `MockEvent`s grouped into model turns.

A framework's mock model asks `Script.next_turn()` what the current agent's model says next,
describing the agent as an `AgentView` (its tools and handoff targets), and turns the answer
into its own response type. Tool results, approvals and the final pause are read back by
`mock_run` through the same script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import KeelError

__all__ = ["DECISIONS", "HANDOFF_PREFIX", "AgentView", "MockCall", "MockEvent", "MockScriptError",
           "Script", "Turn"]

STRICT_OPT_OUT = "pass strict=False to mock_run to let the framework decide instead"

HANDOFF_PREFIX = "transfer_to_"
"""A graph's handoff tools: `transfer_to_<agent>`, as in LangGraph's supervisor and swarm."""


class MockScriptError(KeelError, AssertionError):
    """The script does not fit the agent: a tool or handoff it does not have, events the run
    never reached, or a turn the script does not have; or a stored run no script can repeat
    (`events_from`)."""


@dataclass(frozen=True)
class MockEvent:
    """One scripted event. Build them with the static methods, e.g. `MockEvent.handoff(...)`."""

    type: str
    content: str | None = None
    tool_name: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    target: str | None = None
    output: Any = None
    guardrail_name: str | None = None
    reason: str | None = None
    agent: str | None = None
    value: Any = None

    @staticmethod
    def thinking(content: str) -> MockEvent:
        """The model reasons (a reasoning summary) before it acts."""
        return MockEvent("thinking", content=content)

    @staticmethod
    def message(content: str) -> MockEvent:
        """The model says something; as the last event of a turn, it is the final answer."""
        return MockEvent("message", content=content)

    @staticmethod
    def tool_call(name: str, args: dict[str, Any] | None = None) -> MockEvent:
        """The model calls the tool; the real tool runs unless a `tool_result` follows."""
        return MockEvent("tool_call", tool_name=name, args=dict(args or {}))

    @staticmethod
    def tool_result(name: str, result: Any = None) -> MockEvent:
        """The result of the preceding call of `name`, supplied instead of running the tool."""
        return MockEvent("tool_result", tool_name=name, result=result)

    @staticmethod
    def handoff(target: str) -> MockEvent:
        """The model hands off to the agent named `target`; the framework performs it."""
        return MockEvent("handoff", target=target)

    @staticmethod
    def done(output: Any) -> MockEvent:
        """The model's final output, checked against the agent's output type."""
        return MockEvent("done", output=output)

    @staticmethod
    def error(content: str) -> MockEvent:
        """The model call fails with this message; the run fails."""
        return MockEvent("error", content=content)

    @staticmethod
    def guardrail_pass(name: str, content: str = "") -> MockEvent:
        """The guardrail `name` passes without running."""
        return MockEvent("guardrail_pass", guardrail_name=name, content=content)

    @staticmethod
    def guardrail_fail(name: str, content: str = "") -> MockEvent:
        """The guardrail `name` trips without running."""
        return MockEvent("guardrail_fail", guardrail_name=name, content=content)

    @staticmethod
    def waiting(content: str = "") -> MockEvent:
        """The run pauses here for a decision nobody gives: mock_run returns it WAITING."""
        return MockEvent("waiting", content=content)

    @staticmethod
    def approve() -> MockEvent:
        """A reviewer approves the preceding gated call (or handoff)."""
        return MockEvent("approve")

    @staticmethod
    def reject(reason: str) -> MockEvent:
        """A reviewer rejects the preceding gated call; the model is told `reason`."""
        return MockEvent("reject", reason=reason)

    @staticmethod
    def respond(value: Any) -> MockEvent:
        """A reviewer answers the framework's own pause (a LangGraph interrupt(), an ADK
        RequestInput) with `value`, which the paused code receives; placed as a decision."""
        return MockEvent("respond", value=value)

    @staticmethod
    def agent_turn(agent: str) -> MockEvent:
        """The next model turn is `agent`'s: where an agent called as a tool (OpenAI's
        `agent.as_tool()`, ADK's `AgentTool`) starts answering in its caller's place, and
        where the caller answers again. Nothing else in a script ends the one agent's turn
        and begins the other's."""
        return MockEvent("agent_turn", agent=agent)

    def __str__(self) -> str:
        detail = {
            "thinking": self.content, "message": self.content, "error": self.content,
            "tool_call": f"{self.tool_name} {self.args}",
            "tool_result": f"{self.tool_name} -> {self.result!r}", "handoff": self.target,
            "done": repr(self.output), "guardrail_pass": self.guardrail_name,
            "guardrail_fail": self.guardrail_name, "reject": self.reason,
            "respond": repr(self.value),
            "agent_turn": self.agent,
        }.get(self.type)
        return f"MockEvent.{self.type}({detail if detail is not None else ''})"


@dataclass(frozen=True)
class AgentView:
    """What the current agent's model may do: its tools, and its handoffs by target."""

    name: str
    tools: dict[str, dict[str, Any] | None]
    """Tool name -> the JSON schema of its arguments, None where the framework has none."""
    handoffs: dict[str, str]
    """Target agent name -> the tool name the model calls to hand off."""


@dataclass
class MockCall:
    call_id: str
    name: str
    args: dict[str, Any]
    handoff_to: str | None = None


@dataclass
class Turn:
    """One model response: text first, then calls (tools, at most one handoff last)."""

    thinking: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    calls: list[MockCall] = field(default_factory=list)
    done: MockEvent | None = None
    error: str | None = None


DECISIONS = ("approve", "reject", "respond")
_ATTACHED = ("tool_result", *DECISIONS)
_OUT_OF_BAND = ("guardrail_pass", "guardrail_fail")


class Script:
    """The events of one mock run and how far the run has got through them."""

    def __init__(self, events: Sequence[MockEvent], *, strict: bool = True) -> None:
        self.events = list(events)
        self.strict = strict
        self.used = [False] * len(self.events)
        self.results: dict[str, Any] = {}
        """Supplied tool results by call id."""
        self.decisions: dict[str, MockEvent] = {}
        """approve / reject events by call id, until mock_run gives them."""
        self.called: dict[str, str] = {}
        """The tool (or handoff target) of each scripted call, by call id."""
        self.failure: MockScriptError | None = None
        self._cursor = 0
        self._calls = 0
        for event in self.events:
            if not isinstance(event, MockEvent):
                raise TypeError(f"mock_run takes MockEvent objects, got {event!r}.")

    # -- turns ----------------------------------------------------------------------------

    def next_turn(self, agent: AgentView) -> Turn:
        """What `agent`'s model answers now; raises MockScriptError when the script cannot."""
        try:
            return self._next_turn(agent)
        except MockScriptError as exc:
            raise self.fail(exc) from None

    def fail(self, error: MockScriptError) -> MockScriptError:
        """Remember why the script could not answer; mock_run raises it after the run."""
        self.failure = self.failure or error
        return error

    def _next_turn(self, agent: AgentView) -> Turn:
        turn = Turn()
        while (event := self._peek()) is not None:
            if event.type in ("thinking", "message"):
                if turn.calls:
                    break  # text after calls is the next turn's
                (turn.thinking if event.type == "thinking" else turn.messages).append(
                    event.content or "")
            elif event.type == "tool_call":
                turn.calls.append(self._call(agent, event))
                continue  # _call consumed the call and what is attached to it
            elif event.type == "handoff":
                turn.calls.append(self._handoff(agent, event))
                break
            elif event.type in ("done", "error"):
                if turn.calls:
                    break
                self._take()
                if event.type == "done":
                    turn.done = event
                else:
                    turn.error = event.content or "scripted error"
                return turn
            elif event.type == "waiting":
                break
            elif event.type == "agent_turn":
                if turn.thinking or turn.messages or turn.calls:
                    break  # what follows is the next turn, another agent's
                if event.agent != agent.name:
                    raise MockScriptError(
                        f"{event} at position {self._cursor + 1}: the script gives this turn "
                        f"to {event.agent!r}, but {agent.name!r} asked its model. Does the "
                        "agent tool before it run that agent?"
                    )
            elif event.type in _ATTACHED:
                raise MockScriptError(
                    f"{event} at position {self._cursor + 1} follows no tool call: put it "
                    "right after the MockEvent.tool_call (or handoff) it belongs to."
                )
            self._take()
        if not (turn.thinking or turn.messages or turn.calls):
            raise MockScriptError(self._no_turn(agent))
        return turn

    def _call(self, agent: AgentView, event: MockEvent) -> MockCall:
        name = event.tool_name or ""
        if self.strict and name not in agent.tools:
            raise MockScriptError(
                f"{event}: agent {agent.name!r} has no tool {name!r}. Its tools: "
                f"{_names(agent.tools)}. (Or {STRICT_OPT_OUT}.)"
            )
        if self.strict and (problem := _argument_problem(event.args or {},
                                                          agent.tools.get(name))):
            raise MockScriptError(f"{event}: {problem} (Or {STRICT_OPT_OUT}.)")
        self._take()
        call = MockCall(self._call_id(), name, dict(event.args or {}))
        self.called[call.call_id] = name
        while (attached := self._peek()) is not None and attached.type in _ATTACHED:
            if attached.type == "tool_result":
                if attached.tool_name != name:
                    raise MockScriptError(
                        f"{attached} follows MockEvent.tool_call({name}): a supplied result "
                        "names the tool it answers."
                    )
                self.results[call.call_id] = attached.result
            else:
                self.decisions[call.call_id] = attached
            self._take()
        return call

    def _handoff(self, agent: AgentView, event: MockEvent) -> MockCall:
        target = event.target or ""
        tool = agent.handoffs.get(target)
        if tool is None:
            if self.strict:
                raise MockScriptError(
                    f"{event}: agent {agent.name!r} cannot hand off to {target!r}. Its handoff "
                    f"targets: {_names(agent.handoffs)}. (Or {STRICT_OPT_OUT}.)"
                )
            tool = f"transfer_to_{target}"
        self._take()
        call = MockCall(self._call_id(), tool, {}, handoff_to=target)
        self.called[call.call_id] = f"the handoff to {target}"
        if (decision := self._peek()) is not None and decision.type in DECISIONS:
            self.decisions[call.call_id] = decision
            self._take()
        return call

    def _no_turn(self, agent: AgentView) -> str:
        waiting = self._peek()
        if waiting is not None and waiting.type == "waiting":
            return (
                f"The script expects the run to wait for a decision here (position "
                f"{self._cursor + 1}), but it went on: {agent.name!r} asked its model for "
                "another turn. Is the tool before it gated (approval_required=True, "
                "require_approval=..., needs_approval)?"
            )
        return (
            f"{agent.name!r} asked its model for a turn after the script ended: the run is "
            "not finished. End the script with MockEvent.done(output) or a final "
            "MockEvent.message(text)."
        )

    # -- what mock_run reads back ---------------------------------------------------------

    def take_next(self, *types: str) -> MockEvent | None:
        """Consume the next event if it is of one of `types`: the run paused where the script
        says it waits (`waiting`), or decides the pause (`approve`, `reject`, `respond`)."""
        event = self._peek()
        if event is not None and event.type in types:
            self._take()
            return event
        return None

    def tool_result(self, call_id: str) -> tuple[bool, Any]:
        """The supplied result of a call, if a `tool_result` followed it (a `Supplier`)."""
        if call_id in self.results:
            return True, self.results.pop(call_id)
        return False, None

    def guardrail(self, name: str) -> tuple[bool, str] | None:
        """(tripped, message) of guardrail `name`, if the script has an outcome for it left
        (a `Supplier`)."""
        for index, event in enumerate(self.events):
            if event.type in _OUT_OF_BAND and event.guardrail_name == name \
                    and not self.used[index]:
                self.used[index] = True
                return event.type == "guardrail_fail", event.content or ""
        return None

    def unused(self) -> list[MockEvent]:
        return [e for e, used in zip(self.events, self.used, strict=True) if not used]

    # -- cursor ---------------------------------------------------------------------------

    def _peek(self) -> MockEvent | None:
        while self._cursor < len(self.events):
            event = self.events[self._cursor]
            if event.type not in _OUT_OF_BAND:  # guardrail outcomes are read by name
                return event
            self._cursor += 1
        return None

    def _take(self) -> None:
        self.used[self._cursor] = True
        self._cursor += 1

    def _call_id(self) -> str:
        self._calls += 1
        return f"mock_call_{self._calls}"


def _argument_problem(args: dict[str, Any], schema: dict[str, Any] | None) -> str | None:
    """What is wrong with the names of a call's arguments, by the tool's schema (a model is
    given the schema; a script that calls a tool with other names tests a call no model
    would make). None when they fit or the tool has no schema."""
    if not schema or not isinstance(schema.get("properties"), dict):
        return None
    properties = schema["properties"]
    known = list(properties)
    missing = [n for n in schema.get("required") or ()
               if n not in args and not _may_be_left_out(properties.get(n))]
    unknown = [] if schema.get("additionalProperties") else [n for n in args if n not in known]
    if not (missing or unknown):
        return None
    wrong = "; ".join(f"{what} {_names(names)}" for what, names in
                      (("missing", missing), ("unknown", unknown)) if names)
    return f"the tool's arguments are {_names(known)}: {wrong}."


def _may_be_left_out(prop: Any) -> bool:
    """A property with a default, or one that may be null: a strict schema (the OpenAI
    Agents SDK's) lists it as required, but the tool takes a call without it."""
    if not isinstance(prop, dict):
        return True
    types = [prop.get("type"), *(option.get("type") for option in prop.get("anyOf") or ()
                                 if isinstance(option, dict))]
    return "default" in prop or "null" in types or any(
        isinstance(t, list) and "null" in t for t in types)


def _names(names: Any) -> str:
    listed = ", ".join(repr(n) for n in names)
    return listed or "none"


