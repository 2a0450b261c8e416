"""Approvals: gating rules, decisions from any runtime, rejection, policies, concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from agents import Agent, function_tool

import keel
from keel import (
    AgentHandle,
    AgentRuntime,
    Allow,
    AlreadyDecidedError,
    ApprovalNotFoundError,
    Ask,
    Deny,
    ExecutionNotFoundError,
    NotWaitingError,
    Status,
)
from scripted import ScriptedModel, call, say

EFFECTS: list[str] = []


@pytest.fixture(autouse=True)
def _clear_effects() -> None:
    EFFECTS.clear()


@function_tool
def lookup(customer: str) -> str:
    """Look a customer up."""
    EFFECTS.append("lookup")
    return f"{customer}: pro plan"


@function_tool
def refund(amount: int) -> str:
    """Refund an amount."""
    EFFECTS.append("refund")
    return f"refunded {amount}"


@keel.tool(approval_required=True)
@function_tool
def credit(amount: int) -> str:
    """Credit the account (an existing FunctionTool marked by keel)."""
    EFFECTS.append("credit")
    return f"credited {amount}"


def ops_script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "lookup" not in outputs:
        return [call("lookup", "c1", customer="cust_1")]
    if "refund" not in outputs:  # two gated calls in one turn
        return [call("refund", "c2", amount=99), call("credit", "c3", amount=5)]
    return [say(f"refund: {outputs['refund']} | credit: {outputs['credit']}")]


ops_agent = Agent(name="ops", instructions="ops: handle it", model=ScriptedModel(ops_script),
                  tools=[lookup, refund, credit])


def gated_runtime(url: str, **options: Any) -> AgentRuntime:
    return AgentRuntime(url, require_approval=["refund"], auto_resume=False, **options)


def test_each_gated_call_waits_with_its_own_row(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        result = runtime.run(ops_agent, "help cust_1")
    assert result.status is Status.WAITING
    assert EFFECTS == ["lookup"]
    rules = {p.call_id: (p.tool_name, p.args, p.rule) for p in result.pending_approvals}
    assert rules == {
        "c2": ("refund", {"amount": 99}, "require_approval 'refund'"),
        "c3": ("credit", {"amount": 5}, "@keel.tool(approval_required=True)"),
    }
    waiting = [e for e in result.events if e.type == "waiting"]
    assert [(e.tool_name, e.call_id) for e in waiting] == [("refund", "c2"), ("credit", "c3")]


def test_decisions_per_call_then_resume_runs_each_tool_once(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        first = runtime.run(ops_agent, "help cust_1")
    with gated_runtime(database_url) as other:  # another process, in effect
        handle = AgentHandle(first.execution_id, runtime=other)
        assert handle.approve("c2", reviewer="ann") == ["c2"]
        assert handle.status() is Status.WAITING  # c3 still pending
        assert handle.approve(reviewer="bob") == ["c3"]
        assert handle.status() is Status.QUEUED
        final = other.resume(first.execution_id)
    assert final.status is Status.COMPLETED
    assert final.output == "refund: refunded 99 | credit: credited 5"
    assert sorted(EFFECTS) == ["credit", "lookup", "refund"]
    decided = [(e.type, e.call_id, e.reviewer) for e in final.events
               if e.type in ("approved", "rejected")]
    assert decided == [("approved", "c2", "ann"), ("approved", "c3", "bob")]


def test_rejection_reaches_the_model_and_survives_a_restart(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        first = runtime.run(ops_agent, "help cust_1")
        handle = runtime.handle(first.execution_id)
        handle.reject("amount too large", call_id="c2", reviewer="ann")
        handle.approve("c3")
    with gated_runtime(database_url) as restarted:
        final = restarted.resume(first.execution_id)
    assert final.status is Status.COMPLETED
    assert "refund" not in EFFECTS
    assert "rejected by the reviewer" in final.output
    assert "amount too large" in final.output
    statuses = {c.name: c.status for c in final.tool_calls}
    assert statuses == {"lookup": "done", "refund": "rejected", "credit": "done"}


def test_deciding_wrongly_raises_typed_errors(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        first = runtime.run(ops_agent, "help cust_1")
        handle = runtime.handle(first.execution_id)
        with pytest.raises(ApprovalNotFoundError, match="c9"):
            handle.approve("c9")
        handle.approve()
        with pytest.raises(AlreadyDecidedError, match="already approved"):
            handle.approve("c2")
        with pytest.raises(AlreadyDecidedError):
            handle.reject("too late")
        with pytest.raises(ExecutionNotFoundError):
            runtime.handle("no-such-id").approve()
        plain = Agent(name="plain", instructions="plain: say hi",
                      model=ScriptedModel(lambda a, o: [say("hi")]))
        done = runtime.run(plain, "hello")
        with pytest.raises(NotWaitingError, match="COMPLETED"):
            runtime.handle(done.execution_id).approve()


def test_concurrent_decisions_exactly_one_wins(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["refund", "credit"],
                      auto_resume=False) as runtime:
        execution_id = runtime.run(ops_agent, "help cust_1").execution_id
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def decide(n: int) -> None:
        with AgentRuntime(database_url, auto_resume=False) as mine:
            barrier.wait()
            try:
                mine.handle(execution_id).approve(reviewer=f"r{n}")
                outcomes.append("won")
            except (AlreadyDecidedError, NotWaitingError):
                outcomes.append("lost")

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        approved = [e for e in runtime.result(execution_id).events if e.type == "approved"]
    assert len(approved) == 2 and len({e.reviewer for e in approved}) == 1


def test_policy_decides_first_and_records_its_rule(database_url: str) -> None:
    def policy(tool: str, args: dict[str, Any], ctx: keel.PolicyContext) -> Any:
        assert ctx.agent == "ops" and ctx.kind == "tool"
        if tool == "refund":
            return Allow() if args["amount"] <= 25 else Deny("refunds over $25 need a manager")
        if tool == "credit":
            return Allow()
        return None

    with AgentRuntime(database_url, approval_policy=policy) as runtime:
        result = runtime.run(ops_agent, "help cust_1")
        rows = {a.call_id: (a.status, a.rule, a.reason) for a in
                runtime.store.approvals(result.execution_id)}
    assert result.status is Status.COMPLETED
    assert sorted(EFFECTS) == ["credit", "lookup"]
    assert "refunds over $25 need a manager" in result.output
    assert rows == {
        "c2": ("rejected", "approval_policy", "refunds over $25 need a manager"),
        "c3": ("approved", "approval_policy", None),
    }


def test_a_policy_that_fails_or_cannot_decide_fails_closed(database_url: str) -> None:
    def broken(tool: str, args: dict[str, Any], ctx: Any) -> Any:
        if tool == "lookup":
            return None
        if tool == "refund":
            raise ValueError("no limits configured")
        return Ask("a person must look")

    with AgentRuntime(database_url, approval_policy=broken, auto_resume=False) as runtime:
        result = runtime.run(ops_agent, "help cust_1")
    assert result.status is Status.WAITING
    rules = {p.call_id: p.rule for p in result.pending_approvals}
    assert "no limits configured" in rules["c2"]
    assert rules["c3"] == "approval_policy"
    assert EFFECTS == ["lookup"]


def test_globs_gate_matching_tools_only(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["re*"], auto_resume=False) as runtime:
        result = runtime.run(ops_agent, "help cust_1")
    assert {p.tool_name for p in result.pending_approvals} == {"refund", "credit"}
    assert [p.rule for p in result.pending_approvals if p.tool_name == "refund"] == [
        "require_approval 're*'"
    ]


def test_cancel_a_waiting_execution(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        first = runtime.run(ops_agent, "help cust_1")
        handle = runtime.handle(first.execution_id)
        assert [c.status for c in first.tool_calls] == ["done", "pending", "pending"]
        assert handle.cancel("customer withdrew") is Status.CANCELLED
        assert handle.status() is Status.CANCELLED
        with pytest.raises(NotWaitingError):
            handle.approve()
        final = runtime.resume(first.execution_id)
    assert final.status is Status.CANCELLED
    assert final.events[-1].type == "cancelled"
    assert final.events[-1].reason == "customer withdrew"
    assert [c.status for c in final.tool_calls] == ["done", "not_run", "not_run"]
    assert EFFECTS == ["lookup"]


def test_keel_tool_on_a_plain_function_is_an_agent_tool_and_callable() -> None:
    @keel.tool(approval_required=True)
    def wire_money(account: str, amount: int) -> str:
        """Wire money."""
        return f"{amount} to {account}"

    assert wire_money("acct", 5) == "5 to acct"
    agent = Agent(name="bank", tools=[wire_money])
    assert agent.tools[0].name == "wire_money"
    assert "account" in agent.tools[0].params_json_schema["properties"]


def _garbled_script(agent: str, outputs: dict[str, str]) -> list[Any]:
    from openai.types.responses import ResponseFunctionToolCall

    if "refund" in outputs:
        return [say(outputs["refund"])]
    return [ResponseFunctionToolCall(id="fc_g", call_id="g1", type="function_call",
                                     name="refund", arguments="{amount: 99", status="completed")]


garbled = Agent(name="garbled", instructions="garbled: refund", tools=[refund],
                model=ScriptedModel(_garbled_script))


def test_unreadable_arguments_of_a_gated_call_fail_closed_and_never_hang(
    database_url: str,
) -> None:
    """Asked about (the policy cannot read them), and once approved answered as the SDK
    answers them: the model hears that the arguments are no JSON; the tool never runs."""
    with gated_runtime(database_url) as runtime:
        first = runtime.run(garbled, "refund it")
        assert first.status is Status.WAITING
        [pending] = first.pending_approvals
        assert pending.args == "{amount: 99" and "could not check" in (pending.rule or "")
        runtime.handle(first.execution_id).approve()
        final = runtime.resume(first.execution_id)
    assert final.status is Status.COMPLETED, final.error
    (call,) = final.tool_calls
    assert call.name == "refund" and "error" in str(call.result).lower()
    assert "refund" not in EFFECTS


def test_an_approved_call_writes_its_intent_after_the_decision(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        first = runtime.run(ops_agent, "help cust_1")
        runtime.handle(first.execution_id).approve()
        final = runtime.resume(first.execution_id)
        steps = runtime.store.steps(final.execution_id)
        decided = {a.call_id: a.decided_at for a in runtime.store.approvals(final.execution_id)}
    refund_step = steps["tool:c2"]
    assert refund_step.status == "done" and refund_step.attempt == 1
    assert decided["c2"] is not None and decided["c2"] < refund_step.started_at
    assert "tool:c1" in steps and steps["tool:c1"].kind == "tool"  # ungated: result only


def _mixed_script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "refund" not in outputs:  # one gated and one ungated call in the same turn
        return [call("refund", "m1", amount=10), call("lookup", "m2", customer="cust_2")]
    return [say(f"{outputs['refund']} / {outputs['lookup']}")]


mixed = Agent(name="mixed", instructions="mixed: both", tools=[refund, lookup],
              model=ScriptedModel(_mixed_script))


def test_an_ungated_call_beside_a_gated_one_runs_once(database_url: str) -> None:
    with gated_runtime(database_url) as runtime:
        first = runtime.run(mixed, "go")
        assert [p.call_id for p in first.pending_approvals] == ["m1"]
        runtime.handle(first.execution_id).approve()
        final = runtime.resume(first.execution_id)
    assert final.output == "refunded 10 / cust_2: pro plan"
    assert sorted(EFFECTS) == ["lookup", "refund"]  # lookup ran before the pause, not again
