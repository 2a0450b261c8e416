"""The per-step write: one fenced transaction on a bare driver connection.

Every journaled step of every run makes exactly one of these, so it skips SQLAlchemy's statement
layer (which cost more than the commit itself) and runs fixed SQL on a DBAPI connection: the
UPDATE of the execution row, fenced by the lease epoch, which also allocates the events'
sequence numbers; the events; the step (an upsert: a result completes its intent row); and any
approval rows. Everything else in the store goes through SQLAlchemy as usual.

A write is *durable* (it returns once the commit is on disk) or *relaxed* (it returns once the
database has it: it survives the death of this process, not a power cut, until the next durable
commit, which flushes it too; SQLite's synchronous=NORMAL, PostgreSQL's synchronous_commit=off).
The execution decides which: a commit must be durable before anything leaves the process.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy.exc
from sqlalchemy import Engine

from .._errors import LeaseLostError, StoreError, StoreUnavailableError
from ._json import dumps
from ._schema import ExecutionRow

__all__ = [
    "NOTIFY_WORK", "RELAXED_COMMIT", "FencedWriter", "NewEvent", "Statements", "Written",
    "event_rows", "pyformat",
]

NOTIFY_WORK = "SELECT pg_notify('keel_work', %(id)s)"
"""PostgreSQL: wake the workers (they LISTEN on keel_work) when this transaction commits."""


@dataclass(frozen=True)
class NewEvent:
    """An event to append; the store gives it its sequence number and timestamp."""

    type: str
    agent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Written(NamedTuple):
    """What a fenced write tells its writer."""

    cancel_requested: bool
    last_seq: int
    """The execution's last event number after the write."""
    at: float
    """The time the write gave its rows."""


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
    """Writes on behalf of the lease holder; counts its commits (benchmarks and tests) and
    knows whether a relaxed one may not be on disk yet."""

    def __init__(self, engine: Engine, *, sqlite: bool) -> None:
        self.engine = engine
        self.commits = 0
        self.durability = Durability()
        self._postgres = not sqlite
        self._sqlite = None if self._postgres else _SqliteConnection(engine)
        # sqlite3 takes :name placeholders; psycopg takes %(name)s.
        self._sql = (lambda sql: sql) if sqlite else pyformat
        self._fences: dict[tuple[str, ...], str] = {}
        dbapi = engine.dialect.loaded_dbapi
        self.driver_errors: tuple[type[BaseException], ...] = (dbapi.Error,)
        self.unavailable_errors: tuple[type[BaseException], ...] = (dbapi.OperationalError,)
        self._integrity_errors: tuple[type[BaseException], ...] = (dbapi.IntegrityError,)
        self._inserts = {
            name: self._sql(sql) for name, sql in
            (("event", _INSERT_EVENT), ("step", _UPSERT_STEP), ("approval", _INSERT_APPROVAL))
        }

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()

    def insert_execution(self, values: dict[str, Any], *, durable: bool) -> bool:
        """Admit an execution in one transaction; False when its idempotency key is taken.
        A QUEUED one wakes the workers (PostgreSQL's NOTIFY, delivered at commit)."""
        sql = self._sql(f"INSERT INTO keel_executions ({', '.join(values)}) VALUES "
                        f"({', '.join(f':{c}' for c in values)})")
        mark = self.durability.mark()
        with self._connection(f"admit execution {values['id']!r}", durable) as connection:
            cursor = self._begin(connection, durable)
            try:
                cursor.execute(sql, values)
            except self._integrity_errors:
                if values.get("idempotency_key") is None:
                    raise
                connection.rollback()
                return False
            if self._postgres and values["status"] == "QUEUED":
                cursor.execute(NOTIFY_WORK, {"id": values["id"]})
            connection.commit()
        self._committed(durable, mark)
        return True

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
        durable: bool,
    ) -> Written:
        """Commit everything or nothing."""
        params = {**columns, "_id": execution_id, "_epoch": epoch, "_events": len(events),
                  "_now": now}
        steps = [{"execution_id": execution_id, "started_at": now, "payload": None,
                  "attempt": 1, "finished_at": now if s.get("status") == "done" else None, **s}
                 for s in steps]
        mark = self.durability.mark()
        what = f"journal a step of execution {execution_id!r}"
        with self._connection(what, durable) as connection:
            write = self._at_once if self._postgres else self._in_steps
            row = write(connection, self._fence(tuple(columns), durable), params,
                        event_rows(execution_id, 0, events, now), steps, list(approvals))
            if row is None:
                raise _lease_lost(execution_id, epoch)
        self._committed(durable, mark)
        return Written(bool(row[1]), row[0], now)

    @contextmanager
    def transaction(self, what: str, *, durable: bool = True,
                    fence: tuple[str, int] | None = None) -> Iterator[Statements]:
        """A write transaction of fixed SQL on a bare driver connection, durable or relaxed,
        for writes that SQLAlchemy's statement layer made several times slower than their
        SQL (LangGraph's checkpoints, deleting a mock run's execution). With a `fence`
        (execution id, lease epoch) it writes only while that epoch holds the execution's
        lease, else raises LeaseLostError: the fence's UPDATE locks the execution's row until
        the commit, so a takeover waits for it."""
        mark = self.durability.mark()
        with self._connection(what, durable) as connection:
            statements = Statements(self._begin(connection, durable), self._sql)
            if fence is not None:
                execution_id, epoch = fence
                if statements(_TOUCH, id=execution_id, epoch=epoch, now=time.time()
                              ).rowcount != 1:
                    raise _lease_lost(execution_id, epoch)
            yield statements
            connection.commit()
        self._committed(durable, mark)

    def statement(self, sql: str, params: dict[str, Any], *, what: str,
                  durable: bool) -> list[dict[str, Any]]:
        """PostgreSQL: one statement that commits on its own (in autocommit), so one round
        trip; `durable` says whether its SQL lets the commit wait for the disk (a relaxed one
        selects RELAXED_COMMIT). Returns its rows as dicts."""
        mark = self.durability.mark()
        with self._connection(what, durable) as connection:
            driver = connection.driver_connection
            driver.autocommit = True
            try:
                cursor = driver.execute(sql, params)
                names = [column.name for column in cursor.description or ()]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            finally:
                driver.autocommit = False
        self._committed(durable, mark)
        return rows

    def _begin(self, connection: Any, durable: bool) -> Any:
        """Start a write transaction on `connection`; returns its cursor."""
        cursor = connection.cursor()
        if self._postgres:
            if not durable:
                cursor.execute(_RELAXED_TRANSACTION)
        else:
            cursor.execute("BEGIN IMMEDIATE")
        return cursor

    def _committed(self, durable: bool, mark: int) -> None:
        self.commits += 1
        if durable:
            self.durability.synced(mark)
        else:
            self.durability.relaxed()

    @contextmanager
    def _connection(self, what: str, durable: bool) -> Iterator[Any]:
        """A driver connection (SQLite: the process's one writer, set to `durable`; else
        pooled); a failure rolls back and, from the driver, becomes a StoreError saying that
        keel could not do `what`."""
        try:
            connection = self._sqlite.acquire(durable) if self._sqlite else \
                self.engine.raw_connection()
        except sqlalchemy.exc.DBAPIError as exc:
            raise self.error(what, exc.orig) from exc
        except self.driver_errors as exc:
            raise self.error(what, exc) from exc
        try:
            yield connection
        except self.driver_errors as exc:
            self._rollback(connection)
            raise self.error(what, exc) from exc
        except BaseException:
            self._rollback(connection)
            raise
        finally:
            if self._sqlite:
                self._sqlite.release()
            else:
                connection.close()  # back to the pool

    def _rollback(self, connection: Any) -> None:
        """Roll back, unless the connection is gone (then there is nothing to roll back)."""
        try:
            connection.rollback()
        except Exception:
            if self._sqlite:
                self._sqlite.discard()
            else:
                connection.invalidate()

    def error(self, what: str, exc: BaseException | None) -> StoreError:
        """The StoreError for a driver's `exc`: StoreUnavailableError when the connection
        failed (the transaction may not have happened)."""
        reason = " ".join(str(exc).split())
        kind = StoreUnavailableError if isinstance(exc, self.unavailable_errors) else StoreError
        return kind(f"Could not {what}: {reason} Check that the database is reachable "
                    "and not locked by a stuck process.")

    def _in_steps(self, connection: Any, fence: str, params: dict[str, Any],
                  events: list[dict[str, Any]], steps: list[dict[str, Any]],
                  approvals: list[dict[str, Any]]) -> Any:
        """SQLite: BEGIN IMMEDIATE, the statements one by one, COMMIT (all local calls)."""
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(fence, params)
        row = cursor.fetchone()
        if row is None:
            return None
        for event in events:  # numbered so that the last one gets the new last_seq
            event["seq"] += row[0]
        for name, rows in (("event", events), ("step", steps), ("approval", approvals)):
            if rows:
                cursor.executemany(self._inserts[name], rows)
        connection.commit()
        return row

    def _at_once(self, connection: Any, fence: str, params: dict[str, Any],
                 events: list[dict[str, Any]], steps: list[dict[str, Any]],
                 approvals: list[dict[str, Any]]) -> Any:
        """PostgreSQL: one statement in autocommit, so one round trip to the server."""
        driver = connection.driver_connection
        driver.autocommit = True
        try:
            return driver.execute(fence, {
                **params, "_event_rows": json.dumps(events), "_step_rows": json.dumps(steps),
                "_approval_rows": json.dumps(approvals),
            }).fetchone()
        finally:
            driver.autocommit = False

    def _fence(self, columns: tuple[str, ...], durable: bool) -> str:
        """The fenced UPDATE setting `columns` too; on PostgreSQL wrapped with the inserts in
        one statement, which a relaxed write commits asynchronously. Built once per set of
        columns."""
        at_once = self._postgres
        key = (*columns, str(at_once and durable))
        sql = self._fences.get(key)
        if sql is None:
            unknown = set(columns) - _EXECUTION_COLUMNS
            if unknown:
                raise ValueError(f"not execution columns: {sorted(unknown)}")
            sets = "".join(f", {c} = :{c}" for c in columns)
            sql = (
                f"UPDATE keel_executions SET last_seq = last_seq + :_events, updated_at = :_now"
                f"{sets} WHERE id = :_id AND lease_epoch = :_epoch "
                "RETURNING last_seq, cancel_requested"
            )
            if at_once:
                sql = _AT_ONCE.format(fence=sql, relaxed="" if durable else f", {RELAXED_COMMIT}")
            sql = self._fences[key] = self._sql(sql)
        return sql


class Statements:
    """The statements of a `FencedWriter.transaction()`, with :name placeholders on every
    driver: `run(sql, **params)` returns the cursor, `run.many(sql, rows)` inserts rows."""

    def __init__(self, cursor: Any, sql: Callable[[str], str]) -> None:
        self._cursor = cursor
        self._sql = sql

    def __call__(self, sql: str, **params: Any) -> Any:
        return self._cursor.execute(self._sql(sql), params)

    def many(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        self._cursor.executemany(self._sql(sql), rows)


class Durability:
    """Whether every relaxed commit of this process is known to be on disk.

    Relaxed commits are counted; a durable commit flushes every commit that finished before it
    began (`mark()` reads the count then, `synced()` records it), so commits racing with it on
    other threads stay unsynced, to be on the safe side.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._relaxed = 0
        self._synced = 0

    @property
    def unsynced(self) -> bool:
        return self._relaxed > self._synced

    def mark(self) -> int:
        return self._relaxed

    def relaxed(self) -> None:
        with self._lock:
            self._relaxed += 1

    def synced(self, mark: int) -> None:
        with self._lock:
            self._synced = max(self._synced, mark)


class _SqliteConnection:
    """SQLite's writer: one connection per process, used under a lock (SQLite admits one
    writer at a time anyway, and a pool checkout per write cost a third of a step). It comes
    from the engine's pool, so it has keel's pragmas; its `synchronous` follows each write."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._pooled: Any = None
        self._pid = os.getpid()
        self._durable = True  # synchronous=FULL, as the pool's connect hook sets it

    def acquire(self, durable: bool) -> Any:
        if self._pid != os.getpid():  # a forked child: its parent's connection is not its own
            self._lock, self._pooled, self._pid = threading.Lock(), None, os.getpid()
        self._lock.acquire()
        try:
            if self._pooled is None:
                self._pooled = self._engine.raw_connection()
                self._durable = True
            connection = self._pooled.driver_connection
            if durable != self._durable:
                connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            return connection
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        self._lock.release()

    def discard(self) -> None:
        """Drop a broken connection (the caller holds it); the next write opens another."""
        self._pooled.invalidate()
        self._pooled = None

    def close(self) -> None:
        with self._lock:
            if self._pooled is not None:
                self._pooled.close()
                self._pooled = None


def _lease_lost(execution_id: str, epoch: int) -> LeaseLostError:
    return LeaseLostError(f"Execution {execution_id!r} was taken over by another process "
                          f"(lease epoch {epoch} is stale); this process stopped writing to it.")


_TOUCH = "UPDATE keel_executions SET updated_at = :now WHERE id = :id AND lease_epoch = :epoch"
_RELAXED_TRANSACTION = "SET LOCAL synchronous_commit TO OFF"
RELAXED_COMMIT = "set_config('synchronous_commit', 'off', true)"
"""PostgreSQL: selected by a statement's final SELECT (so that it is evaluated), it makes the
statement's own transaction commit without waiting for the disk."""

# The fence decides for the whole statement: with a stale epoch it returns no row, and then
# nothing is inserted either (every insert selects FROM fence).
_AT_ONCE = """WITH fence AS ({fence}),
ev AS (INSERT INTO keel_events (execution_id, seq, type, agent, ts, data)
  SELECT e.execution_id, fence.last_seq + e.seq, e.type, e.agent, e.ts, e.data
  FROM fence, jsonb_to_recordset(CAST(:_event_rows AS jsonb)) AS e(
    execution_id text, seq int, type text, agent text, ts double precision, data text)),
st AS (INSERT INTO keel_steps (execution_id, step_key, kind, name, status, attempt, payload,
    started_at, finished_at)
  SELECT s.execution_id, s.step_key, s.kind, s.name, s.status, s.attempt, s.payload,
    s.started_at, s.finished_at
  FROM fence, jsonb_to_recordset(CAST(:_step_rows AS jsonb)) AS s(
    execution_id text, step_key text, kind text, name text, status text, attempt int,
    payload text, started_at double precision, finished_at double precision)
  ON CONFLICT (execution_id, step_key) DO UPDATE SET kind = excluded.kind,
    name = excluded.name, status = excluded.status, attempt = excluded.attempt,
    payload = excluded.payload, finished_at = excluded.finished_at),
ap AS (INSERT INTO keel_approvals (id, execution_id, call_id, tool_name, kind, agent, args,
    status, rule, requested_at, decided_at, reviewer, reason)
  SELECT a.id, a.execution_id, a.call_id, a.tool_name, a.kind, a.agent, a.args, a.status,
    a.rule, a.requested_at, a.decided_at, a.reviewer, a.reason
  FROM fence, jsonb_to_recordset(CAST(:_approval_rows AS jsonb)) AS a(
    id text, execution_id text, call_id text, tool_name text, kind text, agent text, args text,
    status text, rule text, requested_at double precision, decided_at double precision,
    reviewer text, reason text))
SELECT last_seq, cancel_requested{relaxed} FROM fence"""


def event_rows(
    execution_id: str, last_seq: int, events: Sequence[NewEvent], now: float
) -> list[dict[str, Any]]:
    """Rows for `events`, numbered so that the last one gets `last_seq` (with 0: offsets to
    add to the last sequence number once it is known)."""
    first = last_seq - len(events) + 1
    return [
        {"execution_id": execution_id, "seq": first + i, "type": e.type, "agent": e.agent,
         "ts": now, "data": dumps(e.data)}
        for i, e in enumerate(events)
    ]


@functools.cache
def pyformat(sql: str) -> str:
    """`sql` with :name placeholders (sqlite3's) as %(name)s (psycopg's)."""
    return re.sub(r":(\w+)", r"%(\1)s", sql)
