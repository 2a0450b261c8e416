"""Workers in this process: a runtime with workers=True queues, a Worker claims and runs."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from agents import Agent, RunConfig
from examples.support_triage import agents as support
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent

import keel
from keel import AgentRuntime, KeelError, Status, Worker

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


@contextmanager
def working(database_url: str, *agents: object, concurrency: int = 2) -> Iterator[Worker]:
    """A worker on its own runtime, in a thread, for the duration of the block."""
    with AgentRuntime(database_url) as runtime:
        worker = Worker(runtime, list(agents) or [triage_agent], concurrency=concurrency)
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            yield worker
        finally:
            worker.stop()
            thread.join(30)
            assert not thread.is_alive()


def test_a_queued_run_waits_for_a_worker_then_runs_there(database_url: str) -> None:
    backend.REFUNDS.clear()
    with AgentRuntime(database_url, workers=True) as web:
        handle = web.start(triage_agent, TICKET)
        assert handle.status() is Status.QUEUED  # nothing runs in the web process
        with working(database_url):
            waiting = handle.join(timeout=30)
            assert waiting.status is Status.WAITING
            assert [p.tool_name for p in waiting.pending_approvals] == ["process_refund"]
            handle.approve(reviewer="ana")  # the decision queues it; a worker resumes it
            result = handle.join(timeout=30)
        row = web.store.execution(result.execution_id)
    assert result.status is Status.COMPLETED, result.error
    assert len(backend.REFUNDS) == 1
    assert [e.reason for e in result.events if e.type == "resumed"] == ["decided"]
    assert row.lease_owner is None and row.lease_epoch == 2  # claimed twice, by the worker


def test_run_with_workers_returns_what_the_worker_did(database_url: str) -> None:
    with working(database_url), AgentRuntime(database_url, workers=True) as web:
        result = web.run(triage_agent, "How do I reset my password?")
    assert result.status is Status.COMPLETED
    assert "signing in again" in str(result.output)


def test_a_webhook_retry_with_the_same_key_gets_the_same_execution(database_url: str) -> None:
    with AgentRuntime(database_url, workers=True) as web:
        first = web.start(triage_agent, TICKET, idempotency_key="ticket-4711")
        again = web.start(triage_agent, TICKET, idempotency_key="ticket-4711")
        assert again.execution_id == first.execution_id
        assert len(web.store.executions()) == 1


def test_workers_share_the_queue_and_run_each_execution_once(database_url: str) -> None:
    with AgentRuntime(database_url, workers=True) as web:
        handles = [web.start(triage_agent, "How do I reset my password?") for _ in range(12)]
        with working(database_url, concurrency=3), working(database_url, concurrency=3):
            results = [h.join(timeout=60) for h in handles]
        # Each was claimed once: a second claim would have raised the epoch.
        epochs = {web.store.execution(r.execution_id).lease_epoch for r in results}
    assert {r.status for r in results} == {Status.COMPLETED}
    assert epochs == {1}


def test_a_worker_finds_its_agent_under_another_module_name(database_url: str) -> None:
    with AgentRuntime(database_url, workers=True) as web:
        handle = web.start(triage_agent, "How do I reset my password?")
        # As if the admitting process had found the agent in this module (it imports it)
        # rather than in the one that defines it, which the worker knows it by.
        with web.store.transaction() as conn:
            conn.exec_driver_sql("UPDATE keel_executions SET agent_ref = ?" if web.store.is_sqlite
                                 else "UPDATE keel_executions SET agent_ref = %s",
                                 (f"{__name__}:triage_agent",))
        with working(database_url, support.triage_agent):
            result = handle.join(timeout=30)
    assert result.status is Status.COMPLETED


def test_runs_that_cannot_travel_to_a_worker_are_refused(database_url: str) -> None:
    local = Agent(name="local", instructions="x")
    with AgentRuntime(database_url, workers=True) as web:
        with pytest.raises(KeelError, match="module-level name"):
            web.start(local, "hi")
        with pytest.raises(KeelError, match="run_config"):
            web.start(triage_agent, "hi", run_config=RunConfig())
        with pytest.raises(KeelError, match="at least one agent"):
            Worker(web, [])
        with pytest.raises(KeelError, match="no module-level name"):
            Worker(web, [local])
        assert web.store.executions() == []


def test_worker_is_public() -> None:
    assert keel.Worker is Worker


def test_postgres_notify_wakes_an_idle_worker_at_once(postgres_url: str) -> None:
    """The worker would not poll for a minute: only LISTEN/NOTIFY can wake it, for a new
    run and then for the approval decision."""
    backend.REFUNDS.clear()
    with AgentRuntime(postgres_url) as runtime, AgentRuntime(postgres_url, workers=True) as web:
        worker = Worker(runtime, [triage_agent], poll_interval=60)
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            time.sleep(0.5)  # the worker has made its first claim and sleeps
            handle = web.start(triage_agent, TICKET)
            assert handle.join(timeout=10).status is Status.WAITING
            handle.approve()
            assert handle.join(timeout=10).status is Status.COMPLETED
        finally:
            worker.stop()
            thread.join(30)
    assert len(backend.REFUNDS) == 1


def test_a_stop_signal_handled_by_another_thread_still_stops_the_worker(
        sqlite_url: str) -> None:
    """The kernel may hand a process's SIGTERM to any thread; Python then runs the handler
    in the main thread only once that thread looks, which a worker's wait must let it do."""
    with AgentRuntime(sqlite_url) as runtime:
        worker = Worker(runtime, [triage_agent])
        previous = signal.signal(signal.SIGUSR1, lambda *_: worker.stop())
        # Sent to the timer's own thread, as the kernel might send it: not the main thread.
        sender = threading.Timer(0.3, lambda: signal.pthread_kill(threading.get_ident(),
                                                                 signal.SIGUSR1))
        watchdog = threading.Timer(10, worker.stop)  # so that a regression fails, not hangs
        sender.start()
        watchdog.start()
        started = time.monotonic()
        try:
            worker.run()
        finally:
            signal.signal(signal.SIGUSR1, previous)
            sender.cancel()
            watchdog.cancel()
    assert time.monotonic() - started < 5
