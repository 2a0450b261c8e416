"""Budgets: limits on what one run may spend, checked at every step boundary.

What counts, for every framework alike:
    steps       model calls and tool calls (handoffs and keel's bookkeeping do not count)
    tool_calls  tool calls that ran (a rejected call did not)
    tokens      total tokens (input and output) as each model response reports them
    seconds     time the run spent running: not queued, not waiting for a human

A run's usage is counted from its journal when it is claimed, so a resumed run goes on from
what it used before instead of starting afresh; only a model or tool call that a crash cut off
before it was journaled is counted again (it runs again). Before each model call and each tool
call, `Meter.start()` stops the run when a budget leaves no room for it: a count budget
allows exactly that many calls; tokens and seconds are known only after a call, so the run
stops at the first boundary after it went past them. A call in flight is never interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .._errors import _Stopped
from ._json import dumps, loads

__all__ = ["Budget", "BudgetExceeded", "BudgetName", "Meter", "model_usage"]

BudgetName = Literal["max_steps", "max_seconds", "max_tool_calls", "max_tokens"]


@dataclass(frozen=True)
class Budget:
    """Limits on one run; None leaves that one unlimited.

        AgentRuntime(budget=Budget(max_steps=20, max_seconds=45))     # every run's default
        runtime.run(agent, ticket, budget=Budget(max_tool_calls=5))   # this run: also at most 5

    A run's own budget takes precedence field by field over the runtime's; what results is
    stored with the execution, so a resume in another process and a `keel worker` enforce the
    same limits. A run that exceeds one stops FAILED, with `result.budget_exceeded` saying
    which one and by how much.
    """

    max_steps: int | None = None
    """Model calls plus tool calls."""
    max_seconds: float | None = None
    """Running time; time spent queued or waiting for an approval does not count."""
    max_tool_calls: int | None = None
    """Tool calls that ran."""
    max_tokens: int | None = None
    """Total tokens (input and output) the model responses reported."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None:
                continue
            kind = (int, float) if name == "max_seconds" else int
            if isinstance(value, bool) or not isinstance(value, kind):
                raise TypeError(f"Budget({name}={value!r}): a limit is a positive "
                                f"{'number' if name == 'max_seconds' else 'int'}, or None "
                                "for no limit.")
            if not 0 < value < math.inf:
                raise ValueError(f"Budget({name}={value!r}): a limit is a positive number, "
                                 "or None for no limit.")

    def override(self, other: Budget | None) -> Budget:
        """This budget with every limit `other` sets taking the place of this one's."""
        if other is None:
            return self
        if not isinstance(other, Budget):
            raise TypeError(f"budget= takes a keel.Budget(max_steps=..., max_seconds=..., "
                            f"max_tool_calls=..., max_tokens=...), not {other!r}.")
        return Budget(**{f.name: getattr(other, f.name) if getattr(other, f.name) is not None
                         else getattr(self, f.name) for f in fields(self)})

    def to_json(self) -> str | None:
        """The limits that are set, as JSON text for the execution row (None without any)."""
        limits = {name: value for name, value in asdict(self).items() if value is not None}
        return dumps(limits) if limits else None

    @classmethod
    def from_json(cls, text: str | None) -> Budget:
        """The limits stored with an execution. A pipeline's stage is given what its pipeline
        has left, which may be nothing (0) of a count: no caller asks for that, but it holds."""
        budget = cls()
        for name, value in (loads(text) or {}).items():
            object.__setattr__(budget, name, value)
        return budget


class BudgetExceeded(BaseModel):
    """Why a run stopped FAILED: it had no budget left for its next step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: BudgetName
    limit: int | float
    used: int | float
    """For steps and tool calls, the limit itself (the next call would have gone past it);
    for tokens and seconds, what the run had used, past the limit."""
    next_step: str
    """What the run was about to do: "a model call" or "the tool call <name>"."""

    @property
    def message(self) -> str:
        setting = f"{self.budget}={self.limit:g}"
        if self.budget == "max_steps":
            spent = f"The run made {self.used:g} model and tool calls, its budget ({setting}),"
        elif self.budget == "max_tool_calls":
            spent = f"The run made {self.used:g} tool calls, its budget ({setting}),"
        elif self.budget == "max_tokens":
            spent = (f"The run used {self.used:g} tokens, {self.used - self.limit:g} past its "
                     f"budget ({setting}),")
        else:
            spent = (f"The run ran for {self.used:.1f} s, {self.used - self.limit:.1f} s past "
                     f"its budget ({setting}),")
        return (f"{spent} and stopped before {self.next_step}. Start a new run with a larger "
                "keel.Budget if it needs more.")


class _OverBudget(_Stopped):
    """Unwinds a run that has no budget left; it fails with the reason."""

    def __init__(self, exceeded: BudgetExceeded) -> None:
        super().__init__(exceeded.message)
        self.status_reason = {"budget_exceeded": exceeded.model_dump(mode="json")}


class Meter:
    """What one run has used of its budget, as this process knows it."""

    def __init__(self, budget: Budget, *, run_seconds: float,
                 journal: Iterable[tuple[str, str, str | None]] = ()) -> None:
        """`journal`: (kind, status, payload) of each step the run journaled before."""
        self.budget = budget
        self.model_calls = self.tool_calls = self.tokens = 0
        self._run_seconds = run_seconds
        self._since = time.monotonic()
        for kind, status, payload in journal:
            if kind == "model" and status == "done":
                self.model_calls += 1
                self.tokens += model_usage(loads(payload))[3]
            elif kind == "tool" and not (loads(payload) or {}).get("rejected"):
                self.tool_calls += 1  # an intent counts: the call started

    @property
    def seconds(self) -> float:
        """Running time so far: earlier segments (as stored) plus this one."""
        return self._run_seconds + time.monotonic() - self._since

    def check(self, kind: Literal["model", "tool"], name: str = "", *,
              again: bool = False) -> None:
        """Stop the run if a budget leaves no room for a model or tool call (`again`: one the
        journal counted already, which runs again after a crash)."""
        budget = self.budget
        steps = self.model_calls + self.tool_calls
        over: tuple[BudgetName, int | float, int | float] | None = None
        if budget.max_steps is not None and not again and steps >= budget.max_steps:
            over = ("max_steps", budget.max_steps, steps)
        elif budget.max_tool_calls is not None and kind == "tool" and not again and \
                self.tool_calls >= budget.max_tool_calls:
            over = ("max_tool_calls", budget.max_tool_calls, self.tool_calls)
        elif budget.max_tokens is not None and self.tokens > budget.max_tokens:
            over = ("max_tokens", budget.max_tokens, self.tokens)
        elif budget.max_seconds is not None and self.seconds > budget.max_seconds:
            over = ("max_seconds", budget.max_seconds, round(self.seconds, 3))
        if over is not None:
            raise _OverBudget(BudgetExceeded(
                budget=over[0], limit=over[1], used=over[2],
                next_step="a model call" if kind == "model" else f"the tool call {name}"))

    def start(self, kind: Literal["model", "tool"], name: str = "", *,
              again: bool = False) -> None:
        """A model or tool call is about to start: `check()` it, then count it."""
        self.check(kind, name, again=again)
        if again:
            return
        if kind == "model":
            self.model_calls += 1
        else:
            self.tool_calls += 1

    def answered(self, payload: Any) -> None:
        """A model response was journaled: add the tokens it reports."""
        self.tokens += model_usage(payload)[3]


def model_usage(payload: Any) -> tuple[int, int, int, int]:
    """(requests, input, output, total tokens) of a journaled model response: keel's own
    `usage` entry (OpenAI Agents SDK, LangGraph), or ADK's `usage_metadata`."""
    payload = payload if isinstance(payload, dict) else {}
    usage = payload.get("usage")
    if isinstance(usage, dict):
        counts = [int(usage.get(key) or 0) for key in
                  ("requests", "input_tokens", "output_tokens", "total_tokens")]
    elif isinstance(meta := payload.get("usage_metadata"), dict):
        counts = [1, int(meta.get("prompt_token_count") or 0),
                  int(meta.get("candidates_token_count") or 0),
                  int(meta.get("total_token_count") or 0)]
    else:
        return (1, 0, 0, 0)
    if not counts[3]:
        counts[3] = counts[1] + counts[2]
    return counts[0], counts[1], counts[2], counts[3]
