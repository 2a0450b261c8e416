"""AgentHandle: reach an execution by id from any process; EventStream: follow its events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, update

from .._errors import StoreError
from ._approvals import decide
from ._changes import CHANGES
from ._events import Event, Status
from ._family import PIPELINE, descendants, lock_family, wake_ancestors
from ._in_doubt import Resolution, resolve
from ._json import dumps
from ._result import AgentResult
from ._store import APPROVALS, EXECUTIONS, NewEvent, Store

if TYPE_CHECKING:
    from ._runtime import AgentRuntime

__all__ = ["AgentHandle", "EventStream", "cancel_agent"]


class AgentHandle:
    """A handle on one execution. Nothing is held in memory: every call reads the store."""

    def __init__(self, execution_id: str, runtime: AgentRuntime | None = None) -> None:
        from .. import _default_runtime

        self.execution_id = execution_id
        self.runtime = runtime if runtime is not None else _default_runtime()

    def __repr__(self) -> str:
        return f"AgentHandle({self.execution_id!r})"

    def status(self) -> Status:
        return Status(self.runtime.store.execution(self.execution_id).status)

    def result(self) -> AgentResult:
        """The execution's result as it stands now (it may still be running or waiting)."""
        return self.runtime.result(self.execution_id)

    def approve(
        self, call_id: str | None = None, *, reviewer: str | None = None, reason: str | None = None
    ) -> list[str]:
        """Approve the pending call `call_id` (default: every pending call).

        Returns the approved call ids. Raises `NotWaitingError`, `AlreadyDecidedError` or
        `ApprovalNotFoundError`; of two concurrent decisions exactly one succeeds.
        """
        return decide(self.runtime.store, self.execution_id, approve=True, call_id=call_id,
                      reviewer=reviewer, reason=reason)

    def reject(
        self, reason: str, *, call_id: str | None = None, reviewer: str | None = None
    ) -> list[str]:
        """Reject pending calls; the model receives `reason` instead of the tool's result."""
        return decide(self.runtime.store, self.execution_id, approve=False, call_id=call_id,
                      reviewer=reviewer, reason=reason)

    def respond(
        self, value: Any, *, call_id: str | None = None, reviewer: str | None = None
    ) -> list[str]:
        """Answer a framework's own pause (a LangGraph `interrupt()`) with `value`, which the
        paused code receives as is; it counts as an approval."""
        if value is None:
            raise TypeError("respond() needs a value; use approve() to approve without one.")
        return decide(self.runtime.store, self.execution_id, approve=True, call_id=call_id,
                      reviewer=reviewer, response=value)

    def resolve(
        self, action: Resolution, *, result: Any = None, reason: str | None = None,
        reviewer: str | None = None,
    ) -> list[str]:
        """Decide what became of the unsafe call(s) an IN_DOUBT execution was cut off in:
        "record" (it took effect; `result` is its result), "retry" (run it again) or "fail"
        (the execution fails with `reason`). After record or retry the run goes on (QUEUED:
        a worker, the runtime that started it, or `runtime.resume()` continues it). Returns
        the resolved call ids; raises `NotInDoubtError` if the execution is not IN_DOUBT."""
        return resolve(self.runtime.store, self.execution_id, action, result=result,
                       reason=reason, reviewer=reviewer)

    def cancel(self, reason: str | None = None) -> Status:
        """Cancel: at once if queued or waiting, at the next step if running elsewhere. A
        pipeline's unfinished stages are cancelled with it."""
        store = self.runtime.store
        with store.transaction() as conn:
            status, framework = lock_family(store, conn, self.execution_id)
            redactor = store.redactor_for(conn, self.execution_id)
            if redactor is not None:
                reason = redactor.redact_value(reason)
            status = _cancel(store, conn, self.execution_id, Status(status), reason)
            if framework == PIPELINE:
                for stage, stage_status in descendants(conn, self.execution_id, _UNFINISHED):
                    _cancel(store, conn, stage, Status(stage_status), reason)
            touched = wake_ancestors(store, conn, self.execution_id)  # a stage cancelled alone
        for execution_id in (self.execution_id, *touched):
            CHANGES.notify(execution_id)
        return status

    def stream(self, *, after: int = 0, timeout: float | None = None) -> EventStream:
        """Events from the store after sequence number `after`, then live ones."""
        return EventStream(self.runtime, self.execution_id, after=after, timeout=timeout)

    def join(self, timeout: float | None = None) -> AgentResult:
        """Wait until the execution finishes, waits for approval or is in doubt."""
        return self.runtime._follow(self.execution_id, timeout)


def cancel_agent(runtime: AgentRuntime, agent_name: str, *,
                 reason: str | None = None) -> dict[str, Status]:
    """The kill switch: cancel every unfinished execution of the agent named `agent_name`
    (queued, waiting and in-doubt ones at once, running ones at their next step); returns
    each one's status after the request."""
    unfinished = [row.id for status in (Status.QUEUED, Status.RUNNING, Status.WAITING,
                                        Status.IN_DOUBT)
                  for row in runtime.store.executions(status=status.value, agent=agent_name,
                                                      limit=100_000)]
    return {execution_id: AgentHandle(execution_id, runtime=runtime).cancel(reason)
            for execution_id in unfinished}


_UNFINISHED = [Status.QUEUED.value, Status.RUNNING.value, Status.WAITING.value,
               Status.IN_DOUBT.value]


def _cancel(store: Store, conn: Connection, execution_id: str, status: Status,
            reason: str | None) -> Status:
    """Cancel one execution inside `conn`'s transaction; returns its status after."""
    if status in (Status.QUEUED, Status.WAITING, Status.IN_DOUBT):
        conn.execute(
            update(APPROVALS)
            .where(APPROVALS.c.execution_id == execution_id, APPROVALS.c.status == "pending")
            .values(status="cancelled", decided_at=time.time(), reason=reason)
        )
        store.append_events(
            conn, execution_id, [NewEvent("cancelled", data={"reason": reason})],
            status=Status.CANCELLED.value, finished_at=time.time(),
        )
        return Status.CANCELLED
    if status is Status.RUNNING:  # its owner stops at its next step, saying why
        conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(
            cancel_requested=1, status_reason=dumps({"cancel_reason": reason})))
    return status


class EventStream:
    """Iterate the events of one execution until it settles (finishes, waits or is in doubt).

    Replays what the store holds and then follows live changes: at once for executions of
    this process, by polling for those of other processes. Once it has read the store, it
    rides out a store that stops answering for a while (a dropped connection, a restart).
    """

    def __init__(
        self, runtime: AgentRuntime, execution_id: str, *, after: int = 0,
        timeout: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.execution_id = execution_id
        self.events: list[Event] = []
        self._after = after
        self._timeout = timeout

    def __iter__(self) -> Iterator[Event]:
        store = self.runtime.store
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        connected = False
        while True:
            seen = CHANGES.version(self.execution_id)
            try:
                settled = Status(store.execution(self.execution_id).status).is_settled
                fresh = store.events(self.execution_id, after=self._after)
            except StoreError:
                if not connected:
                    raise  # a store that never answered is an error, not something to wait for
                time.sleep(self.runtime.poll_interval)  # a dropped connection: read again
                continue
            connected = True
            for event in fresh:
                self._after = event.seq
                self.events.append(event)
                yield event
            if settled:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Execution {self.execution_id!r} did not settle within {self._timeout} s."
                )
            CHANGES.wait(self.execution_id, seen, self.runtime.poll_interval)

    async def __aiter__(self) -> AsyncIterator[Event]:
        """`async for event in stream`: the same events, waiting in a worker thread."""
        events = iter(self)
        while (event := await asyncio.to_thread(next, events, None)) is not None:
            yield event

    def get_result(self) -> AgentResult:
        """Follow the stream to its end and return the execution's result."""
        for _ in self:
            pass
        return self.runtime.result(self.execution_id)

    async def get_result_async(self) -> AgentResult:
        return await asyncio.to_thread(self.get_result)
