"""AgentResult: what a run produced, built from the store (so it is the same in any process)."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic import TypeAdapter

from .._errors import KeelError
from ._budget import BudgetExceeded, model_usage
from ._events import (
    ApprovedEvent,
    Event,
    InDoubtEvent,
    RejectedEvent,
    Status,
    ToolCallEvent,
    ToolResultEvent,
    WaitingEvent,
)
from ._json import jsonable, loads
from ._references import resolve
from ._schema import ApprovalRow, ExecutionRow, StepRow

__all__ = [
    "INPUT_LIST", "AgentResult", "PendingApproval", "TokenUsage", "ToolCall", "build_result",
    "load_output", "total_usage", "typed_output",
]

INPUT_LIST = "input_list"
"""The step an adapter journals, with the run's completion, the next run's input in: the
conversation so far (OpenAI: the SDK's `RunResult.to_input_list()`)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    call_id: str
    args: dict[str, Any]
    result: Any = None
    agent: str | None = None
    status: str = "done"
    """`done`, `rejected` (a reviewer or policy said no), `in_doubt` (an unsafe call a crash
    cut off; someone must resolve it), `pending` (not run yet) or `not_run` (the run ended
    without running it: a budget, a failure or a cancel stopped it first)."""


@dataclass(frozen=True)
class PendingApproval:
    """A gated call waiting for a decision."""

    approval_id: str
    call_id: str
    tool_name: str
    args: Any
    agent: str | None
    rule: str | None
    requested_at: float


@dataclass(frozen=True)
class TokenUsage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass
class AgentResult:
    """The outcome of an execution: final output, status, and everything that happened."""

    execution_id: str
    status: Status
    output: Any = None
    error: str | None = None
    events: list[Event] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    pending_approvals: list[PendingApproval] = field(default_factory=list)
    token_usage: TokenUsage | None = None
    agent: str | None = None
    """The agent the run started with."""
    budget_exceeded: BudgetExceeded | None = None
    """The budget that stopped the run (FAILED), and by how much."""
    input_list: list[Any] | None = field(default=None, repr=False)
    """What `to_input_list()` returns, stored with the run's completion (OpenAI runs)."""

    @property
    def is_success(self) -> bool:
        return self.status is Status.COMPLETED

    @property
    def is_waiting(self) -> bool:
        return self.status is Status.WAITING

    def to_input_list(self) -> list[Any]:
        """The run's input and every item it added, as the input of the conversation's next
        run (as the OpenAI Agents SDK's `RunResult.to_input_list()`): append the user's next
        message and run the agent again."""
        if self.input_list is None:
            raise KeelError(
                f"Execution {self.execution_id!r} has no input list: only a completed OpenAI "
                "Agents SDK run has one. A LangGraph graph continues its thread with the same "
                "config={'configurable': {'thread_id': ...}}, an ADK agent its session with "
                "the same session_id=.")
        return copy.deepcopy(self.input_list)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data (the CLI's --json, the HTTP API)."""
        return {
            "execution_id": self.execution_id, "status": self.status.value,
            "output": jsonable(self.output), "error": self.error, "agent": self.agent,
            "tool_calls": jsonable(self.tool_calls),
            "pending_approvals": jsonable(self.pending_approvals),
            "token_usage": jsonable(self.token_usage),
            "budget_exceeded": jsonable(self.budget_exceeded),
            "events": [event.model_dump(mode="json") for event in self.events],
        }

    def print_result(self, file: TextIO | None = None) -> None:
        """Print a readable summary: status, output, tool calls, pending approvals, usage."""
        out = file or sys.stdout
        rule = "─" * 64
        print(rule, file=out)
        print(f" execution {self.execution_id}   status {self.status.value}", file=out)
        print(rule, file=out)
        if self.error:
            print(f" error: {self.error}", file=out)
        if self.output is not None:
            print(f" output: {self.output}", file=out)
        for call in self.tool_calls:
            print(f" tool {call.name}({_short(call.args)}) -> {_short(call.result)} "
                  f"[{call.status}]", file=out)
        for pending in self.pending_approvals:
            print(f" waiting for approval: {pending.tool_name}({_short(pending.args)}) "
                  f"call {pending.call_id}", file=out)
        if self.status is Status.IN_DOUBT:
            doubt = next(e for e in reversed(self.events) if e.type == "in_doubt")
            print(f" in doubt: {doubt.tool_name} call {doubt.call_id}: {doubt.reason}",
                  file=out)
        if self.token_usage:
            u = self.token_usage
            print(f" tokens: {u.input_tokens} in, {u.output_tokens} out, "
                  f"{u.requests} requests", file=out)
        print(rule, file=out)


def build_result(
    row: ExecutionRow,
    events: list[Event],
    approvals: list[ApprovalRow],
    steps: dict[str, StepRow],
) -> AgentResult:
    """Assemble a result from stored rows. A pipeline's execution has no approval rows of its
    own: its stages hold them, and its pending calls are those its events show waiting."""
    status = Status(row.status)
    pending = [PendingApproval(a.id, a.call_id, a.tool_name, loads(a.args), a.agent, a.rule,
                               a.requested_at) for a in approvals if a.status == "pending"]
    if row.framework == "pipeline" and not status.is_terminal:
        pending = _pending_in_stages(events)
    return AgentResult(
        execution_id=row.id,
        status=status,
        output=load_output(row),
        error=row.error,
        events=events,
        tool_calls=_tool_calls(events, approvals, finished=status.is_terminal),
        pending_approvals=pending,
        token_usage=total_usage(steps),
        agent=row.agent_name,
        budget_exceeded=_budget_exceeded(row),
        input_list=loads(steps[INPUT_LIST].payload) if INPUT_LIST in steps else None,
    )


def load_output(row: ExecutionRow) -> Any:
    """The stored output, rebuilt as its declared type when that type can be imported."""
    return typed_output(loads(row.output), row.output_type)


def typed_output(data: Any, type_ref: str | None) -> Any:
    """JSON `data` rebuilt as the type `type_ref` names, when that type can be imported."""
    if data is None or not type_ref:
        return data
    try:
        return TypeAdapter(resolve(type_ref)).validate_python(data)
    except Exception:  # the type moved or cannot be imported here: plain JSON data
        return data


def _pending_in_stages(events: list[Event]) -> list[PendingApproval]:
    """The calls a pipeline's events show waiting (copied from its stages) and undecided."""
    decided = {e.approval_id for e in events if isinstance(e, ApprovedEvent | RejectedEvent)}
    return [PendingApproval(e.approval_id, e.call_id, e.tool_name, e.args, e.agent, e.reason,
                            e.ts) for e in events
            if isinstance(e, WaitingEvent) and e.approval_id not in decided]


def _tool_calls(events: list[Event], approvals: list[ApprovalRow], *,
                finished: bool) -> list[ToolCall]:
    """Each tool_call event with its result: the first tool_result of the same call id after
    it (a pipeline's stages, executions of their own, may use the same call ids). A call with
    no result is `not_run` once the run has `finished`, else `pending`."""
    rejected = {a.call_id for a in approvals if a.status == "rejected"} | {
        e.call_id for e in events if isinstance(e, RejectedEvent)}
    doubted = {e.call_id for e in events if isinstance(e, InDoubtEvent)}
    calls: list[tuple[ToolCallEvent, ToolResultEvent | None]] = []
    unanswered: dict[str, list[int]] = {}
    for e in events:
        if isinstance(e, ToolCallEvent):
            unanswered.setdefault(e.call_id, []).append(len(calls))
            calls.append((e, None))
        elif isinstance(e, ToolResultEvent) and unanswered.get(e.call_id):
            index = unanswered[e.call_id].pop(0)
            calls[index] = (calls[index][0], e)
    made = []
    for call, done in calls:
        if done is not None:
            status = "rejected" if call.call_id in rejected else "done"
        else:
            status = "in_doubt" if call.call_id in doubted else \
                "not_run" if finished else "pending"
        made.append(ToolCall(call.tool_name, call.call_id, call.args,
                             done.result if done else None, call.agent, status))
    return made


def total_usage(steps: dict[str, StepRow]) -> TokenUsage | None:
    """The tokens of an execution's model turns, and of its finished stages (a pipeline's)."""
    totals = [0, 0, 0, 0]
    for step in steps.values():
        if step.kind not in ("model", "stage") or step.status != "done":
            continue
        for i, count in enumerate(model_usage(loads(step.payload))):
            totals[i] += count
    return TokenUsage(*totals) if any(totals[1:]) else None


def _budget_exceeded(row: ExecutionRow) -> BudgetExceeded | None:
    reason = (loads(row.status_reason) or {}).get("budget_exceeded")
    return BudgetExceeded.model_validate(reason) if reason else None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"
