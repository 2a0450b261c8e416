"""One owner per execution: concurrent resumes, heartbeats that keep the lease alive."""

from __future__ import annotations

import threading
from typing import Any

from agents import Agent, function_tool
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent

from keel import AgentRuntime, Status
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
