"""Handoffs of unmodified agents gated with require_approval=["transfer_to_*"]."""

from __future__ import annotations

from typing import Any

from agents import Agent
from examples.support_triage.agents import triage_agent

from keel import AgentRuntime, Allow, Deny, Status
from scripted import ScriptedModel, call, say

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


def test_gated_handoff_waits_then_happens_once_approved(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["transfer_to_*"],
                      auto_resume=False) as runtime:
        first = runtime.run(triage_agent, TICKET)
        assert first.status is Status.WAITING
        [pending] = first.pending_approvals
        assert (pending.tool_name, pending.agent) == (
            "transfer_to_billing_specialist", "support_triage")
        assert pending.rule == "require_approval 'transfer_to_*'"
        assert not [e for e in first.events if e.type == "handoff"]  # not yet
        runtime.handle(first.execution_id).approve(reviewer="lead")
        second = runtime.resume(first.execution_id)
        # The handoff happened; now the refund tool's own gate asks.
        assert second.status is Status.WAITING
        assert [p.tool_name for p in second.pending_approvals] == ["process_refund"]
        runtime.handle(first.execution_id).approve()
        final = runtime.resume(first.execution_id)
    assert final.status is Status.COMPLETED
    handoffs = [(e.agent, e.target) for e in final.events if e.type == "handoff"]
    assert handoffs == [("support_triage", "billing_specialist")]


def _desk_script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if agent == "desk":
        if "transfer_to_expert" in outputs:  # told the handoff was rejected
            return [say(f"Handled at the desk ({outputs['transfer_to_expert']})")]
        return [call("transfer_to_expert", "h1")]
    return [say("expert answer")]


expert = Agent(name="expert", instructions="expert: answer", model=ScriptedModel(_desk_script))
desk = Agent(name="desk", instructions="desk: route", model=ScriptedModel(_desk_script),
             handoffs=[expert])


def test_rejected_handoff_tells_the_model_and_the_run_goes_on(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["transfer_to_expert"],
                      auto_resume=False) as runtime:
        first = runtime.run(desk, "question")
        runtime.handle(first.execution_id).reject("the expert is on leave")
        final = runtime.resume(first.execution_id)
    assert final.status is Status.COMPLETED
    assert final.output.startswith("Handled at the desk")
    assert "the expert is on leave" in final.output
    assert not [e for e in final.events if e.type == "handoff"]
    assert [e.type for e in final.events if e.type in ("rejected", "done")] == [
        "rejected", "done"]


def test_a_policy_decides_handoffs_and_its_decision_is_recorded(database_url: str) -> None:
    def policy(name: str, args: dict[str, Any], ctx: Any) -> Any:
        return Allow() if ctx.kind == "handoff" else None

    with AgentRuntime(database_url, approval_policy=policy) as runtime:
        result = runtime.run(triage_agent, TICKET)  # the refund's own gate still asks
        rows = [(a.tool_name, a.kind, a.status, a.rule)
                for a in runtime.store.approvals(result.execution_id)]
    assert result.status is Status.WAITING
    assert rows == [
        ("transfer_to_billing_specialist", "handoff", "approved", "approval_policy"),
        ("process_refund", "tool", "pending", "@keel.tool(approval_required=True)"),
    ]
    assert [e.target for e in result.events if e.type == "handoff"] == ["billing_specialist"]


def _insists(agent: str, outputs: dict[str, str]) -> list[Any]:
    if agent == "pushy":
        return [call("transfer_to_expert", f"h{len(outputs)}")]  # whatever it is told
    return [say("expert answer")]


pushy = Agent(name="pushy", instructions="pushy: route", model=ScriptedModel(_insists),
              handoffs=[expert])


def test_a_model_that_insists_on_a_denied_handoff_stops_the_run(database_url: str) -> None:
    def deny(name: str, args: dict[str, Any], ctx: Any) -> Any:
        return Deny("experts are off today") if ctx.kind == "handoff" else None

    with AgentRuntime(database_url, approval_policy=deny) as runtime:
        result = runtime.run(pushy, "question")
    assert result.status is Status.FAILED
    assert "after 3 rejections" in (result.error or "")
