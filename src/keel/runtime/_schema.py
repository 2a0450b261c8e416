"""keel's tables and the ordered list of migrations that create them.

The SQLModel classes describe the rows for queries. The schema itself is created by
`MIGRATIONS`: the position of a migration in the list is its version number, and a shipped
migration is never edited (add a new one instead). Every stored value is JSON text or a
plain scalar; nothing is pickled. Times are seconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from .._errors import SchemaTooNewError

__all__ = [
    "LANGGRAPH_TABLES", "MIGRATIONS", "ApprovalRow", "EventRow", "ExecutionRow", "StepRow",
    "migrate",
]


_REGISTRY = registry()


class _KeelModel(SQLModel, registry=_REGISTRY):
    """Own metadata, so a user's `SQLModel.metadata.create_all()` never touches keel's tables."""


class ExecutionRow(_KeelModel, table=True):
    __tablename__ = "keel_executions"

    id: str = Field(primary_key=True)
    framework: str
    agent_name: str
    agent_ref: str | None = None
    input: str
    options: str
    status: str
    output: str | None = None
    output_type: str | None = None
    error: str | None = None
    idempotency_key: str | None = Field(default=None, unique=True)
    parent_id: str | None = None
    conversation: str | None = None
    lease_owner: str | None = None
    lease_epoch: int = 0
    lease_expires_at: float | None = None
    last_seq: int = 0
    cancel_requested: int = 0
    created_at: float
    updated_at: float
    finished_at: float | None = None
    budget: str | None = None
    """JSON: the run's `Budget` (its limits), set when it was admitted (or resumed with one)."""
    run_seconds: float = 0.0
    """Seconds the run has spent running (not queued, not waiting), as of its last write."""
    status_reason: str | None = None
    """JSON: why keel stopped the run, e.g. {"budget_exceeded": {...}}."""
    redaction: str | None = None
    """JSON: the redaction patterns every process applies to what it writes about the run."""


class StepRow(_KeelModel, table=True):
    """One journaled step: a model response or a tool call (intent, then result)."""

    __tablename__ = "keel_steps"

    execution_id: str = Field(primary_key=True, foreign_key="keel_executions.id")
    step_key: str = Field(primary_key=True)
    kind: str
    name: str
    status: str
    attempt: int = 1
    payload: str | None = None
    started_at: float
    finished_at: float | None = None


class EventRow(_KeelModel, table=True):
    __tablename__ = "keel_events"

    execution_id: str = Field(primary_key=True, foreign_key="keel_executions.id")
    seq: int = Field(primary_key=True)
    type: str
    agent: str | None = None
    ts: float
    data: str


class ApprovalRow(_KeelModel, table=True):
    __tablename__ = "keel_approvals"

    id: str = Field(primary_key=True)
    execution_id: str = Field(foreign_key="keel_executions.id")
    call_id: str
    tool_name: str
    kind: str
    agent: str | None = None
    args: str
    status: str
    rule: str | None = None
    requested_at: float
    decided_at: float | None = None
    reviewer: str | None = None
    reason: str | None = None
    response: str | None = None
    """JSON: the value a reviewer answered a framework's pause with (`respond()`)."""


# Rows are built with model_construct, which skips SQLAlchemy's lazy mapper set-up: do it now,
# for keel's own registry only (never the user's models).
_REGISTRY.configure()

_V1 = [
    """CREATE TABLE keel_executions (
        id TEXT PRIMARY KEY,
        framework TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        agent_ref TEXT,
        input TEXT NOT NULL,
        options TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        output_type TEXT,
        error TEXT,
        idempotency_key TEXT UNIQUE,
        parent_id TEXT,
        lease_owner TEXT,
        lease_epoch INTEGER NOT NULL DEFAULT 0,
        lease_expires_at DOUBLE PRECISION,
        last_seq INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION
    )""",
    "CREATE INDEX keel_executions_status ON keel_executions (status, created_at)",
    """CREATE TABLE keel_steps (
        execution_id TEXT NOT NULL REFERENCES keel_executions (id) ON DELETE CASCADE,
        step_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        payload TEXT,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        PRIMARY KEY (execution_id, step_key)
    )""",
    """CREATE TABLE keel_events (
        execution_id TEXT NOT NULL REFERENCES keel_executions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        agent TEXT,
        ts DOUBLE PRECISION NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)
    )""",
    """CREATE TABLE keel_approvals (
        id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL REFERENCES keel_executions (id) ON DELETE CASCADE,
        call_id TEXT NOT NULL,
        tool_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT,
        args TEXT NOT NULL,
        status TEXT NOT NULL,
        rule TEXT,
        requested_at DOUBLE PRECISION NOT NULL,
        decided_at DOUBLE PRECISION,
        reviewer TEXT,
        reason TEXT,
        UNIQUE (execution_id, call_id)
    )""",
    "CREATE INDEX keel_approvals_status ON keel_approvals (status, requested_at)",
]

# LangGraph's checkpoints, in the same database as the journal (keel.adapters.langgraph):
# checkpoints without their channel values, each channel value once per version, and the
# pending writes of each checkpoint's tasks. Values are LangGraph's own serialization
# (`serde.dumps_typed`: a type name and bytes); BYTEA holds bytes on PostgreSQL and SQLite.
LANGGRAPH_TABLES = ("keel_lg_checkpoints", "keel_lg_blobs", "keel_lg_writes")
"""Their rows belong to a thread (`thread_id`): a keel run's own thread is its execution id."""

_V2 = [
    """CREATE TABLE keel_lg_checkpoints (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT,
        type TEXT NOT NULL,
        checkpoint BYTEA NOT NULL,
        metadata_type TEXT NOT NULL,
        metadata BYTEA NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
    )""",
    """CREATE TABLE keel_lg_blobs (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        channel TEXT NOT NULL,
        version TEXT NOT NULL,
        type TEXT NOT NULL,
        blob BYTEA,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
    )""",
    """CREATE TABLE keel_lg_writes (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        channel TEXT NOT NULL,
        type TEXT NOT NULL,
        blob BYTEA,
        task_path TEXT NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
    )""",
    "ALTER TABLE keel_approvals ADD COLUMN response TEXT",
    # The conversation an execution continues (an ADK session): a later run finds the last.
    "ALTER TABLE keel_executions ADD COLUMN conversation TEXT",
    "CREATE INDEX keel_executions_conversation ON keel_executions (conversation, created_at)",
]

# Budgets and redaction: a run's limits travel with it, and so do its redaction patterns.
_V3 = [
    "ALTER TABLE keel_executions ADD COLUMN budget TEXT",
    "ALTER TABLE keel_executions ADD COLUMN run_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
    "ALTER TABLE keel_executions ADD COLUMN status_reason TEXT",
    "ALTER TABLE keel_executions ADD COLUMN redaction TEXT",
]

# A pipeline's stages, found from the pipeline: deleting one deletes them too.
_V4 = ["CREATE INDEX keel_executions_parent ON keel_executions (parent_id)"]

# State that outlives one run (ADK's `user:` and `app:` keys): the newest under a key, found
# at each run's start. Only those steps are indexed, so other steps cost no more to write.
_V5 = ["CREATE INDEX keel_steps_shared_state ON keel_steps (step_key, finished_at) "
       "WHERE kind = 'state'"]

MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5]
"""Each entry is the statements of one schema version (version = index + 1)."""


def migrate(conn: Connection, *, where: str) -> None:
    """Bring the schema up to date inside the caller's write transaction.

    A database whose version is newer than this keel knows is refused and left untouched.
    """
    if conn.dialect.name == "postgresql":  # one migrating process at a time
        conn.execute(text("SELECT pg_advisory_xact_lock(726100001)"))
    current = _version(conn)
    if current > len(MIGRATIONS):
        raise SchemaTooNewError(
            f"The database at {where} has keel schema version {current}, but this keel knows "
            f"versions up to {len(MIGRATIONS)}. It was written by a newer keel and was left "
            "unchanged: upgrade keel (pip install -U keel) or point KEEL_DATABASE_URL at "
            "another database."
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        for statement in MIGRATIONS[version - 1]:
            conn.exec_driver_sql(statement)
        if version == 1:
            conn.exec_driver_sql("CREATE TABLE keel_schema (version INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO keel_schema (version) VALUES (1)")
        else:
            conn.execute(text("UPDATE keel_schema SET version = :v"), {"v": version})


def _version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "keel_schema"):
        return 0
    return int(conn.exec_driver_sql("SELECT MAX(version) FROM keel_schema").scalar() or 0)
