"""One stage of a pipeline, run as an execution of its own: a child whose `parent_id` names the
pipeline's execution and whose id is the pipeline's id and the stage's position (`<id>.1`).

The pipeline's journal holds one step per stage, `stage:<index>`: an intent written before the
stage's execution is admitted (a fenced write, so a process that lost the pipeline stops
there), and done, with the stage's output (and what it spent of the pipeline's budget,
`_budget`), once the stage completed. A resumed pipeline takes a done stage's output from its
own journal and runs nothing of it again; an unfinished stage's execution resumes from the
stage's own journal. The stage's execution carries the pipeline's redaction.

While a stage runs, its events are copied into the pipeline's events as they are committed
(`_Relay`), so that the pipeline's stream shows its stages at work, numbered in the
pipeline's own sequence. The step records how far the copying got, so that a resumed pipeline
copies every event once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, TypeVar

from .._errors import ExecutionNotFoundError, ReplayMismatchError
from ..adapters import adapter_named
from ..runtime._budget import BudgetExceeded
from ..runtime._changes import CHANGES
from ..runtime._events import Status
from ..runtime._execution import Execution
from ..runtime._json import dumps, jsonable, loads
from ..runtime._leases import claim, lease_owner
from ..runtime._options import RunOptions, redacted_options
from ..runtime._references import type_reference
from ..runtime._result import _budget_exceeded, load_output, total_usage, typed_output
from ..runtime._runtime import TAKEN_OVER, AgentRuntime, driving_runtime
from ..runtime._schema import ExecutionRow
from ..runtime._store import NewEvent
from ._budget import spent, stage_budget
from ._build import AgentStage, Stage

__all__ = ["Settled", "run_stage"]

T = TypeVar("T")

_NOT_COPIED = frozenset({"done", "error", "cancelled", "resumed", "approved", "rejected"})
"""Stage events a pipeline does not copy: it ends, fails, is cancelled and resumes with events
of its own, and a decision is recorded on every pipeline above the stage as it is made."""

_RELAY_INTERVAL = 0.05
"""How often a running stage is checked for new events (an in-process counter; the store is
read only when the stage wrote something)."""

_UNSET: Any = object()


@dataclass(frozen=True)
class Settled:
    """How a stage stands once it stopped: completed, or waiting, in doubt, failed, cancelled."""

    stage: Stage
    execution_id: str
    status: Status
    output: Any = None
    """The stage's output when it completed: the live object, or rebuilt as its type."""
    error: str | None = None
    exceeded: BudgetExceeded | None = None
    """Why the stage failed, when it ran out of the budget it was given."""


async def run_stage(
    pipeline: Execution, stage: Stage, index: int, input: Any, options: RunOptions, *,
    then: Sequence[NewEvent] = (),
) -> Settled:
    """Run (or resume, or recall) stage `index` of the pipeline `pipeline` drives, on `input`,
    until it stops; `then`: events to commit with its completion (the handoff to the next)."""
    key, execution_id = f"stage:{index}", f"{pipeline.id}.{index}"
    options = _options_for(stage, options)
    done = pipeline.recorded(key)
    if done is not None:
        _same_stage(stage, index, done)
        return Settled(stage, execution_id, Status.COMPLETED,
                       typed_output(done["output"], done.get("output_type")))
    runtime = driving_runtime()
    started = None if pipeline.fresh else pipeline.store.step(pipeline.id, key)
    relay = _Relay(pipeline, key, stage, execution_id)
    if started is None:
        relay.save()  # the intent, before the stage's execution is admitted
    else:
        progress = loads(started.payload)
        _same_stage(stage, index, progress)
        relay.copied = int(progress["copied"])
    pipeline.check_cancelled()
    row = None if started is None else _admitted(pipeline, execution_id)
    fresh = row is None  # admitted just now, so its journal is empty
    if row is None:
        row = _admit(runtime, pipeline, stage, execution_id, input, options)
    output = await relay.during(_drive(runtime, pipeline, row, stage, options, fresh=fresh))
    row = pipeline.store.execution(execution_id)
    status = Status(row.status)
    if status is not Status.COMPLETED:
        relay.save()
        return Settled(stage, execution_id, status, error=row.error,
                       exceeded=_budget_exceeded(row))
    if output is _UNSET:  # it completed in another process, or before a crash
        output = load_output(row)
    steps = pipeline.store.steps(execution_id)
    usage = total_usage(steps)
    relay.save("done", {"output": jsonable(output), "output_type": row.output_type,
                        "usage": asdict(usage) if usage else None, "spent": spent(steps)},
               then)
    return Settled(stage, execution_id, status, output)


async def _drive(runtime: AgentRuntime, pipeline: Execution, row: ExecutionRow, stage: Stage,
                 options: RunOptions, *, fresh: bool) -> Any:
    """Drive the stage's execution until it stops; its live output if it completed here.

    A stage decided while its pipeline was still running (a parallel branch, say) goes on at
    once. A stage another live process drives is followed until it stops, or until its
    owner's lease runs out and it can be taken over.
    """
    output = _UNSET
    while Status(row.status) in (Status.QUEUED, Status.RUNNING):
        claimed = row if fresh else claim(pipeline.store, row.id,
                                          lease_seconds=runtime.lease_seconds)
        if claimed is None:
            pipeline.confirm_lease()  # the pipeline itself may have been taken over meanwhile
            await asyncio.sleep(runtime.poll_interval)
        else:
            agent = stage.agent if isinstance(stage, AgentStage) else stage
            driven = await runtime.drive(claimed, agent, options, fresh=fresh)
            output = _UNSET if driven is TAKEN_OVER else driven
        fresh = False
        row = pipeline.store.execution(row.id)
    return output


def _admit(runtime: AgentRuntime, pipeline: Execution, stage: Stage, execution_id: str,
           input: Any, options: RunOptions) -> ExecutionRow:
    """Admit the stage's execution, owned by this process (as `AgentRuntime` admits a run it
    drives at once). It records no agent reference: its pipeline finds its agent, and
    workers never claim it on its own. It gets what the pipeline has left of its budget, and
    the pipeline's redaction, which its input and options are stored with."""
    framework = _framework(stage)
    agent = stage.agent if isinstance(stage, AgentStage) else stage
    output_type = adapter_named(framework).output_type(agent)
    budget = stage_budget(pipeline, stage)
    stored_input, stored_options = jsonable(input), options.to_json()
    redactor = pipeline.redactor
    if redactor is not None:
        stored_input = redactor.redact_value(stored_input)
        stored_options = redacted_options(stored_options, redactor)
    now = time.time()
    values: dict[str, Any] = {
        "id": execution_id, "framework": framework, "agent_name": stage.name,
        "agent_ref": None, "parent_id": pipeline.id, "input": dumps(stored_input),
        "options": dumps(stored_options), "status": Status.RUNNING.value,
        "output_type": type_reference(output_type) if output_type else None,
        "conversation": options.conversation if framework == "adk" else None,
        "budget": budget, "redaction": redactor.spec() if redactor is not None else None,
        "lease_owner": lease_owner(), "lease_epoch": 1,
        "lease_expires_at": now + runtime.lease_seconds, "created_at": now, "updated_at": now,
    }
    pipeline.store.insert_execution(values, durable=False)
    # The row it is driven from: on the live input, as a fresh run is (only what is stored is
    # redacted; a resume goes on from the stored input, as any run's does).
    return ExecutionRow.model_construct(**{**values, "input": dumps(input)})


# Where each framework's RunConfig class lives: the OpenAI Agents SDK and ADK both call theirs
# `run_config=`, and a pipeline's run_config reaches only the stages of its framework.
_RUN_CONFIG_MODULE = {"openai": "agents.", "adk": "google.adk."}


def _options_for(stage: Stage, options: RunOptions) -> RunOptions:
    run_config = options.run_config
    if run_config is None or not isinstance(stage, AgentStage):
        return options
    module = _RUN_CONFIG_MODULE.get(stage.framework)
    if module and type(run_config).__module__.startswith(module):
        return options
    return replace(options, run_config=None)


def _admitted(pipeline: Execution, execution_id: str) -> ExecutionRow | None:
    try:
        return pipeline.store.execution(execution_id)
    except ExecutionNotFoundError:
        return None


def _same_stage(stage: Stage, index: int, journaled: dict[str, Any]) -> None:
    """The stage at `index` is the one the journal holds: its name, and its framework (the
    journal of one framework's agent means nothing to another's; older journals lack it)."""
    ran = (journaled.get("stage"), journaled.get("framework", _framework(stage)))
    if ran != (stage.name, _framework(stage)):
        raise ReplayMismatchError(
            f"Stage {index} of this pipeline execution ran {ran[0]!r} ({ran[1]}), but the "
            f"pipeline has {stage.name!r} ({_framework(stage)}) there now: it changed since "
            "the run started. Resume the run with the pipeline it started with "
            "(runtime.resume(execution_id, agent=...)), or start a new run.")


def _framework(stage: Stage) -> str:
    return stage.framework if isinstance(stage, AgentStage) else "pipeline"


class _Relay:
    """Copies a stage's committed events into its pipeline's events, live."""

    def __init__(self, pipeline: Execution, key: str, stage: Stage, execution_id: str) -> None:
        self.pipeline, self.key, self.stage = pipeline, key, stage
        self.execution_id = execution_id
        self.copied = 0  # the stage's last event copied so far

    def save(self, status: Literal["intent", "done"] = "intent",
             payload: dict[str, Any] | None = None, then: Sequence[NewEvent] = ()) -> None:
        """Commit the events not copied yet (and `then`), with the step saying how far
        copying got."""
        copies, last = self._copies()
        self._record([*copies, *then], last, status, payload or {})

    async def during(self, work: Awaitable[T]) -> T:
        """Await `work` while copying what the stage commits meanwhile."""
        following = asyncio.create_task(self._follow())
        try:
            return await work
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    async def _follow(self) -> None:
        seen = CHANGES.version(self.execution_id)
        while True:
            await asyncio.sleep(_RELAY_INTERVAL)
            version = CHANGES.version(self.execution_id)
            if version != seen:
                seen = version
                copies, last = self._copies()
                if copies:
                    self._record(copies, last, "intent", {})

    def _copies(self) -> tuple[list[NewEvent], int]:
        """The stage's events not copied yet, as the pipeline's; and the last one's number."""
        events = self.pipeline.store.events(self.execution_id, after=self.copied)
        if not events:
            return [], self.copied
        copies = [NewEvent(e.type, e.agent, e.model_dump(
            mode="json", exclude={"execution_id", "seq", "ts", "agent", "type"}))
            for e in events if e.type not in _NOT_COPIED]
        return copies, events[-1].seq

    def _record(self, events: list[NewEvent], last: int, status: Literal["intent", "done"],
                payload: dict[str, Any]) -> None:
        self.pipeline.record(
            self.key, kind="stage", name=self.stage.name, status=status, events=events,
            payload={"stage": self.stage.name, "framework": _framework(self.stage),
                     "execution_id": self.execution_id, "copied": last, **payload})
        self.copied = last
