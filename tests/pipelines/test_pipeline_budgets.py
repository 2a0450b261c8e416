"""A pipeline's budget caps all its stages together: each stage starts with what the pipeline
has left, and a stage that runs out of it stops the pipeline with the reason a single agent
gets; parallel branches each start with the rest, and the pipeline stops before its next stage
once they went past it."""

from __future__ import annotations

import pytest

import keel
from keel import AgentRuntime, Budget, BudgetExceeded, Status
from keel.runtime._json import loads
from three_frameworks import TOKENS_PER_TURN, scripted_agent

LOOKUPS: list[str] = []


def lookup(order: str) -> str:
    """Look an order up."""
    LOOKUPS.append(order)
    return f"{order}: shipped"


def looker(framework: str, name: str, lookups: int) -> object:
    """An agent of `framework` that looks `lookups` orders up, one a turn, then answers."""
    plan = [("lookup", {"order": f"{name}-{i}"}) for i in range(lookups)]
    return scripted_agent(framework, plan, [lookup], name=name)


@pytest.fixture(autouse=True)
def _reset() -> None:
    LOOKUPS.clear()


def stage_rows(runtime: AgentRuntime, execution_id: str) -> list[tuple[str, object, object]]:
    """(agent, status, budget) of the pipeline's stage executions, in order."""
    rows = sorted((r for r in runtime.store.executions(limit=100)
                   if r.parent_id == execution_id), key=lambda r: r.id)
    return [(r.agent_name, r.status, loads(r.budget)) for r in rows]


def test_a_pipelines_budget_caps_its_stages_together(runtime: AgentRuntime) -> None:
    pipeline = keel.agent(looker("openai", "finder", 2)) >> looker("langgraph", "checker", 2) \
        >> looker("adk", "replier", 0)
    result = runtime.run(pipeline, "Where are my orders?", budget=Budget(max_tool_calls=3))
    assert result.status is Status.FAILED
    exceeded = BudgetExceeded(budget="max_tool_calls", limit=3, used=3,
                              next_step="the tool call lookup")
    assert result.budget_exceeded == exceeded  # as a single agent's, counted for the pipeline
    assert result.error == exceeded.message
    assert [e.budget_exceeded for e in result.events if e.type == "error"] == [exceeded]
    assert LOOKUPS == ["finder-0", "finder-1", "checker-0"]
    # Each stage started with what the pipeline had left; the last one never started.
    assert stage_rows(runtime, result.execution_id) == [
        ("finder", "COMPLETED", {"max_tool_calls": 3}),
        ("checker", "FAILED", {"max_tool_calls": 1})]


def test_the_runtimes_default_budget_caps_pipelines_too(database_url: str) -> None:
    pipeline = keel.agent(looker("openai", "finder", 1)) >> looker("openai", "checker", 1)
    with AgentRuntime(database_url, budget=Budget(max_steps=4)) as runtime:
        result = runtime.run(pipeline, "go")  # model, lookup, model; model, (lookup)
        assert result.budget_exceeded == BudgetExceeded(
            budget="max_steps", limit=4, used=4, next_step="the tool call lookup")
        assert [row[2] for row in stage_rows(runtime, result.execution_id)] == [
            {"max_steps": 4}, {"max_steps": 1}]
        # A count used up exactly still lets a stage that needs none of it finish.
        done = runtime.run(keel.agent(looker("openai", "finder", 1)) >> looker(
            "adk", "replier", 0), "go", budget=Budget(max_steps=10, max_tool_calls=1))
        assert done.status is Status.COMPLETED, done.error
        assert stage_rows(runtime, done.execution_id)[1] == (
            "replier", "COMPLETED", {"max_steps": 7, "max_tool_calls": 0})


def test_tokens_a_stage_went_past_stop_the_pipeline_before_the_next_stage(
    runtime: AgentRuntime
) -> None:
    # The first stage's last turn crosses the limit: it completes, as a single agent does.
    pipeline = keel.agent(looker("openai", "finder", 2)) >> looker("adk", "replier", 0)
    result = runtime.run(pipeline, "go", budget=Budget(max_tokens=40))
    assert result.budget_exceeded == BudgetExceeded(
        budget="max_tokens", limit=40, used=3 * TOKENS_PER_TURN,
        next_step="the stage replier")
    assert [row[:2] for row in stage_rows(runtime, result.execution_id)] == [
        ("finder", "COMPLETED")]


def test_parallel_branches_share_what_is_left_and_are_added_up_after(
    runtime: AgentRuntime
) -> None:
    branches = keel.parallel(looker("openai", "left", 2), looker("langgraph", "right", 2))
    pipeline = keel.agent(looker("adk", "first", 0)) >> branches >> looker("openai", "last", 0)
    result = runtime.run(pipeline, "go", budget=Budget(max_tool_calls=3))
    # Each branch started with the 3 tool calls left; together they made 4.
    assert sorted(LOOKUPS) == ["left-0", "left-1", "right-0", "right-1"]
    parallel_id = f"{result.execution_id}.1"
    assert stage_rows(runtime, parallel_id) == [
        ("left", "COMPLETED", {"max_tool_calls": 3}),
        ("right", "COMPLETED", {"max_tool_calls": 3})]
    assert result.budget_exceeded == BudgetExceeded(
        budget="max_tool_calls", limit=3, used=4, next_step="the stage last")
    assert [row[0] for row in stage_rows(runtime, result.execution_id)] == [
        "first", "parallel(left, right)"]
