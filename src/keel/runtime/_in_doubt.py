"""Resolving an IN_DOUBT execution: a human says what became of an unsafe call a crash cut off.

    record  the call did take effect: journal `result` as its result; the run goes on from it
    retry   it did not (or may safely run again): run it again when the run goes on
    fail    give up: the execution FAILED, with the reason

The decision commits in one transaction with the execution's new status (QUEUED to go on, for
a worker or the runtime that admitted it, or FAILED), so two concurrent resolutions cannot
both apply.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from .._errors import NotInDoubtError
from ._changes import CHANGES
from ._events import Status
from ._family import PIPELINE, descendants, lock_family, wake_ancestors
from ._json import dumps, jsonable, loads
from ._schema import StepRow
from ._store import STEPS, NewEvent, Store

__all__ = ["Resolution", "resolve"]

Resolution = Literal["record", "retry", "fail"]


def resolve(
    store: Store,
    execution_id: str,
    action: Resolution,
    *,
    result: Any = None,
    reason: str | None = None,
    reviewer: str | None = None,
) -> list[str]:
    """Apply `action` to every call of the execution that is in doubt (on a pipeline: of its
    stages that are in doubt); returns their ids."""
    if action not in ("record", "retry", "fail"):
        raise ValueError(f"action must be 'record', 'retry' or 'fail', not {action!r}.")
    with store.transaction() as conn:
        status, framework = lock_family(store, conn, execution_id)
        if framework == PIPELINE:  # its stages hold the calls
            targets = [i for i, _ in descendants(conn, execution_id, [Status.IN_DOUBT.value])]
        else:
            targets = [execution_id] if status == Status.IN_DOUBT.value else []
        if not targets:
            raise NotInDoubtError(
                f"Execution {execution_id!r} is {status}, not IN_DOUBT: there is no cut-off "
                "call to resolve. Check AgentHandle.status() first.")
        resolved, touched = [], set(targets)
        for target in targets:
            resolved += _resolve(store, conn, target, action, result=result, reason=reason,
                                 reviewer=reviewer)
            touched.update(wake_ancestors(store, conn, target))
    for member in touched:
        CHANGES.notify(member)
    return resolved


def _resolve(
    store: Store, conn: Connection, execution_id: str, action: Resolution, *, result: Any,
    reason: str | None, reviewer: str | None,
) -> list[str]:
    """Resolve the in-doubt calls of one IN_DOUBT execution inside `conn`'s transaction."""
    by = f" by {reviewer}" if reviewer else ""
    redactor = store.redactor_for(conn, execution_id)
    if redactor is not None:  # stored as the run stores its tools' results
        result, reason = redactor.redact_value(jsonable(result)), redactor.redact_value(reason)
    calls = [step for step in (StepRow.model_construct(**r._mapping) for r in conn.execute(
        select(STEPS).where(STEPS.c.execution_id == execution_id,
                            STEPS.c.status == "intent", STEPS.c.kind == "tool")))
             if loads(step.payload).get("unsafe")]
    events: list[NewEvent] = []
    for step in calls:
        call_id = step.step_key.removeprefix("tool:")
        resolved = {"action": action, "reviewer": reviewer, "reason": reason,
                    "at": time.time()}
        if action == "record":
            stored = jsonable(result)
            payload = {**loads(step.payload), "result": stored, "resolved": resolved}
            events.append(NewEvent("tool_result", data={
                "tool_name": step.name, "call_id": call_id, "result": stored}))
            status, finished_at = "done", time.time()
        else:
            payload = {**loads(step.payload), "resolved": resolved}
            status, finished_at = ("retry" if action == "retry" else "intent"), None
        conn.execute(update(STEPS).where(
            STEPS.c.execution_id == execution_id, STEPS.c.step_key == step.step_key
        ).values(status=status, payload=dumps(payload), finished_at=finished_at))
    names = ", ".join(f"{s.name} ({s.step_key.removeprefix('tool:')})" for s in calls)
    if action == "fail":
        message = f"In doubt, failed{by}: {reason or 'no reason given'}"
        store.append_events(conn, execution_id, [NewEvent("error", data={
            "content": message})], status=Status.FAILED.value, error=message,
            finished_at=time.time())
    else:
        what = "recorded the result of" if action == "record" else "retries"
        events.append(NewEvent("resumed", data={
            "reason": f"in doubt, resolved{by}: {what} {names}"}))
        store.append_events(conn, execution_id, events, status=Status.QUEUED.value)
        store.notify_work(conn, execution_id)
    return [s.step_key.removeprefix("tool:") for s in calls]
