"""A LangGraph checkpoint saver on keel's store, so one database holds graphs and journal.

It follows LangGraph's own savers: a checkpoint row without its channel values, each channel
value stored once per version, and the pending writes of each checkpoint's tasks. Values go
through the saver's `serde` (LangGraph's JsonPlusSerializer by default, never pickle). The
async methods run the same statements as the sync ones; each is one short transaction.

With a redactor (the running execution's, else the store's), channel values, pending writes
and checkpoint metadata are redacted before they are serialized: their strings, inside dicts,
lists, tuples, pydantic models (LangChain's messages) and dataclasses; values of other types
are stored as the serde makes them. The checkpoint's own bookkeeping (ids, versions) is not
user data and is stored as it is.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ...runtime._execution import Execution
from ...runtime._redact import Redactor
from ...runtime._schema import LANGGRAPH_TABLES
from ...runtime._store import Reads, Store
from ._tools import current_execution

__all__ = ["KeelSaver"]

_PUT_BLOB = (
    "INSERT INTO keel_lg_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
    "VALUES (:thread_id, :ns, :channel, :version, :type, :blob) "
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
)
_PUT_CHECKPOINT = (
    "INSERT INTO keel_lg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata_type, metadata) VALUES (:thread_id, :ns, "
    ":checkpoint_id, :parent, :type, :checkpoint, :metadata_type, :metadata) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type, "
    "checkpoint = excluded.checkpoint, metadata_type = excluded.metadata_type, "
    "metadata = excluded.metadata"
)
_WRITE_COLUMNS = (
    "INSERT INTO keel_lg_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, "
    "channel, type, blob, task_path) VALUES (:thread_id, :ns, :checkpoint_id, :task_id, :idx, "
    ":channel, :type, :blob, :task_path) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) "
)
# A task's regular writes are kept as first written (a retried task must not change them);
# the special channels (error, interrupt, resume, scheduled) are replaced, as LangGraph's own
# savers do.
_PUT_WRITE = _WRITE_COLUMNS + "DO NOTHING"
_REPLACE_WRITE = (
    _WRITE_COLUMNS + "DO UPDATE SET channel = excluded.channel, type = excluded.type, "
    "blob = excluded.blob, task_path = excluded.task_path"
)
_CHECKPOINTS = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, "
    "metadata_type, metadata FROM keel_lg_checkpoints"
)
# LangGraph's own metadata, which it reads back (`parents` finds a subgraph's parent).
_BOOKKEEPING = frozenset({"source", "step", "parents", "thread_id", "checkpoint_ns",
                          "checkpoint_id", "keel_execution_id"})


class KeelSaver(BaseCheckpointSaver[str]):
    """LangGraph's `BaseCheckpointSaver` on a keel store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.store = store

    # -- reads ----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        where = {"thread_id": configurable["thread_id"],
                 "ns": configurable.get("checkpoint_ns", "")}
        sql = f"{_CHECKPOINTS} WHERE thread_id = :thread_id AND checkpoint_ns = :ns"
        if checkpoint_id := get_checkpoint_id(config):
            sql += " AND checkpoint_id = :checkpoint_id"
            where["checkpoint_id"] = checkpoint_id
        with self.store.reads() as read:
            rows = read(sql + " ORDER BY checkpoint_id DESC LIMIT 1", **where)
            return self._tuple(read, rows[0]) if rows else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        clauses, where = [], {}
        configurable = (config or {}).get("configurable", {})
        for column, key in (("thread_id", "thread_id"), ("checkpoint_ns", "checkpoint_ns"),
                            ("checkpoint_id", "checkpoint_id")):
            if configurable.get(key) is not None:
                clauses.append(f"{column} = :{key}")
                where[key] = configurable[key]
        if before is not None and (before_id := get_checkpoint_id(before)):
            clauses.append("checkpoint_id < :before")
            where["before"] = before_id
        sql = _CHECKPOINTS + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += " ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC"
        with self.store.reads() as read:
            found: list[CheckpointTuple] = []
            for row in read(sql, **where):
                if limit is not None and len(found) >= limit:
                    break
                metadata = self.serde.loads_typed((row["metadata_type"], row["metadata"]))
                if filter and any(metadata.get(k) != v for k, v in filter.items()):
                    continue
                found.append(self._tuple(read, row, metadata))
        yield from found

    def _tuple(self, read: Reads, row: dict[str, Any], metadata: Any = None) -> CheckpointTuple:
        """The checkpoint of `row` with its channel values and pending writes."""
        thread_id, ns, checkpoint_id = row["thread_id"], row["checkpoint_ns"], row["checkpoint_id"]
        checkpoint: Checkpoint = self.serde.loads_typed((row["type"], row["checkpoint"]))
        versions = list(checkpoint["channel_versions"].items())
        wanted = " OR ".join(f"(channel = :c{i} AND version = :v{i})"
                             for i in range(len(versions)))
        pairs = {f"{kind}{i}": str(value) for i, pair in enumerate(versions)
                 for kind, value in zip("cv", pair, strict=True)}
        blobs = read(
            "SELECT channel, type, blob FROM keel_lg_blobs WHERE thread_id = :thread_id AND "
            f"checkpoint_ns = :ns AND ({wanted})", thread_id=thread_id, ns=ns, **pairs,
        ) if versions else []
        values = {b["channel"]: self.serde.loads_typed((b["type"], b["blob"]))
                  for b in blobs if b["type"] != "empty"}
        writes = read(
            "SELECT task_id, channel, type, blob FROM keel_lg_writes WHERE thread_id = "
            ":thread_id AND checkpoint_ns = :ns AND checkpoint_id = :checkpoint_id "
            "ORDER BY task_path, task_id, idx", thread_id=thread_id, ns=ns,
            checkpoint_id=checkpoint_id,
        )
        if metadata is None:
            metadata = self.serde.loads_typed((row["metadata_type"], row["metadata"]))
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=metadata,
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=[(w["task_id"], w["channel"],
                             self.serde.loads_typed((w["type"], w["blob"]))) for w in writes],
        )

    # -- writes ---------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable.get("checkpoint_ns", "")
        stored: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = stored.pop("channel_values")
        redactor = self._redactor()
        blobs = [
            {"thread_id": thread_id, "ns": ns, "channel": channel, "version": str(version),
             **(_typed(self.serde, values[channel], redactor) if channel in values
                else {"type": "empty", "blob": None})}
            for channel, version in new_versions.items()
        ]
        checkpoint_type, checkpoint_bytes = self.serde.dumps_typed(stored)
        stored_metadata: dict[str, Any] = dict(get_checkpoint_metadata(config, metadata))
        if redactor is not None:
            stored_metadata = {
                key: value if key in _BOOKKEEPING else redactor.redact_value(value)
                for key, value in stored_metadata.items()}
        metadata_type, metadata_bytes = self.serde.dumps_typed(stored_metadata)
        # Durable: the nodes that run next may act outside keel's journal.
        with self.store.writing(f"checkpoint LangGraph thread {thread_id!r}",
                                fence=self._fence()) as run:
            if blobs:
                run.many(_PUT_BLOB, blobs)
            run(_PUT_CHECKPOINT, thread_id=thread_id, ns=ns, checkpoint_id=checkpoint["id"],
                parent=configurable.get("checkpoint_id"), type=checkpoint_type,
                checkpoint=checkpoint_bytes, metadata_type=metadata_type,
                metadata=metadata_bytes)
        return _config(thread_id, ns, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        redactor = self._redactor()
        rows = [
            {"thread_id": configurable["thread_id"],
             "ns": configurable.get("checkpoint_ns", ""),
             "checkpoint_id": configurable["checkpoint_id"], "task_id": task_id,
             "idx": WRITES_IDX_MAP.get(channel, index), "channel": channel,
             "task_path": task_path, **_typed(self.serde, value, redactor)}
            for index, (channel, value) in enumerate(writes)
        ]
        regular = [row for row in rows if row["idx"] >= 0]
        special = [row for row in rows if row["idx"] < 0]
        if not rows:
            return
        # Relaxed, as a tool's result is: a finished task's writes survive this process's
        # death, and the checkpoint that ends the step puts them on disk.
        thread_id = configurable["thread_id"]
        with self.store.writing(f"save the writes of a task of LangGraph thread "
                                f"{thread_id!r}", durable=False, fence=self._fence()) as run:
            if regular:
                run.many(_PUT_WRITE, regular)
            if special:
                run.many(_REPLACE_WRITE, special)

    def _redactor(self) -> Redactor | None:
        execution = self._execution()
        return execution.redactor if execution is not None else self.store.redactor

    def _fence(self) -> tuple[str, int] | None:
        """The lease that a running execution's checkpoints are written under: a process
        that lost it (paused while another worker took the run over) must not fork the
        thread with a late checkpoint, which the new owner would then read as the latest."""
        execution = self._execution()
        return (execution.id, execution.epoch) if execution is not None else None

    def _execution(self) -> Execution | None:
        """The keel execution whose graph runs now on this saver's store, if any."""
        execution = current_execution()
        return execution if execution is not None and execution.store is self.store else None

    def delete_thread(self, thread_id: str) -> None:
        with self.store.writing(f"delete LangGraph thread {thread_id!r}") as run:
            for table in LANGGRAPH_TABLES:
                run(f"DELETE FROM {table} WHERE thread_id = :thread_id", thread_id=thread_id)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counters that sort as text, with a random tail as LangGraph's own
        savers use, so that two branches of one thread never collide."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- async: the same statements (each a short local transaction) ------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for found in self.list(config, filter=filter, before=before, limit=limit):
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)


def _typed(serde: SerializerProtocol, value: Any, redactor: Redactor | None) -> dict[str, Any]:
    kind, data = serde.dumps_typed(value if redactor is None else redactor.redact_value(value))
    return {"type": kind, "blob": data}


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                             "checkpoint_id": checkpoint_id}}
