"""Leases: one owner per running execution, fenced by an epoch that every write checks.

`claim()` takes one execution (a resume); `claim_batch()` takes the oldest claimable ones of
a worker's agents: on PostgreSQL in one statement, so one round trip. A claim need not wait
for the disk: if it is lost, the run is claimed again, and the claimed run's first durable
write flushes it anyway.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select, update

from .._errors import ExecutionNotFoundError
from ._changes import CHANGES
from ._events import Status
from ._faults import fault_point
from ._fenced import RELAXED_COMMIT
from ._json import dumps
from ._schema import ExecutionRow
from ._store import EXECUTIONS, NewEvent, Store

__all__ = ["claim", "claim_batch", "claimable_refs", "lease_owner", "owner_process"]

_HOST = socket.gethostname()
_owner = ""


def lease_owner() -> str:
    """This process's lease-owner identity: `host:pid:nonce`."""
    global _owner
    if not _owner:
        _owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return _owner


def _forget_owner() -> None:
    global _owner
    _owner = ""


# A forked process (a preloading server's workers, say) is an owner of its own: with its
# parent's identity its runs would look alive for as long as the parent lives.
os.register_at_fork(after_in_child=_forget_owner)


def claim(store: Store, execution_id: str, *, lease_seconds: float) -> ExecutionRow | None:
    """Take a QUEUED execution, or a RUNNING one whose owner is gone; None if someone holds it.

    A dead owner on this host is detected at once; elsewhere the lease must expire first.
    """
    now = time.time()
    with store.transaction() as conn:
        row = conn.execute(
            select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).with_for_update()
        ).first()
        if row is None:
            raise ExecutionNotFoundError(f"No execution {execution_id!r} in this store.")
        if not (row.status == Status.QUEUED.value or row.status == Status.RUNNING.value and (
                (row.lease_expires_at or 0) < now or _owner_is_dead(row.lease_owner))):
            return None
        claimed = _take(store, conn, [row], lease_seconds)
    fault_point("claim:taken")
    CHANGES.notify(execution_id)
    return claimed[0]


def claim_batch(
    store: Store, agent_refs: Collection[str], *, limit: int, lease_seconds: float
) -> list[ExecutionRow]:
    """Take up to `limit` executions of the agents recorded as `agent_refs`, oldest first:
    queued ones (new or decided) and running ones whose lease expired (a stopped worker's).

    On PostgreSQL rows that another worker is claiming are skipped (FOR UPDATE SKIP LOCKED);
    SQLite runs one claim at a time anyway (BEGIN IMMEDIATE).
    """
    if not agent_refs or limit < 1:
        return []
    claim_rows = _claim_in_transaction if store.is_sqlite else _claim_in_one_statement
    claimed = claim_rows(store, agent_refs, limit, lease_seconds)
    if claimed:
        fault_point("claim:taken")
    for row in claimed:
        CHANGES.notify(row.id)
    return claimed


def _claim_in_transaction(store: Store, agent_refs: Collection[str], limit: int,
                          lease_seconds: float) -> list[ExecutionRow]:
    # One query per status, each served by the (status, created_at) index: an OR of the two
    # would scan and sort every claimable row on each claim.
    queued = EXECUTIONS.c.status == Status.QUEUED.value
    expired = and_(EXECUTIONS.c.status == Status.RUNNING.value,
                   EXECUTIONS.c.lease_expires_at < time.time())
    with store.transaction() as conn:
        candidates = [*_oldest(conn, queued, agent_refs, limit),
                      *_oldest(conn, expired, agent_refs, limit)]
        taken = sorted(candidates, key=lambda row: row.created_at)[:limit]
        return _take(store, conn, taken, lease_seconds) if taken else []


# The same claim as `_claim_in_transaction` and `_take`, as one PostgreSQL statement: rows
# locked beyond the limit are released when it commits; a run that had started before gets
# its `resumed` event (as the next event number) in the same statement.
_CLAIM = f"""WITH queued AS (
  SELECT id, status, last_seq, created_at FROM keel_executions
  WHERE status = 'QUEUED' AND agent_ref = ANY(:refs)
  ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED),
expired AS (
  SELECT id, status, last_seq, created_at FROM keel_executions
  WHERE status = 'RUNNING' AND lease_expires_at < :now AND agent_ref = ANY(:refs)
  ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED),
picked AS (
  SELECT *, status = 'RUNNING' OR last_seq > 0 AS resumed
  FROM (SELECT * FROM queued UNION ALL SELECT * FROM expired) AS candidates
  ORDER BY created_at LIMIT :limit),
taken AS (
  UPDATE keel_executions AS e SET status = 'RUNNING', lease_owner = :owner,
    lease_epoch = e.lease_epoch + 1, lease_expires_at = :expires,
    last_seq = e.last_seq + CAST(picked.resumed AS int),
    updated_at = CASE WHEN picked.resumed THEN :now ELSE e.updated_at END
  FROM picked WHERE e.id = picked.id
  RETURNING e.*, picked.status AS was),
resumed AS (
  INSERT INTO keel_events (execution_id, seq, type, agent, ts, data)
  SELECT taken.id, taken.last_seq, 'resumed', NULL, :now,
    CASE WHEN taken.was = 'RUNNING' THEN :recovered ELSE :decided END
  FROM taken JOIN picked ON picked.id = taken.id WHERE picked.resumed)
SELECT taken.*, {RELAXED_COMMIT} AS relaxed FROM taken ORDER BY created_at"""


def _claim_in_one_statement(store: Store, agent_refs: Collection[str], limit: int,
                            lease_seconds: float) -> list[ExecutionRow]:
    now = time.time()
    rows = store.statement(
        _CLAIM, durable=False, refs=list(agent_refs), limit=limit, now=now,
        expires=now + lease_seconds, owner=lease_owner(),
        recovered=dumps({"reason": _RECOVERED}), decided=dumps({"reason": _DECIDED}))
    return [ExecutionRow.model_construct(**{k: v for k, v in row.items()
                                            if k not in ("was", "relaxed")}) for row in rows]


def _oldest(conn: Connection, claimable: ColumnElement[bool], agent_refs: Collection[str],
            limit: int) -> Sequence[Any]:
    return conn.execute(
        select(EXECUTIONS.c.id, EXECUTIONS.c.status, EXECUTIONS.c.last_seq,
               EXECUTIONS.c.created_at)
        .where(claimable, EXECUTIONS.c.agent_ref.in_(agent_refs))
        .order_by(EXECUTIONS.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def claimable_refs(store: Store) -> set[str]:
    """The agent references of executions a worker could claim now or later."""
    with store.reading() as conn:
        return set(conn.execute(
            select(EXECUTIONS.c.agent_ref).distinct().where(
                EXECUTIONS.c.status.in_((Status.QUEUED.value, Status.RUNNING.value)),
                EXECUTIONS.c.agent_ref.is_not(None))
        ).scalars())


def _take(store: Store, conn: Connection, rows: Sequence[Any],
          lease_seconds: float) -> list[ExecutionRow]:
    """Make this process the owner of `rows` (a new epoch fences the previous one); a run
    that had started before gets a `resumed` event saying why it goes on."""
    # The lease runs from now, not from when the claim began: on SQLite a claim may have
    # waited seconds for the write lock, and a lease dated from then would have run out.
    now = time.time()
    taken = conn.execute(
        update(EXECUTIONS)
        .where(EXECUTIONS.c.id.in_([row.id for row in rows]))
        .values(status=Status.RUNNING.value, lease_owner=lease_owner(),
                lease_epoch=EXECUTIONS.c.lease_epoch + 1, lease_expires_at=now + lease_seconds)
        .returning(*EXECUTIONS.c)
    ).all()
    for row in rows:
        if row.status == Status.RUNNING.value:
            reason = _RECOVERED
        elif row.last_seq:
            reason = _DECIDED
        else:
            continue  # a queued run that never started
        store.append_events(conn, row.id, [NewEvent("resumed", data={"reason": reason})])
    by_id = {row.id: ExecutionRow.model_construct(**row._mapping) for row in taken}
    return [by_id[row.id] for row in rows]


_RECOVERED = "recovered: the previous owner stopped"
_DECIDED = "decided"


def owner_process(owner: str | None) -> tuple[str, int] | None:
    """The host and pid of a lease owner (`host:pid:nonce`); None when it is not one."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    return (host, int(pid)) if pid.isdigit() else None


def _owner_is_dead(owner: str | None) -> bool:
    """Whether `owner` ran on this host and its process no longer exists (or is a zombie)."""
    if not owner:
        return True
    process = owner_process(owner)
    if process is None or process[0] != _HOST:
        return False
    pid = process[1]
    if pid == os.getpid():
        return owner != lease_owner()  # an earlier life of this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
