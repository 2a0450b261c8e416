"""What a store holds, as bytes: for tests that prove something never reached it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from keel import AgentRuntime


def stored_bytes(runtime: AgentRuntime) -> bytes:
    """Everything the store holds: the database's files on SQLite; every text and bytea
    column of keel's tables on PostgreSQL."""
    store = runtime.store
    if store.is_sqlite:
        path = Path(store.url.split(":///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    with store.reading() as conn:
        columns = conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE "
            "table_name LIKE 'keel%' AND data_type IN ('text', 'bytea')")).all()
        assert len(columns) > 20  # the executions, journal, events, approvals, checkpoints
        found = []
        for table, column in columns:
            for (value,) in conn.execute(text(f'SELECT "{column}" FROM {table}')):
                found.append(value if isinstance(value, bytes) else
                             bytes(value) if isinstance(value, memoryview) else
                             str(value or "").encode())
        return b"\n".join(found)
