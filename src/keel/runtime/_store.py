"""The store: one SQLAlchemy engine chosen by URL, keel's tables, and fenced writes.

SQLite (the embedded default) runs in WAL mode with synchronous=FULL; write transactions start
with BEGIN IMMEDIATE so that two processes never deadlock upgrading a read lock. PostgreSQL is
chosen by a `postgresql+psycopg://` URL. Every write made on behalf of a running execution goes
through `write()`, one transaction that is fenced by the lease epoch and allocates the event
sequence numbers on the execution row itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.exc import OperationalError

from .._errors import ExecutionNotFoundError, StoreError
from ._changes import CHANGES
from ._events import EVENT_ADAPTER, Event
from ._fenced import FencedWriter, NewEvent, event_rows
from ._json import loads
from ._schema import ApprovalRow, EventRow, ExecutionRow, StepRow, migrate

__all__ = ["NewEvent", "Store", "default_database_url"]

T = TypeVar("T", ExecutionRow, StepRow, ApprovalRow)

EXECUTIONS = ExecutionRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]
EVENTS = EventRow.__table__  # type: ignore[attr-defined]
APPROVALS = ApprovalRow.__table__  # type: ignore[attr-defined]

_INSERT_EVENTS = insert(EVENTS)


def default_database_url() -> str:
    """`$KEEL_DATABASE_URL`, else SQLite at `.keel/keel.db` under the working directory."""
    return os.environ.get("KEEL_DATABASE_URL") or f"sqlite:///{Path('.keel/keel.db').resolve()}"


class Store:
    """keel's database. Safe to share between threads; one per process and URL is enough."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_sqlite_directory(url)
            self.engine = _sqlite_engine(url, writer=True)
            self._reader = _sqlite_engine(url, writer=False)
        else:
            try:
                self.engine = create_engine(url, pool_pre_ping=True)
            except ImportError as exc:  # the driver is an extra
                from .._errors import MissingExtraError

                raise MissingExtraError(
                    f"The database URL {_safe_url(url)!r} needs a driver that is not "
                    f"installed ({exc}). Install it with: pip install 'keel[postgres]'"
                ) from exc
            self._reader = self.engine
        self._writer = FencedWriter(self.engine, sqlite=self.is_sqlite)
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.engine.dispose()
        self._reader.dispose()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            raise StoreError(
                f"The database at {_safe_url(self.url)} cannot be used: {reason} Check that it "
                "is reachable and not locked by a stuck process."
            ) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._reader.connect() as conn:
            yield conn

    # -- migrations -----------------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            with self.transaction() as conn:
                migrate(conn, where=_safe_url(self.url))
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"Could not open the keel database at {_safe_url(self.url)}: {exc}"
            ) from exc

    # -- executions -----------------------------------------------------------------------

    def insert_execution(self, values: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(insert(EXECUTIONS).values(**values))
        CHANGES.notify(values["id"])

    def execution(self, execution_id: str) -> ExecutionRow:
        with self.reading() as conn:
            return self._execution(conn, execution_id)

    def _execution(self, conn: Connection, execution_id: str) -> ExecutionRow:
        row = conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id)).first()
        if row is None:
            raise ExecutionNotFoundError(
                f"No execution {execution_id!r} in the store at {_safe_url(self.url)}. "
                "Check the id, and that KEEL_DATABASE_URL (or database_url=) points at the "
                "store that ran it."
            )
        return _model(ExecutionRow, row)

    def find_by_idempotency_key(self, key: str) -> str | None:
        with self.reading() as conn:
            found: str | None = conn.execute(
                select(EXECUTIONS.c.id).where(EXECUTIONS.c.idempotency_key == key)
            ).scalar()
        return found

    def write(
        self,
        execution_id: str,
        epoch: int,
        *,
        events: Sequence[NewEvent] = (),
        steps: Sequence[dict[str, Any]] = (),
        approvals: Sequence[dict[str, Any]] = (),
        lease_seconds: float | None = None,
        **execution: Any,
    ) -> bool:
        """One fenced write transaction on behalf of the lease holder.

        Appends `events`, upserts journal `steps`, inserts `approvals` and sets `execution`
        columns. Raises `LeaseLostError` if the epoch is no longer current. Returns whether a
        cancellation has been requested.
        """
        now = time.time()
        columns = dict(execution)
        if lease_seconds is not None:
            columns["lease_expires_at"] = now + lease_seconds
        cancel_requested = self._writer.write(
            execution_id, epoch, now, events=events, steps=steps, approvals=approvals,
            columns=columns,
        )
        CHANGES.notify(execution_id)
        return cancel_requested

    def append_events(
        self, conn: Connection, execution_id: str, events: Sequence[NewEvent], **execution: Any
    ) -> None:
        """Append events inside a transaction the caller holds (no lease needed)."""
        now = time.time()
        last = conn.execute(
            update(EXECUTIONS)
            .where(EXECUTIONS.c.id == execution_id)
            .values(last_seq=EXECUTIONS.c.last_seq + len(events), updated_at=now, **execution)
            .returning(EXECUTIONS.c.last_seq)
        ).scalar_one()
        _append_events(conn, execution_id, last, events, now)

    # -- reads ----------------------------------------------------------------------------

    def steps(self, execution_id: str) -> dict[str, StepRow]:
        with self.reading() as conn:
            return _steps(conn, execution_id)

    def approvals(self, execution_id: str) -> list[ApprovalRow]:
        with self.reading() as conn:
            return _approvals(conn, execution_id)

    def events(self, execution_id: str, after: int = 0) -> list[Event]:
        with self.reading() as conn:
            return _events(conn, execution_id, after)

    def snapshot(
        self, execution_id: str
    ) -> tuple[ExecutionRow, list[Event], list[ApprovalRow], dict[str, StepRow]]:
        """Everything about one execution, read on one connection."""
        with self.reading() as conn:
            return (self._execution(conn, execution_id), _events(conn, execution_id, 0),
                    _approvals(conn, execution_id), _steps(conn, execution_id))

    def count_commits(self) -> _CommitCounter:
        """Count write transactions on this store (benchmarks and tests)."""
        return _CommitCounter(self)


class _CommitCounter:
    """Step writes (counted by the fenced writer) plus SQLAlchemy transactions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine_commits = 0
        self._fenced_at_start = 0
        self._fenced_at_end: int | None = None

    @property
    def count(self) -> int:
        fenced = self.store._writer.commits if self._fenced_at_end is None \
            else self._fenced_at_end
        return self._engine_commits + fenced - self._fenced_at_start

    def _on_commit(self, conn: Connection) -> None:
        self._engine_commits += 1

    def __enter__(self) -> _CommitCounter:
        self._fenced_at_start = self.store._writer.commits
        event.listen(self.store.engine, "commit", self._on_commit)
        return self

    def __exit__(self, *exc: object) -> None:
        self._fenced_at_end = self.store._writer.commits
        event.remove(self.store.engine, "commit", self._on_commit)


def _append_events(
    conn: Connection, execution_id: str, last_seq: int, events: Sequence[NewEvent], now: float
) -> None:
    if events:
        conn.execute(_INSERT_EVENTS, event_rows(execution_id, last_seq, events, now))


def _steps(conn: Connection, execution_id: str) -> dict[str, StepRow]:
    rows = conn.execute(select(STEPS).where(STEPS.c.execution_id == execution_id))
    return {r.step_key: _model(StepRow, r) for r in rows}


def _approvals(conn: Connection, execution_id: str) -> list[ApprovalRow]:
    rows = conn.execute(
        select(APPROVALS)
        .where(APPROVALS.c.execution_id == execution_id)
        .order_by(APPROVALS.c.requested_at, APPROVALS.c.call_id)
    )
    return [_model(ApprovalRow, r) for r in rows]


def _events(conn: Connection, execution_id: str, after: int) -> list[Event]:
    rows = conn.execute(
        select(EVENTS)
        .where(EVENTS.c.execution_id == execution_id, EVENTS.c.seq > after)
        .order_by(EVENTS.c.seq)
    )
    return [_event(r) for r in rows]


def _model(cls: type[T], row: Any) -> T:
    """A row as its SQLModel class, without validation: keel wrote it (and it is hot)."""
    return cls.model_construct(**row._mapping)


def _event(row: Any) -> Event:
    data = loads(row.data)
    data.update(
        type=row.type, execution_id=row.execution_id, seq=row.seq, ts=row.ts, agent=row.agent
    )
    return EVENT_ADAPTER.validate_python(data)


def _sqlite_engine(url: str, *, writer: bool) -> Engine:
    """The writer issues BEGIN IMMEDIATE itself; the reader runs each SELECT on its own."""
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if writer:

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _ensure_sqlite_directory(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return url
