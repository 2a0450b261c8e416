"""Audit and retention: an execution's whole record as JSON lines, who decided what and when,
and pruning finished executions.

Everything here reads or deletes stored rows; nothing changes a run that is still going on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from ._events import Status
from ._json import loads
from ._store import APPROVALS, EXECUTIONS, Store

__all__ = ["decisions", "export_records", "prune"]

_TERMINAL = tuple(s.value for s in Status if s.is_terminal)
_JSON_COLUMNS = {"input", "options", "output", "args", "payload", "response"}


def export_records(store: Store, execution_id: str) -> Iterator[dict[str, Any]]:
    """The execution, then its events, approvals and journal steps, one record each, every
    record tagged with what it is ("execution", "event", "approval", "step")."""
    row, events, approvals, steps = store.snapshot(execution_id)
    yield {"record": "execution", **_plain(row.model_dump())}
    for event in events:
        yield {"record": "event", **event.model_dump(mode="json")}
    for approval in approvals:
        yield {"record": "approval", **_plain(approval.model_dump())}
    for step in sorted(steps.values(), key=lambda s: (s.started_at, s.step_key)):
        yield {"record": "step", **_plain(step.model_dump())}


def decisions(
    store: Store, *, since: float | None = None, reviewer: str | None = None,
    agent: str | None = None, limit: int | None = None,
) -> list[dict[str, Any]]:
    """Who approved or rejected what, and when: decided calls, newest first; every one of
    them (an audit leaves none out) unless `limit` says how many."""
    query = (
        select(APPROVALS, EXECUTIONS.c.agent_name)
        .join(EXECUTIONS, EXECUTIONS.c.id == APPROVALS.c.execution_id)
        .where(APPROVALS.c.status.in_(("approved", "rejected")))
        .order_by(APPROVALS.c.decided_at.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(APPROVALS.c.decided_at >= since)
    if reviewer is not None:
        query = query.where(APPROVALS.c.reviewer == reviewer)
    if agent is not None:
        query = query.where(EXECUTIONS.c.agent_name == agent)
    with store.reading() as conn:
        return [_plain(dict(row._mapping)) for row in conn.execute(query)]


def prune(store: Store, *, older_than: float, dry_run: bool = False) -> list[str]:
    """Delete the executions that finished (COMPLETED, FAILED, CANCELLED) more than
    `older_than` seconds ago, with everything recorded about them; returns their ids.
    Waiting, in-doubt and running executions are kept whatever their age. A pipeline's stage
    goes with its pipeline, never before it: the pipeline resumes from its finished stages."""
    cutoff = time.time() - older_than
    with store.reading() as conn:
        ids = list(conn.execute(select(EXECUTIONS.c.id).where(
            EXECUTIONS.c.status.in_(_TERMINAL), EXECUTIONS.c.finished_at < cutoff,
            EXECUTIONS.c.parent_id.is_(None))).scalars())
    if not dry_run:
        for execution_id in ids:
            store.delete(execution_id)
    return ids


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row with its JSON text columns as data."""
    return {key: loads(value) if key in _JSON_COLUMNS and isinstance(value, str) else value
            for key, value in row.items()}
