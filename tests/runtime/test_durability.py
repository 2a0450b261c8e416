"""Durable and relaxed commits: everything a run journaled is on disk before a tool runs and when
the run returns; the commits between are relaxed. A fresh run's result, built from what this
process wrote, equals the one read from the store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from examples.support_triage import adk_agents, agents, backend, graph

import keel
from keel import AgentRuntime, Status
from keel.runtime._store import NewEvent, Store

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
TEAMS = {"openai": agents.triage_agent, "langgraph": graph.triage_graph,
         "adk": adk_agents.triage_agent}


def allow_all(tool_name: str, args: dict[str, Any], ctx: keel.PolicyContext) -> keel.Allow:
    return keel.Allow()


@pytest.fixture(autouse=True)
def _clean_backend() -> None:
    backend.REFUNDS.clear()


class CommitLog:
    """The store's commits in the order they finished, as (durable, journal) where `journal`
    says whether the commit journaled anything (steps, approvals, an execution), with tool
    starts ("tool", name) among them. Event-only commits (a graph's live events) and lease
    renewals can race with a tool thread; they are not journal data."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entries: list[tuple[Any, ...]] = []
        writer = store._writer

        def write(*args: Any, **kwargs: Any) -> Any:
            written = type(writer).write(writer, *args, **kwargs)
            self.entries.append(("commit", kwargs["durable"],
                                 bool(kwargs["steps"] or kwargs["approvals"])))
            return written

        def insert_execution(values: dict[str, Any], *, durable: bool) -> bool:
            admitted = type(writer).insert_execution(writer, values, durable=durable)
            self.entries.append(("commit", durable, True))
            return admitted

        @contextmanager
        def transaction(what: str, *, durable: bool = True, **fence: Any) -> Iterator[Any]:
            # Every such write is journal data (LangGraph's checkpoints and task writes).
            with type(writer).transaction(writer, what, durable=durable, **fence) as run:
                yield run
            self.entries.append(("commit", durable, True))

        monkeypatch.setattr(writer, "write", write)
        monkeypatch.setattr(writer, "insert_execution", insert_execution)
        monkeypatch.setattr(writer, "transaction", transaction)

    def tool(self, name: str) -> None:
        self.entries.append(("tool", name))

    def unsynced_before(self, index: int) -> list[int]:
        """The relaxed journal commits before entry `index` that no durable commit followed
        before it."""
        pending: list[int] = []
        for i, entry in enumerate(self.entries[:index]):
            if entry[0] == "commit" and entry[1]:
                pending.clear()
            elif entry[0] == "commit" and entry[2]:
                pending.append(i)
        return pending


@pytest.mark.parametrize("framework", TEAMS)
@pytest.mark.parametrize("policy", [None, allow_all], ids=["ungated", "policy"])
def test_a_tool_runs_only_once_everything_journaled_is_on_disk(
    database_url: str, framework: str, policy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ungated, get_invoice runs right after its turn, which no intent row makes durable; the
    refund waits for a reviewer, then runs on resume. With the policy, each call writes an
    intent row first."""
    with AgentRuntime(database_url, approval_policy=policy, auto_resume=False) as runtime:
        log = CommitLog(runtime.store, monkeypatch)

        class WatchedInvoices(dict[str, Any]):
            def get(self, *args: Any) -> Any:
                log.tool("get_invoice")
                return super().get(*args)

        refund = backend.refund

        def watched_refund(*args: Any) -> dict[str, object]:
            log.tool("process_refund")
            return refund(*args)

        monkeypatch.setattr(backend, "INVOICES", WatchedInvoices(backend.INVOICES))
        monkeypatch.setattr(backend, "refund", watched_refund)
        result = runtime.run(TEAMS[framework], TICKET)
        if policy is None:
            assert result.status is Status.WAITING
            assert not log.unsynced_before(len(log.entries))  # the pause is on disk
            runtime.handle(result.execution_id).approve()
            result = runtime.resume(result.execution_id)
        assert result.status is Status.COMPLETED
        tools = [(i, e[1]) for i, e in enumerate(log.entries) if e[0] == "tool"]
        # (the refund reads the invoice too)
        assert [name for _, name in tools] == ["get_invoice", "process_refund", "get_invoice"]
        assert [log.unsynced_before(i) for i, _ in tools] == [[], [], []]
        assert any(not e[1] for e in log.entries if e[0] == "commit")  # some were relaxed
        assert not log.unsynced_before(len(log.entries))  # the run's end is on disk


@pytest.mark.parametrize("framework", TEAMS)
@pytest.mark.parametrize("policy", [None, allow_all], ids=["waits", "completes"])
def test_a_fresh_runs_result_equals_the_one_read_from_the_store(
    database_url: str, framework: str, policy: Any
) -> None:
    with AgentRuntime(database_url, approval_policy=policy) as runtime:
        result = runtime.run(TEAMS[framework], TICKET)
        assert result.status is (Status.COMPLETED if policy else Status.WAITING)
        assert result.to_json() == runtime.result(result.execution_id).to_json()


def test_relaxed_writes_are_flushed_by_the_next_durable_one(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path}/keel.db")
    try:
        now = time.time()
        store.insert_execution({
            "id": "e1", "framework": "openai", "agent_name": "a", "input": '"hi"',
            "options": "{}", "status": "RUNNING", "lease_epoch": 1, "created_at": now,
            "updated_at": now}, durable=False)
        assert store.unsynced
        assert _writer_synchronous(store) == "NORMAL"
        store.write("e1", 1, events=[NewEvent("message", "a", {"content": "one"})],
                    durable=False)
        assert store.unsynced
        store.write("e1", 1, events=[NewEvent("message", "a", {"content": "two"})])
        assert not store.unsynced
        assert _writer_synchronous(store) == "FULL"
        store.write("e1", 1, durable=False)
        with store.transaction() as conn:  # a transaction that may write nothing syncs nothing
            conn.exec_driver_sql("SELECT 1")
        assert store.unsynced
        with store.writing("set an error") as run:
            run("UPDATE keel_executions SET error = 'x' WHERE id = :id", id="e1")
        assert not store.unsynced
        with store.writing("set it again", durable=False) as run:
            run("UPDATE keel_executions SET error = 'x' WHERE id = :id", id="e1")
        assert store.unsynced
    finally:
        store.close()
    # Everything was committed: another connection reads it all.
    with sqlite3.connect(tmp_path / "keel.db") as conn:
        assert conn.execute("SELECT last_seq, error FROM keel_executions").fetchall() == [
            (2, "x")]


def _writer_synchronous(store: Store) -> str:
    """The `synchronous` setting the store's one SQLite writer connection last committed with."""
    writer = store._writer._sqlite
    assert writer is not None
    level = writer._pooled.driver_connection.execute("PRAGMA synchronous").fetchone()[0]
    return {1: "NORMAL", 2: "FULL"}[level]
