"""The store: one SQLAlchemy engine chosen by URL, keel's tables, and fenced writes.

SQLite (the embedded default) runs in WAL mode with synchronous=FULL; write transactions start
with BEGIN IMMEDIATE so that two processes never deadlock upgrading a read lock. PostgreSQL is
chosen by a `postgresql+psycopg://` URL. Every write made on behalf of a running execution goes
through `write()`, one transaction that is fenced by the lease epoch and allocates the event
sequence numbers on the execution row itself; it is durable or relaxed (`_fenced`).

A SQLite URL ending in `?mode=ro` opens the store read-only (`connect_read_only`): it is read
as it is, and every write is refused.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from select import select as wait_readable
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import QueuePool

from .._errors import ExecutionNotFoundError, StoreError
from ._changes import CHANGES
from ._events import EVENT_ADAPTER, Event
from ._faults import application_name
from ._fenced import (
    NOTIFY_WORK,
    FencedWriter,
    NewEvent,
    Statements,
    Written,
    event_rows,
    pyformat,
)
from ._json import loads
from ._redact import Redactor
from ._schema import LANGGRAPH_TABLES, ApprovalRow, EventRow, ExecutionRow, StepRow, migrate

__all__ = ["NewEvent", "Reads", "Statements", "Store", "Written", "connect_read_only",
           "default_database_url", "event_of", "reading_url", "sqlite_file"]

EXECUTIONS = ExecutionRow.__table__  # type: ignore[attr-defined]
EVENTS = EventRow.__table__  # type: ignore[attr-defined]
APPROVALS = ApprovalRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]

_INSERT_EVENTS = insert(EVENTS)

# An execution and its stages at any depth (the parent_id index finds each level's stages).
_FAMILY = """
WITH RECURSIVE family(id) AS (
    SELECT id FROM keel_executions WHERE id = :id
  UNION ALL
    SELECT e.id FROM keel_executions e JOIN family ON e.parent_id = family.id
)
SELECT id FROM family
"""


def default_database_url() -> str:
    """`$KEEL_DATABASE_URL`, else SQLite at `.keel/keel.db` under the working directory."""
    return os.environ.get("KEEL_DATABASE_URL") or f"sqlite:///{Path('.keel/keel.db').resolve()}"


class Store:
    """keel's database. Safe to share between threads; one per process and URL is enough."""

    def __init__(self, url: str, *, redactor: Redactor | None = None) -> None:
        """`redactor`: what the runtime on this store redacts, in every execution it writes
        and every decision it records."""
        self.url = url = store_url(url)
        self.redactor = redactor
        self.is_sqlite = url.startswith("sqlite")
        read_only = _read_only_file(url)
        self.read_only = read_only is not None
        if read_only is not None:
            self.engine = _refusing_writer(f"The keel database at {read_only} is read-only "
                                           "here (opened with mode=ro): open it without "
                                           "mode=ro to change it.")
            self._reader = create_engine("sqlite://", poolclass=QueuePool,
                                         creator=lambda: connect_read_only(read_only))
        elif self.is_sqlite:
            _ensure_writable(url)
            self.engine = _sqlite_engine(url, writer=True)
            self._reader = _sqlite_engine(url, writer=False)
        else:
            try:
                self.engine = _postgres_engine(url)
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

    @property
    def safe_url(self) -> str:
        """The store's URL without its password, for messages."""
        return _safe_url(self.url)

    def close(self) -> None:
        self._writer.close()
        self.engine.dispose()
        self._reader.dispose()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A durable write transaction through SQLAlchemy (BEGIN IMMEDIATE on SQLite)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise self._writer.error(f"use the database at {_safe_url(self.url)}",
                                     exc.orig) from exc

    def writing(self, what: str, *, durable: bool = True,
                fence: tuple[str, int] | None = None) -> AbstractContextManager[Statements]:
        """A write transaction of fixed SQL (:name placeholders) on a bare driver connection,
        durable or relaxed; `what` completes "Could not ..." in its errors. With a `fence`
        (execution id, lease epoch) it writes only while that epoch holds the lease (else
        LeaseLostError), as every write on behalf of a running execution must."""
        return self._writer.transaction(what, durable=durable, fence=fence)

    def statement(self, sql: str, *, durable: bool, **params: Any) -> list[dict[str, Any]]:
        """PostgreSQL: one statement that commits on its own (one round trip); its rows."""
        return self._writer.statement(pyformat(sql), params, durable=durable,
                                      what=f"use the database at {_safe_url(self.url)}")

    @property
    def unsynced(self) -> bool:
        """Whether a relaxed commit of this process may not be on disk yet."""
        return self._writer.durability.unsynced

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._reader.connect() as conn:
            yield conn

    # -- migrations -----------------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            if self.read_only:
                self._check_schema()
            else:
                with self.transaction() as conn:
                    migrate(conn, where=_safe_url(self.url))
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"Could not open the keel database at {_safe_url(self.url)}: {exc}"
            ) from exc

    def _check_schema(self) -> None:
        """A read-only store is read as it is, so only at this keel's schema version (then
        migrate() has nothing to do, and only reads)."""
        with self.reading() as conn:
            try:
                migrate(conn, where=self.safe_url)
            except OperationalError:  # it would bring an older schema up to date
                raise StoreError(
                    f"The keel database at {self.safe_url} was written by an older keel and "
                    "is read-only here, so it cannot be brought up to date: read it with that "
                    "keel, or open a writable copy once.") from None

    # -- executions -----------------------------------------------------------------------

    def insert_execution(self, values: dict[str, Any], *, durable: bool = True) -> bool:
        """Admit an execution; False when its idempotency key is taken (nothing written).
        Relaxed (not `durable`) when this process runs it at once: its first durable write
        then flushes the admission too."""
        admitted = self._writer.insert_execution(values, durable=durable)
        if admitted:
            CHANGES.notify(values["id"])
        return admitted

    def delete(self, execution_id: str) -> None:
        """Remove an execution, its stages (a pipeline's, at any depth) and everything recorded
        about them: journals, events and approvals by the foreign keys' cascade, and the
        LangGraph checkpoints of their own threads (a thread the user named may hold other
        runs: it is kept)."""
        with self.writing(f"delete execution {execution_id!r}") as run:
            family = {f"id{i}": row[0] for i, row in
                      enumerate(run(_FAMILY, id=execution_id).fetchall())}
            if not family:
                return
            ids = ", ".join(f":{name}" for name in family)
            for table in LANGGRAPH_TABLES:
                run(f"DELETE FROM {table} WHERE thread_id IN ({ids})", **family)
            run(f"DELETE FROM keel_executions WHERE id IN ({ids})", **family)

    def execution(self, execution_id: str) -> ExecutionRow:
        with self.reads() as read:
            return self._execution(read, execution_id)

    def statuses(self, execution_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these executions there is, in a query per 500."""
        found: dict[str, str] = {}
        with self.reads() as read:
            for start in range(0, len(execution_ids), 500):
                ids = {f"id{i}": v for i, v in enumerate(execution_ids[start:start + 500])}
                found.update((row["id"], row["status"]) for row in read(
                    f"SELECT id, status FROM keel_executions WHERE id IN "
                    f"({', '.join(f':{name}' for name in ids)})", **ids))
        return found

    def _execution(self, read: Reads, execution_id: str) -> ExecutionRow:
        rows = read("SELECT * FROM keel_executions WHERE id = :id", id=execution_id)
        if not rows:
            raise ExecutionNotFoundError(
                f"No execution {execution_id!r} in the store at {_safe_url(self.url)}. "
                "Check the id, and that KEEL_DATABASE_URL (or database_url=) points at the "
                "store that ran it."
            )
        return ExecutionRow.model_construct(**rows[0])

    def previous_in_conversation(self, row: ExecutionRow) -> str | None:
        """The last execution that completed in `row`'s conversation before it started."""
        with self.reads() as read:
            rows = read("SELECT id FROM keel_executions WHERE conversation = :conversation "
                        "AND status = 'COMPLETED' AND created_at < :created_at "
                        "ORDER BY created_at DESC LIMIT 1",
                        conversation=row.conversation, created_at=row.created_at)
        return str(rows[0]["id"]) if rows else None

    def executions(self, *, status: str | None = None, agent: str | None = None,
                   since: float | None = None, parent: str | None = None,
                   top_level: bool = False, limit: int = 50) -> list[ExecutionRow]:
        """The newest executions first, filtered by status, agent name, creation time, the
        pipeline they are stages of (`parent`), or being no pipeline's stage (`top_level`)."""
        clauses = [f"{column} = :{column}" for column, value in
                   (("status", status), ("agent_name", agent), ("parent_id", parent))
                   if value is not None]
        if since is not None:
            clauses.append("created_at >= :since")
        if top_level:
            clauses.append("parent_id IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.reads() as read:
            rows = read(f"SELECT * FROM keel_executions{where} ORDER BY created_at DESC "
                        f"LIMIT {int(limit)}", status=status, agent_name=agent, since=since,
                        parent_id=parent)
        return [ExecutionRow.model_construct(**row) for row in rows]

    def pending_approvals(self, limit: int = 100) -> list[ApprovalRow]:
        """Every call waiting for a decision, oldest first (the approvals inbox)."""
        with self.reads() as read:
            rows = read("SELECT * FROM keel_approvals WHERE status = 'pending' "
                        f"ORDER BY requested_at LIMIT {int(limit)}")
        return [ApprovalRow.model_construct(**row) for row in rows]

    def find_by_idempotency_key(self, key: str) -> str | None:
        with self.reads() as read:
            rows = read("SELECT id FROM keel_executions WHERE idempotency_key = :key", key=key)
        return str(rows[0]["id"]) if rows else None

    def write(
        self,
        execution_id: str,
        epoch: int,
        *,
        events: Sequence[NewEvent] = (),
        steps: Sequence[dict[str, Any]] = (),
        approvals: Sequence[dict[str, Any]] = (),
        lease_seconds: float | None = None,
        durable: bool = True,
        **execution: Any,
    ) -> Written:
        """One fenced write transaction on behalf of the lease holder.

        Appends `events`, upserts journal `steps`, inserts `approvals` and sets `execution`
        columns; a relaxed (not `durable`) write survives this process's death but not a
        power cut until the next durable commit. Raises `LeaseLostError` if the epoch is no
        longer current.
        """
        now = time.time()
        columns = dict(execution)
        if lease_seconds is not None:
            columns["lease_expires_at"] = now + lease_seconds
        written = self._writer.write(
            execution_id, epoch, now, events=events, steps=steps, approvals=approvals,
            columns=columns, durable=durable,
        )
        CHANGES.notify(execution_id)
        return written

    def locked_status(self, conn: Connection, execution_id: str) -> str:
        """The execution's status, its row locked until `conn`'s transaction ends (decisions
        on it are applied one at a time)."""
        status = conn.execute(select(EXECUTIONS.c.status).where(
            EXECUTIONS.c.id == execution_id).with_for_update()).scalar()
        if status is None:
            raise ExecutionNotFoundError(f"No execution {execution_id!r} in the store at "
                                         f"{self.safe_url}.")
        return str(status)

    def redactor_for(self, conn: Connection, execution_id: str) -> Redactor | None:
        """This store's redactor together with the one recorded with the execution."""
        recorded = conn.execute(select(EXECUTIONS.c.redaction).where(
            EXECUTIONS.c.id == execution_id)).scalar()
        return Redactor.combine(self.redactor, recorded)

    def notify_work(self, conn: Connection, execution_id: str) -> None:
        """Wake the workers when `conn`'s transaction commits (PostgreSQL; SQLite polls)."""
        if not self.is_sqlite:
            conn.exec_driver_sql(NOTIFY_WORK, {"id": execution_id})

    def listen(self, wake: Callable[[], None]) -> Callable[[], None] | None:
        """PostgreSQL: call `wake()` (from a thread) whenever work is notified, and after a
        lost connection comes back; returns the function that stops listening. None on
        SQLite, where workers poll."""
        if self.is_sqlite:
            return None
        from ._listen import Listener

        listener = Listener(self.engine.url, wake)
        return listener.stop

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

    def step(self, execution_id: str, step_key: str) -> StepRow | None:
        """One journal step, or None."""
        with self.reads() as read:
            rows = read("SELECT * FROM keel_steps WHERE execution_id = :id AND step_key = :key",
                        id=execution_id, key=step_key)
        return StepRow.model_construct(**rows[0]) if rows else None

    def steps(self, execution_id: str) -> dict[str, StepRow]:
        with self.reads() as read:
            return _steps(read, execution_id)

    def approvals(self, execution_id: str) -> list[ApprovalRow]:
        with self.reads() as read:
            return _approvals(read, execution_id)

    def events(self, execution_id: str, after: int = 0) -> list[Event]:
        with self.reads() as read:
            return _events(read, execution_id, after)

    def snapshot(
        self, execution_id: str
    ) -> tuple[ExecutionRow, list[Event], list[ApprovalRow], dict[str, StepRow]]:
        """Everything about one execution, read on one connection."""
        with self.reads() as read:
            return (self._execution(read, execution_id), _events(read, execution_id, 0),
                    _approvals(read, execution_id), _steps(read, execution_id))

    @contextmanager
    def reads(self) -> Iterator[Reads]:
        """Fixed SELECTs on a bare driver connection: keel reads an execution on every result
        and status check, and SQLAlchemy's statement layer cost more than the queries."""
        what = f"read the database at {_safe_url(self.url)}"
        try:
            connection = self._reader.raw_connection()
        except DBAPIError as exc:
            raise self._writer.error(what, exc.orig) from exc
        try:
            yield Reads(connection, pyformat=not self.is_sqlite)
        except self._writer.driver_errors as exc:
            if isinstance(exc, self._writer.unavailable_errors):
                connection.invalidate()  # not back into the pool: it may be broken
            raise self._writer.error(what, exc) from exc
        finally:
            connection.close()  # back to the pool (which ends its transaction)

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


class Reads:
    """`read(sql, **params)`: the rows of one SELECT as dicts."""

    def __init__(self, connection: Any, *, pyformat: bool) -> None:
        self._connection = connection
        self._pyformat = pyformat

    def __call__(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(pyformat(sql) if self._pyformat else sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()


def _steps(read: Reads, execution_id: str) -> dict[str, StepRow]:
    rows = read("SELECT * FROM keel_steps WHERE execution_id = :id", id=execution_id)
    return {r["step_key"]: StepRow.model_construct(**r) for r in rows}


def _approvals(read: Reads, execution_id: str) -> list[ApprovalRow]:
    rows = read("SELECT * FROM keel_approvals WHERE execution_id = :id "
                "ORDER BY requested_at, call_id", id=execution_id)
    return [ApprovalRow.model_construct(**r) for r in rows]


def _events(read: Reads, execution_id: str, after: int) -> list[Event]:
    rows = read("SELECT * FROM keel_events WHERE execution_id = :id AND seq > :after "
                "ORDER BY seq", id=execution_id, after=after)
    return [event_of(r) for r in rows]


def event_of(row: dict[str, Any]) -> Event:
    """The event a stored row holds (the row loses its `data`)."""
    data = loads(row.pop("data"))
    data.update(row)
    return EVENT_ADAPTER.validate_python(data)


def _sqlite_engine(url: str, *, writer: bool) -> Engine:
    """The writer issues BEGIN IMMEDIATE itself; the reader runs each SELECT on its own."""
    # QueuePool as for any file; an in-memory database (mock runs) then lives as long as the
    # pool holds a connection to it.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           poolclass=QueuePool)

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


_IDLE_BEFORE_PING = 1.0
"""Seconds a pooled PostgreSQL connection may rest before a checkout pings it first."""


def _postgres_engine(url: str) -> Engine:
    """A checkout pings a pooled connection only when it may be dead: when the server has
    said something to it while it was idle (a server closing a connection, on shutdown or
    pg_terminate_backend, says so first; an idle connection hears nothing else), or when it
    rested long enough to have been cut quietly. A ping on every checkout cost a round trip
    per write."""
    engine = create_engine(url, connect_args={"application_name": application_name()})

    @event.listens_for(engine, "checkin")
    def _rested_since(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_in_doubt(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        rested = time.monotonic() - record.info.get("checked_in", math.inf)
        if rested > _IDLE_BEFORE_PING or _server_spoke(dbapi_connection):
            try:
                engine.dialect.do_ping(dbapi_connection)
            except engine.dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError(str(exc)) from exc  # the pool reconnects

    return engine


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection has input waiting (no round trip: a poll of its socket)."""
    try:
        readable, _, _ = wait_readable([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def store_url(url: str) -> str:
    """`url` as keel opens it. keel speaks to PostgreSQL through psycopg 3, so postgresql://
    and postgres:// URLs get that driver (SQLAlchemy 2.0 would pick psycopg2, and it refuses
    postgres://); anything but SQLite and PostgreSQL is refused, saying what to write."""
    scheme, separator, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        return url
    forms = ("sqlite:///path/to/keel.db for a SQLite file, or "
             "postgresql://user@host:5432/database for PostgreSQL")
    if not separator:
        raise StoreError(f"{url!r} is not a database URL. Write {forms}.")
    if scheme.startswith("postgresql+"):
        raise StoreError(f"keel talks to PostgreSQL through psycopg 3, not {scheme}: begin "
                         "the URL with postgresql:// instead.")
    if scheme.startswith("sqlite+"):
        raise StoreError(f"keel opens SQLite with Python's sqlite3, not {scheme}: begin the "
                         "URL with sqlite:/// instead.")
    raise StoreError(f"keel keeps its store in SQLite or PostgreSQL; {_safe_url(url)!r} is "
                     f"neither. Write {forms}.")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL as keel opens it (`store_url`); None in memory or PostgreSQL."""
    scheme, separator, rest = url.partition(":///")
    path = rest.split("?", 1)[0]
    if scheme.startswith("sqlite") and separator and path not in ("", ":memory:"):
        return Path(path)
    return None


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that reads the SQLite store at `path` and writes nothing. While a -wal
    file is beside it another process may be writing (SQLite removes it when the last
    connection closes), and commits may wait in it: mode=ro reads through it under SQLite's
    locks, as any reader does. Without one nobody has the store open, and immutable=1 reads
    the file alone; mode=ro would make the -wal and -shm files there, or fail where it
    cannot (and immutable=1 would miss another process's commits still in its -wal)."""
    in_use = path.with_name(f"{path.name}-wal").exists()
    option = "mode=ro" if in_use else "immutable=1"
    return sqlite3.connect(f"{path.resolve().as_uri()}?{option}", uri=True,
                           check_same_thread=False, timeout=30)


def reading_url(url: str) -> str:
    """The URL to read the store at `url` with: itself, or for a SQLite store this process
    cannot write (a copy, a read-only mount) the same with mode=ro, so that reading it works
    and writes nothing."""
    path = sqlite_file(store_url(url))
    if path is None or not path.exists() or _unwritable(path) is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}mode=ro"


def _read_only_file(url: str) -> Path | None:
    """The SQLite file that `url` opens read-only (it ends in mode=ro), or None."""
    if "mode=ro" in url.partition("?")[2].split("&"):
        return sqlite_file(url)
    return None


def _unwritable(path: Path) -> str | None:
    """Why SQLite cannot write the store at `path` (its file, or its directory, where WAL
    mode makes the -wal and -shm files), or None."""
    if path.exists() and not os.access(path, os.W_OK):
        return "its file cannot be written"
    if not os.access(path.parent, os.W_OK):
        return "its directory cannot be written"
    return None


def _ensure_writable(url: str) -> None:
    """Make the store's directory, and refuse a store that cannot be written, saying how it
    can be read."""
    if (path := sqlite_file(url)) is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if (why := _unwritable(path)) is not None:
        raise StoreError(
            f"The keel database at {path} is read-only ({why}). keel's read commands (ls, "
            "show, events, export, decisions, export-test) read it as it is, and so does a "
            "store URL ending in ?mode=ro; to change it, make it writable or use a writable "
            "copy.")


def _refusing_writer(message: str) -> Engine:
    """A read-only store's writer: every write fails at once with `message`."""
    def refuse() -> Any:
        raise StoreError(message)

    return create_engine("sqlite://", creator=refuse)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return url
