"""The per-step write: one fenced transaction on a bare driver connection.

Every journaled step of every run makes exactly one of these, so it skips SQLAlchemy's statement
layer (which cost more than the commit itself) and runs fixed SQL on a pooled DBAPI connection:
the UPDATE of the execution row, fenced by the lease epoch, which also allocates the events'
sequence numbers; the events; the step (an upsert: a result completes its intent row); and any
approval rows. Everything else in the store goes through SQLAlchemy as usual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from .._errors import LeaseLostError, StoreError
from ._json import dumps
from ._schema import ExecutionRow

__all__ = ["FencedWriter", "NewEvent", "event_rows"]


@dataclass(frozen=True)
class NewEvent:
    """An event to append; the store gives it its sequence number and timestamp."""

    type: str
    agent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


_EXECUTION_COLUMNS = frozenset(ExecutionRow.model_fields)
_INSERT_EVENT = (
    "INSERT INTO keel_events (execution_id, seq, type, agent, ts, data) "
    "VALUES (:execution_id, :seq, :type, :agent, :ts, :data)"
)
_UPSERT_STEP = (
    "INSERT INTO keel_steps (execution_id, step_key, kind, name, status, attempt, payload, "
    "started_at, finished_at) VALUES (:execution_id, :step_key, :kind, :name, :status, "
    ":attempt, :payload, :started_at, :finished_at) ON CONFLICT (execution_id, step_key) DO "
    "UPDATE SET kind = excluded.kind, name = excluded.name, status = excluded.status, "
    "attempt = excluded.attempt, payload = excluded.payload, finished_at = excluded.finished_at"
)
_INSERT_APPROVAL = (
    "INSERT INTO keel_approvals (id, execution_id, call_id, tool_name, kind, agent, args, "
    "status, rule, requested_at, decided_at, reviewer, reason) VALUES (:id, :execution_id, "
    ":call_id, :tool_name, :kind, :agent, :args, :status, :rule, :requested_at, :decided_at, "
    ":reviewer, :reason)"
)


class FencedWriter:
    """Writes on behalf of the lease holder; counts its commits (benchmarks and tests)."""

    def __init__(self, engine: Engine, *, sqlite: bool) -> None:
        self.engine = engine
        self.commits = 0
        self._begin = "BEGIN IMMEDIATE" if sqlite else None
        # sqlite3 takes :name placeholders; psycopg takes %(name)s.
        self._sql = (lambda sql: sql) if sqlite else _pyformat
        self._fences: dict[tuple[str, ...], str] = {}
        self._errors: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.Error,)
        self._inserts = {
            name: self._sql(sql) for name, sql in
            (("event", _INSERT_EVENT), ("step", _UPSERT_STEP), ("approval", _INSERT_APPROVAL))
        }

    def write(
        self,
        execution_id: str,
        epoch: int,
        now: float,
        *,
        events: Sequence[NewEvent],
        steps: Sequence[dict[str, Any]],
        approvals: Sequence[dict[str, Any]],
        columns: dict[str, Any],
    ) -> bool:
        """Commit everything or nothing; returns whether cancellation was requested."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            if self._begin:
                cursor.execute(self._begin)
            cursor.execute(self._fence(tuple(columns)), {
                **columns, "_id": execution_id, "_epoch": epoch, "_events": len(events),
                "_now": now,
            })
            row = cursor.fetchone()
            if row is None:
                raise LeaseLostError(
                    f"Execution {execution_id!r} was taken over by another process (lease "
                    f"epoch {epoch} is stale); this process stopped writing to it."
                )
            last_seq, cancel_requested = row
            if events:
                cursor.executemany(self._inserts["event"],
                                   event_rows(execution_id, last_seq, events, now))
            if steps:
                cursor.executemany(self._inserts["step"], [
                    {"execution_id": execution_id, "started_at": now, "payload": None,
                     "attempt": 1, "finished_at": now if s.get("status") == "done" else None, **s}
                    for s in steps
                ])
            if approvals:
                cursor.executemany(self._inserts["approval"], list(approvals))
            connection.commit()
            self.commits += 1
            return bool(cancel_requested)
        except self._errors as exc:
            connection.rollback()
            reason = " ".join(str(exc).split())
            raise StoreError(
                f"keel could not journal a step of execution {execution_id!r}: {reason} Check "
                "that the database is reachable and not locked by a stuck process."
            ) from exc
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()  # back to the pool

    def _fence(self, columns: tuple[str, ...]) -> str:
        """The fenced UPDATE setting `columns` too (built once per set of columns)."""
        sql = self._fences.get(columns)
        if sql is None:
            unknown = set(columns) - _EXECUTION_COLUMNS
            if unknown:
                raise ValueError(f"not execution columns: {sorted(unknown)}")
            sets = "".join(f", {c} = :{c}" for c in columns)
            sql = self._fences[columns] = self._sql(
                f"UPDATE keel_executions SET last_seq = last_seq + :_events, updated_at = :_now"
                f"{sets} WHERE id = :_id AND lease_epoch = :_epoch "
                "RETURNING last_seq, cancel_requested"
            )
        return sql


def event_rows(
    execution_id: str, last_seq: int, events: Sequence[NewEvent], now: float
) -> list[dict[str, Any]]:
    """Rows for `events`, numbered so that the last one gets `last_seq`."""
    first = last_seq - len(events) + 1
    return [
        {"execution_id": execution_id, "seq": first + i, "type": e.type, "agent": e.agent,
         "ts": now, "data": dumps(e.data)}
        for i, e in enumerate(events)
    ]


def _pyformat(sql: str) -> str:
    return re.sub(r":(\w+)", r"%(\1)s", sql)
