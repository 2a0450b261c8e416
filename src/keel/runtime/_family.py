"""Executions and their stages: a pipeline's stages are executions whose `parent_id` names it.

A decision on a pipeline is a decision on the stage that waits for it; a stage that no longer
waits lets the pipelines above it go on (`wake_ancestors`). Lookups go from the bottom up:
from executions that wait (the status index finds them) along `parent_id` to the root, so
none of them scans the executions table.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, bindparam, select, text

from .._errors import ExecutionNotFoundError
from ._events import Status
from ._store import EXECUTIONS, Store

__all__ = ["PIPELINE", "ancestors", "descendants", "lock_family", "wake_ancestors"]

PIPELINE = "pipeline"
"""The `framework` of a pipeline's execution (the only executions with stages)."""

_WAITS_FOR_A_HUMAN = (Status.WAITING.value, Status.IN_DOUBT.value)

# Each execution with one of the statuses, paired with each of its ancestors in turn.
_DESCENDANTS = text("""
WITH RECURSIVE up(id, status, ancestor) AS (
    SELECT id, status, parent_id FROM keel_executions
    WHERE status IN :statuses AND parent_id IS NOT NULL
  UNION ALL
    SELECT up.id, up.status, e.parent_id FROM up JOIN keel_executions e ON e.id = up.ancestor
    WHERE up.ancestor <> :root AND e.parent_id IS NOT NULL
)
SELECT id, status FROM up WHERE ancestor = :root ORDER BY id
""").bindparams(bindparam("statuses", expanding=True))


def lock_family(store: Store, conn: Connection, execution_id: str) -> tuple[str, str]:
    """Lock the execution's root (its outermost pipeline, or itself) and then the execution,
    so that decisions on any execution of one family apply one at a time and always take
    their locks in the same order; returns the execution's (status, framework)."""
    chain = ancestors(conn, execution_id)
    if chain:
        store.locked_status(conn, chain[-1][0])
    row = conn.execute(select(EXECUTIONS.c.status, EXECUTIONS.c.framework).where(
        EXECUTIONS.c.id == execution_id).with_for_update()).first()
    if row is None:
        raise ExecutionNotFoundError(f"No execution {execution_id!r} in the store at "
                                     f"{store.safe_url}.")
    return str(row.status), str(row.framework)


def ancestors(conn: Connection, execution_id: str) -> list[tuple[str, str]]:
    """(id, status) of the pipelines the execution is a stage of, innermost first."""
    found: list[tuple[str, str]] = []
    parent = _status_and_parent(conn, execution_id)[1]
    while parent is not None:
        status, above = _status_and_parent(conn, parent)
        if status is None:
            break
        found.append((parent, status))
        parent = above
    return found


def descendants(conn: Connection, root: str, statuses: Collection[str]) -> list[tuple[str, str]]:
    """(id, status) of the stages (at any depth) of `root` that have one of `statuses`."""
    rows = conn.execute(_DESCENDANTS, {"statuses": list(statuses), "root": root})
    return [(str(r.id), str(r.status)) for r in rows]


def wake_ancestors(store: Store, conn: Connection, execution_id: str) -> list[str]:
    """After a stage stopped waiting (decided, resolved, cancelled): queue each pipeline above
    it that waits and has no other stage waiting for a human, so that it goes on (its runtime,
    a worker or `resume()` carries it on). Returns the ids it queued."""
    woken: list[str] = []
    for ancestor, status in ancestors(conn, execution_id):
        if status not in _WAITS_FOR_A_HUMAN or descendants(conn, ancestor, _WAITS_FOR_A_HUMAN):
            break
        store.append_events(conn, ancestor, [], status=Status.QUEUED.value)
        store.notify_work(conn, ancestor)
        woken.append(ancestor)
    return woken


def _status_and_parent(conn: Connection, execution_id: str) -> tuple[str | None, str | None]:
    row = conn.execute(select(EXECUTIONS.c.status, EXECUTIONS.c.parent_id).where(
        EXECUTIONS.c.id == execution_id)).first()
    return (None, None) if row is None else (str(row.status), row.parent_id)
