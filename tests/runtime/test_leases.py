"""One owner per execution: concurrent resumes, heartbeats that keep the lease alive, and a
process that lost its lease stopping before its next effect."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from agents import Agent, function_tool
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent
from sqlalchemy import update

import keel
from keel import AgentRuntime, LeaseLostError, Status
from keel.runtime._execution import Execution
from keel.runtime._leases import claim
from keel.runtime._options import RunOptions
from keel.runtime._runtime import TAKEN_OVER
from keel.runtime._store import EXECUTIONS
from scripted import ScriptedModel, call, say

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


def test_two_runtimes_resuming_at_once_run_the_tool_once(database_url: str) -> None:
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(triage_agent, TICKET)
        runtime.handle(waiting.execution_id).approve()
    backend.REFUNDS.clear()
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def resume() -> None:
        with AgentRuntime(database_url, auto_resume=False) as mine:
            barrier.wait()
            results.append(mine.resume(waiting.execution_id))

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status for r in results] == [Status.COMPLETED, Status.COMPLETED]
    assert len(backend.REFUNDS) == 1
    resumed = [e for e in results[0].events if e.type == "resumed"]
    assert len(resumed) == 1  # only one of them claimed it


RELEASE = threading.Event()


@function_tool
def slow_report() -> str:
    """Takes a while."""
    assert RELEASE.wait(20)
    return "report ready"


def _script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "slow_report" not in outputs:
        return [call("slow_report", "r1")]
    return [say(outputs["slow_report"])]


reporter = Agent(name="reporter", instructions="reporter: report",
                 model=ScriptedModel(_script), tools=[slow_report])


def test_a_heartbeat_keeps_a_long_step_from_being_taken_over(database_url: str) -> None:
    RELEASE.clear()
    with AgentRuntime(database_url, lease_seconds=0.6) as owner:
        handle = owner.start(reporter, "go")
        for event in handle.stream():
            if event.type == "tool_call":
                break
        threading.Event().wait(1.5)  # well past one lease: only heartbeats keep it
        with AgentRuntime(database_url, lease_seconds=0.6) as other:
            follower = threading.Thread(target=lambda: other.resume(handle.execution_id))
            follower.start()
            threading.Event().wait(0.3)
            RELEASE.set()
            follower.join(20)
        result = handle.join(timeout=20)
    assert result.status is Status.COMPLETED
    assert not [e for e in result.events if e.type == "resumed"]  # never taken over
    assert [c.result for c in result.tool_calls] == ["report ready"]


FORKED_OWNERS = """
import json, os
from keel.runtime._leases import lease_owner
parent = lease_owner()
pid = os.fork()
if pid == 0:
    print(json.dumps([parent, lease_owner(), os.getpid()]), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_forked_process_owns_leases_under_a_name_of_its_own() -> None:
    """A preloading server's workers are forks: with its parent's name, a dead worker's runs
    would look alive for as long as the parent lives."""
    done = subprocess.run([sys.executable, "-c", FORKED_OWNERS], capture_output=True,
                          text=True, timeout=60)
    parent, child, child_pid = json.loads(done.stdout)
    assert child != parent and f":{child_pid}:" in child


def test_a_claim_that_waited_for_the_store_gets_a_whole_lease(sqlite_url: str) -> None:
    """On SQLite a claim may wait seconds for the write lock; its lease runs from the claim."""
    with AgentRuntime(sqlite_url, workers=True) as web:
        handle = web.start(triage_agent, TICKET)
        blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        claimed: list[Any] = []
        claiming = threading.Thread(target=lambda: claimed.append(
            claim(web.store, handle.execution_id, lease_seconds=2.0)))
        claiming.start()
        time.sleep(1.0)
        released = time.time()
        blocker.execute("COMMIT")
        blocker.close()
        claiming.join(10)
    assert claimed[0].lease_expires_at >= released + 2.0


# -- a process that lost its lease ----------------------------------------------------------

TAKEN_OVER_BY: list[str] = []  # the store a tool hands its run to, for the test below


@function_tool
def hand_over() -> str:
    """Another process takes the run over while this tool runs."""
    call = keel.current_call()
    assert call is not None
    with AgentRuntime(TAKEN_OVER_BY[0], auto_resume=False) as other:
        claimed = claim(other.store, call.execution_id, lease_seconds=10)
    assert claimed is None  # the owner is alive: it must look dead or late first
    _take_over(TAKEN_OVER_BY[0], call.execution_id)
    return "handed over"


def _take_over(url: str, execution_id: str) -> None:
    """What another worker's claim does to the row: a new epoch."""
    with AgentRuntime(url, auto_resume=False) as other, other.store.transaction() as conn:
        conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id)
                     .values(lease_epoch=EXECUTIONS.c.lease_epoch + 1))


overtaken = Agent(name="overtaken", instructions="overtaken: go", tools=[hand_over],
                  model=ScriptedModel(lambda agent, outputs: [say("done")] if outputs
                                      else [call("hand_over", "h1")]))


async def test_a_lost_lease_that_a_framework_wraps_is_a_takeover_not_a_failure(
        sqlite_url: str) -> None:
    """The SDK reports the tool's refused result commit as its own "Error running tool"."""
    TAKEN_OVER_BY[:] = [sqlite_url]
    with AgentRuntime(sqlite_url, auto_resume=False) as runtime:
        execution_id, row = runtime._admit(overtaken, "go", RunOptions(), None, returns=False)
        output = await runtime.drive(row, overtaken, RunOptions(), fresh=True)
        assert output is TAKEN_OVER
        assert runtime.store.execution(execution_id).status == Status.RUNNING.value


def _execution(runtime: AgentRuntime, lease_expires_at: float) -> Execution:
    execution_id, row = runtime._admit(overtaken, "go", RunOptions(), None, returns=False)
    ex = Execution(runtime.store, row, epoch=row.lease_epoch, rules=runtime.rules,
                   lease_seconds=runtime.lease_seconds, fresh=True)
    ex.lease_expires_at = lease_expires_at  # what this process last heard
    return ex


def test_a_process_paused_past_its_lease_does_not_run_a_tool_another_took_over(
        sqlite_url: str) -> None:
    ran: list[str] = []
    with AgentRuntime(sqlite_url, auto_resume=False, lease_seconds=1.0) as runtime:
        ex = _execution(runtime, lease_expires_at=time.time() - 5)  # it slept through it
        _take_over(sqlite_url, ex.id)
        with pytest.raises(LeaseLostError):
            ex.run_tool_sync(invoke=lambda: ran.append("ran"), call_id="c1", tool_name="t",
                             agent=None, args={})
    assert ran == []


def test_a_late_heartbeat_is_made_up_before_a_tool_runs(sqlite_url: str) -> None:
    with AgentRuntime(sqlite_url, auto_resume=False, lease_seconds=1.0) as runtime:
        ex = _execution(runtime, lease_expires_at=time.time() + 0.2)  # less than half left
        assert ex.run_tool_sync(invoke=lambda: "ran", call_id="c1", tool_name="t", agent=None,
                                args={}) == "ran"
        renewed = runtime.store.execution(ex.id).lease_expires_at
        assert renewed is not None and renewed > time.time() + 0.5

