"""A pipeline's budget, shared by its stages: it caps the steps, tool calls, tokens and running
time of the whole pipeline run.

Each stage starts with what its pipeline has left (`stage_budget`), and its own meter stops it
there, as a single agent's stops it; a stage stopped so stops its pipeline with the same reason,
counted against the pipeline's limit (`pipeline_over_budget`). A stage's finished step records
what it spent (`spent`), so the next stage is given the rest. Parallel branches each start with
what the pipeline had left when they started, and together may go past it: starting a stage is
a step boundary, where the pipeline stops if its stages went past its budget.
"""

from __future__ import annotations

from typing import Any, get_args

from ..runtime._budget import Budget, BudgetExceeded, BudgetName, Meter, _OverBudget
from ..runtime._execution import Execution
from ..runtime._json import dumps, loads
from ..runtime._schema import StepRow
from ._build import Stage

__all__ = ["pipeline_over_budget", "spent", "stage_budget"]


def spent(steps: dict[str, StepRow]) -> dict[str, int]:
    """What an execution spent, from its journal: its model and tool calls (counted as its
    meter counts them) and what its finished stages spent (a pipeline's)."""
    meter = Meter(Budget(), run_seconds=0.0,
                  journal=[(s.kind, s.status, s.payload) for s in steps.values()])
    total = {"max_steps": meter.model_calls + meter.tool_calls,
             "max_tool_calls": meter.tool_calls, "max_tokens": meter.tokens}
    for step in steps.values():
        if step.kind == "stage" and step.status == "done":
            for name, count in (loads(step.payload).get("spent") or {}).items():
                total[name] += count
    return total


def stage_budget(pipeline: Execution, stage: Stage) -> str | None:
    """The budget `stage` starts with, as JSON for its row: what `pipeline` has left of its own
    (None when it has none). Stops the pipeline if its stages went past its budget."""
    budget = pipeline.meter.budget
    if budget.to_json() is None:
        return None
    used: dict[str, Any] = {**spent(pipeline.store.steps(pipeline.id)),
                            "max_seconds": round(pipeline.meter.seconds, 3)}
    left = {}
    for name in get_args(BudgetName):
        limit = getattr(budget, name)
        if limit is None:
            continue
        if used[name] > limit:
            raise _OverBudget(BudgetExceeded(budget=name, limit=limit, used=used[name],
                                             next_step=f"the stage {stage.name}"))
        left[name] = limit - used[name]
    return dumps(left)


def pipeline_over_budget(pipeline: Execution, exceeded: BudgetExceeded) -> _OverBudget:
    """What stops `pipeline` when one of its stages ran out of the budget it was given: the
    same reason, counted against the pipeline's limit (the stage was given what the pipeline
    had left of it, so what the pipeline had spent before is the difference)."""
    limit = getattr(pipeline.meter.budget, exceeded.budget)
    return _OverBudget(exceeded.model_copy(update={
        "limit": limit, "used": round(exceeded.used + limit - exceeded.limit, 3)}))
