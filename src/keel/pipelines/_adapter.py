"""The pipeline adapter: runs a `Pipeline` or `Parallel` as an execution whose stages are
executions of their own (`_stage`), on the runtime that drives the pipeline.

A sequence runs its stages in turn, handing each the one before's output (`_handover`), and
marks each move with a `handoff` event (agent: the stage that finished, target: the next). A
parallel stage runs its branches at once and gathers their outputs by branch name. When a
stage stops without completing, the pipeline stops the same way: it waits while a stage
waits for a decision (which is made on the stage, or on the pipeline for it), is in doubt
while a stage is, and fails or is cancelled with it, cancelling its other unfinished stages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NoReturn

from .._errors import StageFailedError, _Cancelled, _Suspended
from ..adapters import Outcome, adapter_named
from ..runtime._changes import CHANGES
from ..runtime._events import Status
from ..runtime._execution import Execution
from ..runtime._family import PIPELINE, lock_family, wake_ancestors
from ..runtime._handle import AgentHandle
from ..runtime._options import RunOptions
from ..runtime._runtime import driving_runtime
from ..runtime._store import NewEvent
from ._budget import pipeline_over_budget
from ._build import AgentStage, Parallel, Pipeline
from ._handover import handover, stage_input
from ._stage import Settled, run_stage

__all__ = ["ADAPTER", "PipelineAdapter"]


class PipelineAdapter:
    framework = PIPELINE

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, Pipeline | Parallel)

    def agent_name(self, stage: Any) -> str:
        return str(stage.name)

    def output_type(self, stage: Any) -> type | None:
        """A sequence's is its last stage's; a parallel stage's output is a dict."""
        if isinstance(stage, Pipeline):
            return self.output_type(stage.stages[-1])
        if isinstance(stage, AgentStage):
            return adapter_named(stage.framework).output_type(stage.agent)
        return None

    async def execute(
        self, execution: Execution, stage: Any, input: Any, options: RunOptions
    ) -> Outcome:
        if isinstance(stage, Parallel):
            return await _gather(execution, stage, input, options)
        return await _in_turn(execution, stage, input, options)


async def _in_turn(execution: Execution, pipeline: Pipeline, input: Any,
                   options: RunOptions) -> Outcome:
    value, last = input, None
    for index, stage in enumerate(pipeline.stages):
        following = pipeline.stages[index + 1] if index + 1 < len(pipeline.stages) else None
        handoff = [NewEvent("handoff", stage.name, {"target": following.name})] \
            if following else []
        last = await run_stage(execution, stage, index, stage_input(stage, value), options,
                               then=handoff)
        if last.status is not Status.COMPLETED:
            _stop(execution, [last])
        value = handover(stage, last.output)
    assert last is not None  # a pipeline has at least one stage
    return Outcome("completed", output=last.output, agent=last.stage.name,
                   output_type=ADAPTER.output_type(pipeline))


async def _gather(execution: Execution, parallel: Parallel, input: Any,
                  options: RunOptions) -> Outcome:
    runs = [run_stage(execution, branch, index, stage_input(branch, input), options)
            for index, branch in enumerate(parallel.branches)]
    # Every branch runs until it stops, whatever the others do: none is cut off midway.
    ended = await asyncio.gather(*runs, return_exceptions=True)
    errors = [e for e in ended if isinstance(e, BaseException)]
    if errors:
        raise errors[0]
    settled = [s for s in ended if isinstance(s, Settled)]
    if any(s.status is not Status.COMPLETED for s in settled):
        _stop(execution, settled)
    return Outcome("completed", output={s.stage.name: s.output for s in settled},
                   agent=parallel.name)


def _stop(execution: Execution, settled: Sequence[Settled]) -> NoReturn:
    """The pipeline stops as its stages did: failed or cancelled if one was (its other
    unfinished stages are cancelled; a stage out of budget puts it out of budget), else
    waiting (or in doubt) for a decision on a stage."""
    failed = [s for s in settled if s.status is Status.FAILED]
    cancelled = [s for s in settled if s.status is Status.CANCELLED]
    if failed or cancelled:
        runtime = driving_runtime()
        for other in settled:
            if not other.status.is_terminal:
                AgentHandle(other.execution_id, runtime=runtime).cancel(
                    f"{(failed or cancelled)[0].stage.name} stopped the pipeline")
        if failed and failed[0].exceeded is not None:
            raise pipeline_over_budget(execution, failed[0].exceeded)
        if failed:
            raise StageFailedError(_failure(failed[0]))
        raise _Cancelled
    waiting = any(s.status is Status.WAITING for s in settled)
    execution.pause(Status.WAITING if waiting else Status.IN_DOUBT)
    _wake_if_decided(execution, [s.execution_id for s in settled])
    raise _Suspended


def _wake_if_decided(execution: Execution, stages: list[str]) -> None:
    """A decision made between the stage's stop and the pipeline's found the pipeline still
    running and left it so: look again now that it waits, and go on if nothing does."""
    woken = []
    with execution.store.transaction() as conn:
        lock_family(execution.store, conn, execution.id)
        for stage in stages:
            woken += wake_ancestors(execution.store, conn, stage)
    for execution_id in woken:
        CHANGES.notify(execution_id)


def _failure(stage: Settled) -> str:
    return (f"Stage {stage.stage.name!r} failed: {stage.error}. Its execution "
            f"{stage.execution_id!r} has the details (keel show {stage.execution_id}).")


ADAPTER = PipelineAdapter()
