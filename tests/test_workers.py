"""`keel worker` processes: a killed worker's run is taken over, a paused one is fenced off.

The runs are queued by a separate process (run_support.py enqueue, a web process's part) and
driven by `keel worker crash_agents:triage_agent` children, which the tests SIGKILL, SIGSTOP
and SIGCONT. The crash agents' tools write fsynced ledgers (see test_crash_recovery), so what
a killed or paused worker did is counted too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel import AgentRuntime, Status
from test_crash_recovery import (
    AFTER_REFUND_EFFECT,
    CRASH_AGENT,
    KILLED,
    TICKET,
    Workspace,
    run_reference,
    wait_until,
)

LEASE = 1.5  # seconds: short, so that takeovers happen quickly here


class Workers:
    """The worker processes of one test; all are stopped at the end."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, **env: str) -> subprocess.Popen[str]:
        """A `keel worker` child; it is ready once it says it serves the agent."""
        log = self.ws.root / f"worker{len(self.procs)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "keel.cli", "worker", CRASH_AGENT, "--db", self.ws.url,
                 "--lease", str(LEASE)],
                cwd=self.ws.root, env=self.ws._env(env), text=True,
                stdout=out, stderr=subprocess.STDOUT,
            )
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        wait_until(lambda: "serving" in log.read_text(), "the worker is ready", proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            proc.wait(30)


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> Workspace:
    return Workspace(tmp_path, database_url)


@pytest.fixture
def workers(workspace: Workspace) -> Iterator[Workers]:
    fleet = Workers(workspace)
    try:
        yield fleet
    finally:
        fleet.stop_all()


def enqueue(ws: Workspace, key: str) -> str:
    child = ws.run("enqueue", ws.url, CRASH_AGENT, TICKET, key)
    # Queued, or already claimed by a live worker by the time the status is read (the tool
    # runs the tests check show which process ran it); never run by the enqueuing process.
    assert child.outcome["status"] in ("QUEUED", "RUNNING")
    return str(child.outcome["execution_id"])


def resumed_at(ws: Workspace, execution_id: str) -> list[float]:
    return [e.ts for e in ws.result(execution_id).events if e.type == "resumed"]


def test_a_killed_workers_run_is_taken_over_within_the_lease(
        workspace: Workspace, workers: Workers) -> None:
    ws = workspace
    reference = run_reference(ws)
    first = workers.start(KEEL_TEST_HANG_AT=AFTER_REFUND_EFFECT)
    execution_id = enqueue(ws, "killed-worker")
    wait_until(lambda: any(r["tool"] == "process_refund" for r in ws.tool_runs(first.pid)),
               "the first worker issued the refund", first)
    workers.start()  # idle, polling
    first.kill()
    killed_at = time.time()
    assert first.wait(10) == KILLED
    wait_until(lambda: ws.status(execution_id) == "COMPLETED", "the run completed")

    result = ws.result(execution_id)
    assert result.output == reference.output
    [takeover] = resumed_at(ws, execution_id)
    # The lease was renewed at most a third of a lease before the kill; one poll is 0.1 s.
    assert takeover - killed_at < LEASE + 1.0
    workers_only = reference.child.pid
    runs = [r["tool"] for r in ws.tool_runs() if r["pid"] != workers_only]
    assert runs == ["get_invoice", "process_refund", "process_refund"]  # the invoice's result
    # was journaled before the kill, so it was not looked up again; the refund cut off
    # mid-call ran again, with the same idempotency key
    refunds = [r for r in ws.refunds() if r["pid"] != workers_only]
    assert len(refunds) == 2 and len({r["idempotency_key"] for r in refunds}) == 1


def test_a_worker_paused_past_its_lease_cannot_write_when_it_wakes(
        workspace: Workspace, workers: Workers) -> None:
    ws = workspace
    reference = run_reference(ws)
    # The paused worker stops itself between the refund's effect and its commit.
    paused = workers.start(KEEL_FAULT_AT="tool:after_effect#2", KEEL_FAULT="stop")
    execution_id = enqueue(ws, "paused-worker")
    wait_until(lambda: _state(paused.pid) == "T", "the first worker paused itself", paused)
    workers.start()
    wait_until(lambda: ws.status(execution_id) == "COMPLETED", "the other worker finished it")
    events = [e.model_dump() for e in ws.result(execution_id).events]

    os.kill(paused.pid, signal.SIGCONT)  # it wakes up holding a stale lease
    wait_until(lambda: "taken over" in paused.log.read_text(),  # type: ignore[attr-defined]
               "the paused worker noticed", paused)
    result = ws.result(execution_id)
    assert [e.model_dump() for e in result.events] == events  # it wrote nothing
    assert result.output == reference.output
    assert [c.name for c in result.tool_calls] == [c[0] for c in reference.tool_calls]
    paused.terminate()
    assert paused.wait(30) == 0  # and it still shuts down cleanly


def test_a_run_started_in_a_web_process_that_died_is_finished_by_a_worker(
        workspace: Workspace, workers: Workers) -> None:
    """A process that ran an execution itself (no workers) crashes: the workers' sweep of
    expired leases finishes it too."""
    ws = workspace
    ws.run("start", ws.url, CRASH_AGENT, TICKET, "orphan", killed=True,
           KEEL_TEST_KILL_AT=AFTER_REFUND_EFFECT, KEEL_TEST_LEASE_SECONDS=str(LEASE))
    execution_id = ws.execution_for("orphan")
    workers.start()
    wait_until(lambda: ws.status(execution_id) == "COMPLETED", "a worker finished the orphan")
    with AgentRuntime(ws.url, auto_resume=False) as runtime:
        assert runtime.store.execution(execution_id).status == Status.COMPLETED.value


def _state(pid: int) -> str:
    """The process state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
