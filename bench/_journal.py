"""Journaling one step (`Execution.record`) against the store's raw single-commit floor.

The step is shaped like a real model step: the payload and events the OpenAI adapter journals
for a response holding a short message and a function call (about 520 bytes of JSON, 2 events).
It is recorded durable (the commit a tool call waits for) against a raw commit that waits for
the disk; on SQLite also relaxed (the commits between), against a raw commit with
synchronous=NORMAL.
"""

from __future__ import annotations

import gc
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from keel.runtime._approvals import ApprovalRules
from keel.runtime._execution import Execution
from keel.runtime._json import dumps
from keel.runtime._leases import lease_owner
from keel.runtime._store import NewEvent, Store

from ._report import Row, Timing, latency_checks, timing_row

__all__ = [
    "Goals",
    "ModelStep",
    "Pair",
    "Samples",
    "journal_row",
    "model_step",
    "open_execution",
    "postgres_row",
    "sqlite_row",
    "sqlite_timings",
]

LEASE_SECONDS = 10.0
AGENT = "billing_specialist"


@dataclass(frozen=True)
class ModelStep:
    payload: dict[str, Any]
    events: list[NewEvent]

    @property
    def payload_json(self) -> str:
        return dumps(self.payload)


@dataclass(frozen=True)
class Samples:
    count: int
    warmup: int


@dataclass(frozen=True)
class Goals:
    p50_ms: float
    p99_ms: float
    ratio: float


def model_step() -> ModelStep:
    """What the OpenAI adapter records for one model turn: the response and its events.

    Built here, not by the adapter's private encoder, so the benchmark's step stays the same
    while the adapter changes; the shape is the adapter's (output items as JSON, usage, id).
    """
    text = "Let me look up invoice INV-8821 to check the duplicate charge."
    message = ResponseOutputMessage(
        id="msg_0a1b2c3d", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", annotations=[], text=text)],
    )
    call = ResponseFunctionToolCall(
        id="fc_0a1b2c3d", call_id="call_2_get_invoice", type="function_call",
        name="get_invoice", arguments='{"invoice_id": "INV-8821"}', status="completed",
    )
    payload = {
        "agent": AGENT,
        "output": [item.model_dump(mode="json", exclude_none=True) for item in (message, call)],
        "usage": {"requests": 1, "input_tokens": 412, "output_tokens": 38, "total_tokens": 450},
        "response_id": "resp_0a1b2c3d4e5f",
    }
    events = [
        NewEvent("message", AGENT, {"content": text}),
        NewEvent("tool_call", AGENT, {
            "tool_name": call.name, "call_id": call.call_id, "args": {"invoice_id": "INV-8821"},
        }),
    ]
    return ModelStep(payload, events)


def open_execution(store: Store) -> Execution:
    """A RUNNING execution this process holds the lease of, as `AgentRuntime._admit` makes."""
    now = time.time()
    execution_id = uuid.uuid4().hex
    store.insert_execution({
        "id": execution_id, "framework": "openai", "agent_name": AGENT, "agent_ref": None,
        "input": dumps("bench"), "options": dumps({}), "status": "RUNNING",
        "lease_owner": lease_owner(), "lease_epoch": 1, "lease_expires_at": now + LEASE_SECONDS,
        "created_at": now, "updated_at": now,
    })
    row = store.execution(execution_id)
    return Execution(
        store, row, epoch=row.lease_epoch, rules=ApprovalRules(), lease_seconds=LEASE_SECONDS
    )


Op = Callable[[int], None]


def _journal_op(execution: Execution, step: ModelStep, *, durable: bool = True) -> Op:
    def record(i: int) -> None:
        execution.record(
            f"model:{i}", kind="model", name=AGENT, payload=step.payload, events=step.events,
            durable=durable,
        )

    return record


Pair = tuple[Timing, Timing]
"""(journal, floor) timings."""


def _alternate(first: Op, second: Op, samples: Samples) -> Pair:
    """Time both operations in alternating order, after `warmup` unrecorded pairs."""
    timed: tuple[list[float], list[float]] = ([], [])
    ops = (first, second)
    gc.collect()
    for i in range(samples.warmup + samples.count):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            start = time.perf_counter()
            ops[which](i)
            elapsed = time.perf_counter() - start
            if i >= samples.warmup:
                timed[which].append(elapsed)
    return Timing(timed[0]), Timing(timed[1])


def journal_row(name: str, timings: Pair, floor_name: str, goals: Goals) -> Row:
    recorded, floor = timings
    checks = latency_checks(
        recorded, floor, p50_ms=goals.p50_ms, p99_ms=goals.p99_ms, ratio=goals.ratio
    )
    return timing_row(name, recorded, floor_name, floor, checks)


# -- SQLite ---------------------------------------------------------------------------------

SQLITE_GOALS = Goals(p50_ms=1.0, p99_ms=5.0, ratio=4.0)
_FLOOR_TABLE = (
    "CREATE TABLE floor_steps (execution_id TEXT NOT NULL, step_key TEXT NOT NULL, "
    "payload TEXT NOT NULL, PRIMARY KEY (execution_id, step_key))"
)


@contextmanager
def _sqlite_floor(path: Path, execution_id: str, payload: str, *,
                  synchronous: str = "FULL") -> Iterator[Op]:
    """A raw stdlib connection, keel's pragmas: BEGIN IMMEDIATE; one INSERT; COMMIT."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(_FLOOR_TABLE)

        def insert(i: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO floor_steps VALUES (?, ?, ?)", (execution_id, f"model:{i}", payload)
            )
            conn.execute("COMMIT")

        yield insert
    finally:
        conn.close()


def sqlite_timings(directory: Path, samples: Samples, *, durable: bool = True) -> Pair:
    """Measurement 2 on SQLite: keel's store file and the floor's file side by side."""
    step = model_step()
    kind = "durable" if durable else "relaxed"
    store = Store(f"sqlite:///{directory / f'journal-{kind}.db'}")
    try:
        execution = open_execution(store)
        with _sqlite_floor(directory / f"floor-{kind}.db", execution.id, step.payload_json,
                           synchronous="FULL" if durable else "NORMAL") as floor:
            return _alternate(_journal_op(execution, step, durable=durable), floor, samples)
    finally:
        store.close()


def sqlite_row(timings: Pair) -> Row:
    return journal_row("journal 1 step, SQLite", timings, "raw sqlite3 commit", SQLITE_GOALS)


def sqlite_relaxed_row(timings: Pair) -> Row:
    recorded, floor = timings
    return timing_row(
        "journal 1 relaxed step, SQLite", recorded, "raw commit, synchronous=NORMAL", floor, [],
        note="The commits between the durable ones (tool results, handoffs): they survive a "
        "crash of the process, and the next durable commit puts them on disk.")


# -- PostgreSQL -----------------------------------------------------------------------------

PG_GOALS = Goals(p50_ms=2.0, p99_ms=10.0, ratio=3.0)


@contextmanager
def _pg_floor(conninfo: str, execution_id: str, payload: str) -> Iterator[Op]:
    """A raw psycopg connection in autocommit: each INSERT is its own transaction."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(_FLOOR_TABLE)

        def insert(i: int) -> None:
            conn.execute(
                "INSERT INTO floor_steps VALUES (%s, %s, %s)",
                (execution_id, f"model:{i}", payload),
            )

        yield insert


def postgres_row(url: str, conninfo: str, samples: Samples) -> Row:
    """Measurement 2 on PostgreSQL: keel's store and the floor table in one fresh database."""
    step = model_step()
    store = Store(url)
    try:
        execution = open_execution(store)
        with _pg_floor(conninfo, execution.id, step.payload_json) as floor:
            timings = _alternate(_journal_op(execution, step), floor, samples)
    finally:
        store.close()
    return journal_row(
        "journal 1 step, PostgreSQL", timings, "raw psycopg autocommit insert", PG_GOALS
    )
