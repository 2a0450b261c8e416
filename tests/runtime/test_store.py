"""The store: schema creation, SQLite durability settings, newer schemas, fencing, sequences."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from keel import (
    AgentRuntime,
    ExecutionNotFoundError,
    LeaseLostError,
    SchemaTooNewError,
    StoreError,
)
from keel.runtime import _schema as schema
from keel.runtime._schema import MIGRATIONS
from keel.runtime._store import NewEvent, Store


def _execution(store: Store, execution_id: str = "e1") -> None:
    now = time.time()
    store.insert_execution({
        "id": execution_id, "framework": "openai", "agent_name": "a", "input": '"hi"',
        "options": "{}", "status": "RUNNING", "lease_epoch": 1, "created_at": now,
        "updated_at": now,
    })


def test_schema_is_created_once_and_versioned(database_url: str) -> None:
    Store(database_url).close()
    store = Store(database_url)  # opening again migrates nothing
    with store.reading() as conn:
        version = conn.exec_driver_sql("SELECT version FROM keel_schema").scalars().all()
        tables = {t for t in ("keel_executions", "keel_steps", "keel_events", "keel_approvals")
                  if conn.dialect.has_table(conn, t)}
    store.close()
    assert version == [len(MIGRATIONS)]
    assert len(tables) == 4


def test_an_older_schema_is_migrated_and_keeps_its_rows(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:1])
    old = Store(database_url)  # as the first keel release created it
    _execution(old)
    old.close()
    monkeypatch.undo()
    store = Store(database_url)
    with store.reading() as conn:
        version = conn.exec_driver_sql("SELECT version FROM keel_schema").scalar()
        checkpoints = conn.exec_driver_sql("SELECT COUNT(*) FROM keel_lg_checkpoints").scalar()
    assert (version, checkpoints) == (len(MIGRATIONS), 0)
    assert store.execution("e1").agent_name == "a"
    store.close()


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()


def test_default_location_is_dot_keel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    with AgentRuntime() as runtime:
        assert runtime.database_url.endswith(".keel/keel.db")
    assert (tmp_path / ".keel" / "keel.db").exists()
    monkeypatch.setenv("KEEL_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere.db")
    with AgentRuntime() as runtime:
        assert runtime.database_url.endswith("elsewhere.db")


def test_a_database_from_a_newer_keel_is_refused_and_left_untouched(tmp_path: Path) -> None:
    # On SQLite: the file's own bytes show that nothing at all was written (PostgreSQL below).
    path = tmp_path / "keel.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE keel_schema SET version = ?", (len(MIGRATIONS) + 1,))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNewError, match="newer keel"):
        AgentRuntime(f"sqlite:///{path}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.postgres
def test_a_postgres_database_from_a_newer_keel_is_refused_and_left_untouched(
    postgres_url: str,
) -> None:
    Store(postgres_url).close()
    engine = create_engine(postgres_url, poolclass=NullPool)

    def schema_and_version() -> tuple[list[tuple[str, str, str]], list[int]]:
        with engine.connect() as conn:
            columns = conn.exec_driver_sql(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY 1, 2").all()
            versions = conn.exec_driver_sql("SELECT version FROM keel_schema").scalars().all()
        return [tuple(c) for c in columns], list(versions)

    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE keel_schema SET version = {len(MIGRATIONS) + 1}")
    before = schema_and_version()
    with pytest.raises(SchemaTooNewError, match="newer keel"):
        AgentRuntime(postgres_url)
    assert schema_and_version() == before
    engine.dispose()


def test_writes_with_a_stale_epoch_are_refused(database_url: str) -> None:
    store = Store(database_url)
    _execution(store)
    store.write("e1", 1, events=[NewEvent("message", "a", {"content": "one"})])
    with store.transaction() as conn:  # another process took the execution over
        conn.exec_driver_sql("UPDATE keel_executions SET lease_epoch = 2 WHERE id = 'e1'")
    with pytest.raises(LeaseLostError, match="taken over"):
        store.write("e1", 1, events=[NewEvent("message", "a", {"content": "late"})])
    assert [e.content for e in store.events("e1")] == ["one"]
    store.close()


def test_a_taken_idempotency_key_admits_nothing(database_url: str) -> None:
    store = Store(database_url)
    now = time.time()
    values = {"framework": "openai", "agent_name": "a", "input": '"hi"', "options": "{}",
              "status": "RUNNING", "lease_epoch": 1, "created_at": now, "updated_at": now,
              "idempotency_key": "ticket-7"}
    assert store.insert_execution({"id": "e1", **values})
    assert not store.insert_execution({"id": "e2", **values})
    assert store.find_by_idempotency_key("ticket-7") == "e1"
    with pytest.raises(ExecutionNotFoundError):
        store.execution("e2")
    store.close()


def test_events_get_contiguous_sequence_numbers(database_url: str) -> None:
    store = Store(database_url)
    _execution(store)
    for n in range(3):
        store.write("e1", 1, events=[NewEvent("message", "a", {"content": f"m{n}"}),
                                     NewEvent("thinking", "a", {"content": f"t{n}"})])
    events = store.events("e1")
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in store.events("e1", after=4)] == [5, 6]
    assert events[0].model_dump(exclude={"ts"}) == {
        "type": "message", "execution_id": "e1", "seq": 1, "agent": "a", "content": "m0"}
    store.close()


def test_an_unreachable_database_is_a_clear_store_error() -> None:
    from keel import StoreUnavailableError

    with pytest.raises(StoreUnavailableError, match="Could not use the database at .*: "
                                                    "connection failed"):
        AgentRuntime("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


@pytest.mark.parametrize(("url", "message"), [
    ("keel.db", "'keel.db' is not a database URL. Write sqlite:///path/to/keel.db"),
    ("mysql://app:secret@db/keel", "SQLite or PostgreSQL; 'mysql://…@db/keel' is neither"),
    ("postgresql+psycopg2://db/keel", "through psycopg 3, not postgresql\\+psycopg2"),
    ("sqlite+aiosqlite:///keel.db", "with Python's sqlite3, not sqlite\\+aiosqlite"),
])
def test_a_url_keel_cannot_use_is_refused_saying_what_to_write(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        AgentRuntime(url)


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgres_urls_get_the_psycopg_3_driver(postgres_url: str, scheme: str) -> None:
    url = postgres_url.replace("postgresql+psycopg://", f"{scheme}://", 1)
    store = Store(url)
    assert store.engine.dialect.driver == "psycopg"
    _execution(store)  # the fenced writes speak psycopg 3's API
    store.write("e1", 1, events=[NewEvent("message", "a", {"content": "one"})])
    assert [e.content for e in store.events("e1")] == ["one"]
    store.close()


@pytest.mark.postgres
def test_pooled_connections_cut_while_resting_are_replaced_unseen(postgres_url: str) -> None:
    """A checkout pings a connection that rested over a second (not every checkout: that cost
    a round trip per write); one cut meanwhile, by a server restart or a proxy, is replaced."""
    import psycopg

    store = Store(postgres_url)
    _execution(store)
    store.write("e1", 1, events=[NewEvent("message", "a", {"content": "before"})])
    time.sleep(1.2)
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres",
                         autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()",
                            (database,)).fetchone()
    assert cut is not None and cut[0] >= 1
    store.write("e1", 1, events=[NewEvent("message", "a", {"content": "after"})])
    assert [e.content for e in store.events("e1")] == ["before", "after"]
    store.close()


@pytest.mark.postgres
def test_pooled_connections_cut_just_after_use_are_replaced_unseen(postgres_url: str) -> None:
    """A server that closes a connection tells it so first: a checkout that finds that
    message waiting pings, and the pool replaces the connection, however briefly it rested."""
    import psycopg

    store = Store(postgres_url)
    _execution(store)
    store.write("e1", 1, events=[NewEvent("message", "a", {"content": "before"})])
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres",
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
    time.sleep(0.1)  # the termination notice reaches the pooled connections
    store.write("e1", 1, events=[NewEvent("message", "a", {"content": "after"})])
    assert [e.content for e in store.events("e1")] == ["before", "after"]
    store.close()
