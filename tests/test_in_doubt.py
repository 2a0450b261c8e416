"""Unsafe tools: a crash mid-call parks the run IN_DOUBT; a human records, retries or fails it.

Each framework's support team with its refund declared `@keel.tool(side_effects="unsafe")`
(tests/programs: crash_agents, crash_graph, crash_adk) is SIGKILLed inside the refund, after
its effect. The resuming process must not refund again by itself: the refund ledger is the
witness (see test_crash_recovery for the harness).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import AgentHandle, AgentRuntime, NotInDoubtError, Status
from test_crash_recovery import AFTER_REFUND_EFFECT, Workspace

UNSAFE_AGENTS = {
    "openai": "crash_agents:unsafe_triage_agent",
    "langgraph": "crash_graph:unsafe_triage_graph",
    "adk": "crash_adk:unsafe_triage_agent",
}


def crash_in_the_refund(ws: Workspace, agent: str) -> str:
    """Kill the run inside its unsafe refund, after the effect; resume it in a new process,
    which must stop IN_DOUBT without refunding again. Returns the execution id."""
    ws.start(agent, "unsafe", killed=True, KEEL_TEST_KILL_AT=AFTER_REFUND_EFFECT)
    execution_id = ws.execution_for("unsafe")
    assert len(ws.refunds()) == 1
    resumed = ws.resume(execution_id)
    assert resumed.outcome["status"] == "IN_DOUBT", str(resumed)
    assert len(ws.refunds()) == 1  # not run again
    doubted = ws.result(execution_id)
    last = doubted.events[-1]
    assert (last.type, last.tool_name) == ("in_doubt", "process_refund")
    assert [c.status for c in doubted.tool_calls if c.name == "process_refund"] == ["in_doubt"]
    assert "may or may not have taken effect" in str(last.reason)
    return execution_id


def resolve(ws: Workspace, execution_id: str, action: str, **details: object) -> list[str]:
    with AgentRuntime(ws.url, auto_resume=False) as runtime:
        return AgentHandle(execution_id, runtime=runtime).resolve(
            action, reviewer="ana", **details)  # type: ignore[arg-type]


@pytest.mark.parametrize("framework", UNSAFE_AGENTS)
def test_a_recorded_result_lets_the_run_finish_without_a_second_refund(
        tmp_path: Path, sqlite_url: str, framework: str) -> None:
    ws = Workspace(tmp_path, sqlite_url)
    execution_id = crash_in_the_refund(ws, UNSAFE_AGENTS[framework])
    recorded = {"status": "refunded", "invoice_id": "INV-8821", "amount_usd": 99.0}
    assert len(resolve(ws, execution_id, "record", result=recorded)) == 1
    assert ws.status(execution_id) == "QUEUED"
    finished = ws.resume(execution_id)
    assert finished.outcome["status"] == "COMPLETED", str(finished)
    assert len(ws.refunds()) == 1
    result = ws.result(execution_id)
    [refund] = [c for c in result.tool_calls if c.name == "process_refund"]
    assert refund.result == recorded or refund.result == _as_text(recorded)
    reasons = [e.reason for e in result.events if e.type == "resumed"]
    assert "in doubt, resolved by ana: recorded the result of process_refund" in reasons[-2]


def test_retry_runs_the_refund_again_with_the_same_key(tmp_path: Path,
                                                       database_url: str) -> None:
    ws = Workspace(tmp_path, database_url)
    execution_id = crash_in_the_refund(ws, UNSAFE_AGENTS["openai"])
    resolve(ws, execution_id, "retry")
    assert ws.resume(execution_id).outcome["status"] == "COMPLETED"
    refunds = ws.refunds()
    assert len(refunds) == 2 and refunds[0]["idempotency_key"] == refunds[1]["idempotency_key"]


def test_fail_ends_the_run_and_a_second_resolution_is_refused(tmp_path: Path,
                                                               sqlite_url: str) -> None:
    ws = Workspace(tmp_path, sqlite_url)
    execution_id = crash_in_the_refund(ws, UNSAFE_AGENTS["openai"])
    again = ws.resume(execution_id)  # resuming again changes nothing until someone decides
    assert again.outcome["status"] == "IN_DOUBT" and len(ws.refunds()) == 1
    resolve(ws, execution_id, "fail", reason="the bank says it did not go through")
    result = ws.result(execution_id)
    assert result.status is Status.FAILED
    assert result.error == "In doubt, failed by ana: the bank says it did not go through"
    with pytest.raises(NotInDoubtError, match="is FAILED, not IN_DOUBT"):
        resolve(ws, execution_id, "retry")
    assert len(ws.refunds()) == 1


def _as_text(value: object) -> str:
    import json

    return json.dumps(value)
