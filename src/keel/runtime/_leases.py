"""Leases: one owner per running execution, fenced by an epoch that every write checks."""

from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import select, update

from .._errors import ExecutionNotFoundError
from ._changes import CHANGES
from ._events import Status
from ._schema import ExecutionRow
from ._store import EXECUTIONS, NewEvent, Store

__all__ = ["OWNER", "claim"]

_HOST = socket.gethostname()
OWNER = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
"""This process's lease-owner identity."""


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
        if row.status == Status.QUEUED.value:
            reason = "decided" if row.last_seq else None
        elif row.status == Status.RUNNING.value and (
            row.lease_owner is None
            or (row.lease_expires_at or 0) < now
            or _owner_is_dead(row.lease_owner)
        ):
            reason = "recovered: the previous owner stopped"
        else:
            return None
        conn.execute(
            update(EXECUTIONS)
            .where(EXECUTIONS.c.id == execution_id)
            .values(
                status=Status.RUNNING.value,
                lease_owner=OWNER,
                lease_epoch=row.lease_epoch + 1,
                lease_expires_at=now + lease_seconds,
            )
        )
        if reason is not None:
            store.append_events(conn, execution_id, [NewEvent("resumed", data={"reason": reason})])
        claimed = conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id)).one()
    CHANGES.notify(execution_id)
    return ExecutionRow.model_construct(**claimed._mapping)


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
        return owner != OWNER  # an earlier life of this pid
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
