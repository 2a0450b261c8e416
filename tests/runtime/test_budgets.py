"""Budgets: each one stops an agent of each framework at a step boundary, FAILED with its own
reason; the budget travels with the execution and a resumed run goes on from what it used."""

from __future__ import annotations

import time
from typing import Any

import pytest

from keel import AgentHandle, AgentRuntime, Budget, BudgetExceeded, Status
from keel.runtime._json import loads
from three_frameworks import FRAMEWORKS, scripted_agent

LOOKUPS: list[str] = []
REPLIES: list[str] = []
THREE_LOOKUPS = [("lookup", {"order": f"A-{i}"}) for i in range(3)]
DELAY = {"seconds": 0.0}


def lookup(order: str) -> str:
    """Look an order up."""
    time.sleep(DELAY["seconds"])
    LOOKUPS.append(order)
    return f"{order}: shipped"


def send_reply(text: str) -> str:
    """Send the reply to the customer."""
    REPLIES.append(text)
    return "sent"


@pytest.fixture(autouse=True)
def _reset() -> None:
    LOOKUPS.clear()
    REPLIES.clear()
    DELAY["seconds"] = 0.0


# The plan runs model, lookup, model, lookup, model, lookup, model; each model turn reports
# 15 tokens. (budget, what stops the run, its limit and use, the lookups that ran)
CASES = {
    "max_tool_calls": (Budget(max_tool_calls=2), "the tool call lookup", 2, 2, 2),
    "max_steps": (Budget(max_steps=3), "the tool call lookup", 3, 3, 1),
    "max_tokens": (Budget(max_tokens=20), "the tool call lookup", 20, 30, 1),
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", list(CASES))
def test_each_budget_stops_each_framework_at_its_limit(
    runtime: AgentRuntime, framework: str, name: str
) -> None:
    budget, next_step, limit, used, lookups = CASES[name]
    agent = scripted_agent(framework, THREE_LOOKUPS, [lookup])
    result = runtime.run(agent, "Where are my orders?", budget=budget)
    assert result.status is Status.FAILED
    assert result.budget_exceeded == BudgetExceeded(budget=name, limit=limit, used=used,
                                                    next_step=next_step)
    assert len(LOOKUPS) == lookups  # stopped before the next call, never in the middle of one
    assert f"({name}={limit})" in str(result.error)
    error = result.events[-1]
    assert error.type == "error" and error.budget_exceeded == result.budget_exceeded
    # The store says so too, for any process (and the CLI, the API, the dashboard).
    loaded = runtime.result(result.execution_id)
    assert (loaded.status, loaded.budget_exceeded, loaded.error) == (
        Status.FAILED, result.budget_exceeded, result.error)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_max_seconds_stops_at_the_first_boundary_after_the_time_is_up(
    runtime: AgentRuntime, framework: str
) -> None:
    agent = scripted_agent(framework, THREE_LOOKUPS, [lookup])
    runtime.run(agent, "warm up")  # a framework's first run in a process sets itself up
    LOOKUPS.clear()
    DELAY["seconds"] = 0.7
    result = runtime.run(agent, "Where are my orders?", budget=Budget(max_seconds=0.5))
    assert result.status is Status.FAILED
    exceeded = result.budget_exceeded
    assert exceeded is not None
    assert (exceeded.budget, exceeded.limit, exceeded.next_step) == (
        "max_seconds", 0.5, "a model call")
    assert exceeded.used > 0.7
    assert LOOKUPS == ["A-0"]  # the slow call finished; the run stopped after it


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_run_within_its_budget_completes_and_counts_its_tokens(
    runtime: AgentRuntime, framework: str
) -> None:
    agent = scripted_agent(framework, THREE_LOOKUPS, [lookup])
    budget = Budget(max_steps=7, max_tool_calls=3, max_tokens=60, max_seconds=30)
    result = runtime.run(agent, "Where are my orders?", budget=budget)
    output = result.output["messages"][-1]["content"] if framework == "langgraph" \
        else result.output
    assert (result.status, output) == (Status.COMPLETED, "All done.")
    assert result.budget_exceeded is None and len(LOOKUPS) == 3
    assert result.token_usage is not None and result.token_usage.total_tokens == 60


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_calls_running_beside_the_one_refused_finish_first(
    runtime: AgentRuntime, framework: str
) -> None:
    DELAY["seconds"] = 0.3
    at_once = [[("lookup", {"order": f"A-{i}"}) for i in range(3)]]
    agent = scripted_agent(framework, at_once, [lookup])
    result = runtime.run(agent, "Where are my orders?", budget=Budget(max_tool_calls=2))
    assert result.budget_exceeded is not None
    assert result.budget_exceeded.budget == "max_tool_calls"
    assert len(LOOKUPS) == 2  # the third never started; the two that had were not cut off
    assert sorted(c.status for c in result.tool_calls) == ["done", "done", "not_run"]


def test_a_runs_budget_overrides_the_runtime_default_field_by_field(database_url: str) -> None:
    with AgentRuntime(database_url, budget=Budget(max_steps=2, max_tool_calls=1)) as runtime:
        agent = scripted_agent("openai", THREE_LOOKUPS, [lookup])
        default = runtime.run(agent, "go")
        assert default.budget_exceeded is not None
        assert default.budget_exceeded.budget == "max_steps"
        wider = runtime.run(agent, "go", budget=Budget(max_steps=100))
        assert wider.budget_exceeded is not None
        assert wider.budget_exceeded.budget == "max_tool_calls"  # the default still holds
        stored = loads(runtime.store.execution(wider.execution_id).budget)
    assert stored == {"max_steps": 100, "max_tool_calls": 1}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_resumed_run_keeps_its_budget_and_what_it_used(
    database_url: str, framework: str
) -> None:
    plan = [("lookup", {"order": "A-0"}), ("send_reply", {"text": "Shipped."}),
            ("lookup", {"order": "A-1"})]
    agent = scripted_agent(framework, plan, [lookup, send_reply])
    started = time.monotonic()
    with AgentRuntime(database_url, require_approval=["send_reply"],
                      auto_resume=False) as runtime:
        waiting = runtime.run(agent, "go", budget=Budget(max_tool_calls=2, max_seconds=30))
    assert waiting.status is Status.WAITING
    time.sleep(1.0)  # waiting for a human is not running: it does not count
    # Another process, whose runtime has no budget of its own, resumes it.
    with AgentRuntime(database_url, auto_resume=False) as other:
        AgentHandle(waiting.execution_id, runtime=other).approve()
        done = other.resume(waiting.execution_id, agent)
        run_seconds = other.store.execution(waiting.execution_id).run_seconds
    elapsed = time.monotonic() - started
    assert done.status is Status.FAILED
    assert done.budget_exceeded == BudgetExceeded(
        budget="max_tool_calls", limit=2, used=2, next_step="the tool call lookup")
    assert LOOKUPS == ["A-0"] and REPLIES == ["Shipped."]  # the journaled lookup not again
    assert 0 < run_seconds < elapsed - 1.0


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_nobody_is_asked_to_approve_a_call_the_budget_has_no_room_for(
    database_url: str, framework: str
) -> None:
    plan = [("lookup", {"order": "A-0"}), ("send_reply", {"text": "Shipped."})]
    agent = scripted_agent(framework, plan, [lookup, send_reply])
    with AgentRuntime(database_url, require_approval=["send_reply"]) as runtime:
        result = runtime.run(agent, "go", budget=Budget(max_tool_calls=1))
        assert runtime.store.approvals(result.execution_id) == []
    assert result.status is Status.FAILED and result.pending_approvals == []
    assert result.budget_exceeded is not None
    assert result.budget_exceeded.next_step == "the tool call send_reply"


def test_resume_with_a_budget_replaces_the_runs_limits(database_url: str) -> None:
    plan = [("send_reply", {"text": "Shipped."}), ("lookup", {"order": "A-1"})]
    agent = scripted_agent("openai", plan, [lookup, send_reply])
    with AgentRuntime(database_url, require_approval=["send_reply"],
                      auto_resume=False) as runtime:
        waiting = runtime.run(agent, "go", budget=Budget(max_tool_calls=1, max_steps=50))
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id, budget=Budget(max_tool_calls=5))
        stored = loads(runtime.store.execution(waiting.execution_id).budget)
    assert done.status is Status.COMPLETED and LOOKUPS == ["A-1"]
    assert stored == {"max_tool_calls": 5, "max_steps": 50}


def test_budget_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive number"):
        Budget(max_steps=0)
    with pytest.raises(ValueError, match="positive number"):
        Budget(max_seconds=-1.0)



@pytest.mark.parametrize(("limits", "error"), [
    ({"max_tokens": "10"}, TypeError), ({"max_steps": 2.5}, TypeError),
    ({"max_seconds": float("inf")}, ValueError), ({"max_steps": 0}, ValueError),
    ({"max_tool_calls": True}, TypeError),
])
def test_a_limit_that_is_no_positive_count_is_refused_where_it_is_given(
        limits: dict[str, Any], error: type[Exception]) -> None:
    """A string once passed, and failed mid-run with a comparison of str and int."""
    with pytest.raises(error, match="a limit is a positive"):
        Budget(**limits)
    assert Budget(max_seconds=1.5, max_steps=3).max_seconds == 1.5


def test_a_stop_inside_an_agent_tool_lets_the_calls_beside_it_finish_first(
        runtime: AgentRuntime) -> None:
    """The budget runs out in the nested run of an agent used as a tool, while a call of the
    outer turn is still running: that call finishes and its result is journaled before the
    run stops (it was cut off, so it would have run again on a resume)."""
    import asyncio

    from agents import Agent, function_tool

    from scripted import ScriptedModel, call

    sent: list[str] = []

    @function_tool
    async def send(text: str) -> str:
        """Send a message."""
        await asyncio.sleep(0.2)
        sent.append(text)
        return "sent"

    @function_tool
    def get_invoice(invoice: str) -> str:
        """Look an invoice up."""
        return f"{invoice}: $99"

    def script(agent: str, outputs: dict[str, str]) -> list[Any]:
        if agent == "billing":
            return [call("get_invoice", f"g{len(outputs)}", invoice=f"INV-{len(outputs)}")]
        return [call("send", "s1", text="hi"), call("billing_tool", "b1", input="look")]

    model = ScriptedModel(script)
    billing = Agent(name="billing", instructions="billing:", model=model, tools=[get_invoice])
    boss = Agent(name="boss", instructions="boss:", model=model, tools=[
        send, billing.as_tool(tool_name="billing_tool", tool_description="Billing.")])
    result = runtime.run(boss, "go", budget=Budget(max_tool_calls=3))
    assert result.status is Status.FAILED and result.budget_exceeded is not None
    assert sent == ["hi"]
    assert [(c.name, c.status) for c in result.tool_calls if c.name == "send"] == [
        ("send", "done")]
