"""Leases: one owner per running execution, fenced by an epoch that every write checks.

`claim()` takes one execution (a resume); `claim_batch()` takes the oldest claimable ones of
a worker's agents.
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
from ._schema import ExecutionRow
from ._store import EXECUTIONS, NewEvent, Store

__all__ = ["claim", "claim_batch", "claimable_refs", "lease_owner"]

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
    # One query per status, each served by the (status, created_at) index: an OR of the two
    # would scan and sort every claimable row on each claim. Rows locked beyond the limit are
    # released at commit.
    queued = EXECUTIONS.c.status == Status.QUEUED.value
    expired = and_(EXECUTIONS.c.status == Status.RUNNING.value,
                   EXECUTIONS.c.lease_expires_at < time.time())
    with store.transaction() as conn:
        candidates = [*_oldest(conn, queued, agent_refs, limit),
                      *_oldest(conn, expired, agent_refs, limit)]
        taken = sorted(candidates, key=lambda row: row.created_at)[:limit]
        claimed = _take(store, conn, taken, lease_seconds) if taken else []
    for row in claimed:
        CHANGES.notify(row.id)
    return claimed


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
    fault_point("claim:inside")
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
            reason = "recovered: the previous owner stopped"
        elif row.last_seq:
            reason = "decided"
        else:
            continue  # a queued run that never started
        store.append_events(conn, row.id, [NewEvent("resumed", data={"reason": reason})])
    by_id = {row.id: ExecutionRow.model_construct(**row._mapping) for row in taken}
    return [by_id[row.id] for row in rows]


def _owner_is_dead(owner: str | None) -> bool:
    """Whether `owner` ran on this host and its process no longer exists (or is a zombie)."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
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
