"""Unsafe tools in one process: the intent row, errors that are not doubts, bad declarations.
(Crashes mid-call, with real processes, are in tests/test_in_doubt.py.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypedDict

import pytest
import sqlalchemy
from agents import Agent, function_tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

import keel
from keel import AgentHandle, AgentRuntime, NotInDoubtError, Status
from scripted import ScriptedModel, call, say

CHARGES: list[int] = []


@keel.tool(side_effects="unsafe")
@function_tool
def charge(amount: int) -> str:
    """Charge the card."""
    CHARGES.append(amount)
    raise RuntimeError("card declined")


@keel.tool(approval_required=True)
@function_tool
def escalate(note: str) -> str:
    """Hand the ticket to a human."""
    return "escalated"


def _script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "charge" not in outputs:
        return [call("charge", "c1", amount=30)]
    if "escalate" not in outputs:
        return [call("escalate", "e1", note=outputs["charge"])]
    return [say(f"done: {outputs['charge']}")]


cashier = Agent(name="cashier", instructions="cashier: charge", model=ScriptedModel(_script),
                tools=[charge, escalate])


def test_an_unsafe_tool_that_raised_is_not_in_doubt_and_not_run_again(
        database_url: str) -> None:
    CHARGES.clear()
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(cashier, "charge 30")
        assert waiting.status is Status.WAITING
        step = runtime.store.step(waiting.execution_id, "tool:c1")
        # The SDK turns the error into the tool's result (what the model saw): journaled.
        assert step is not None and step.status == "done" and "error" in str(step.payload)
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
    with AgentRuntime(database_url) as restarted:  # replays the charge from the journal
        result = restarted.resume(waiting.execution_id)
    assert result.status is Status.COMPLETED, result.error
    assert CHARGES == [30]
    assert result.output == "done: An error occurred while running the tool. Please try again."


def test_an_unsafe_call_journals_its_intent_before_it_runs(database_url: str) -> None:
    seen: list[str | None] = []

    @keel.tool(side_effects="unsafe")
    @function_tool
    def ship(order: str) -> str:
        """Ship an order."""
        call_now = keel.current_call()
        assert call_now is not None
        with AgentRuntime(database_url) as other:  # what another process sees meanwhile
            step = other.store.step(call_now.execution_id, f"tool:{call_now.call_id}")
            seen.append(step.status if step else None)
        return "shipped"

    shipper = Agent(name="shipper", instructions="shipper: ship", tools=[ship],
                    model=ScriptedModel(lambda agent, outputs: [say(outputs["ship"])]
                                        if "ship" in outputs else [call("ship", "s1",
                                                                        order="o-7")]))
    with AgentRuntime(database_url) as runtime:
        result = runtime.run(shipper, "ship o-7")
        step = runtime.store.step(result.execution_id, "tool:s1")
    assert result.output == "shipped"
    assert seen == ["intent"] and step is not None and step.status == "done"


def test_resolving_a_run_that_is_not_in_doubt_is_refused(runtime: AgentRuntime) -> None:
    result = runtime.run(cashier, "charge 30")
    with pytest.raises(NotInDoubtError, match="is WAITING, not IN_DOUBT"):
        runtime.handle(result.execution_id).resolve("retry")
    with pytest.raises(ValueError, match="action must be"):
        runtime.handle(result.execution_id).resolve("maybe")  # type: ignore[arg-type]


def test_side_effects_takes_idempotent_or_unsafe() -> None:
    with pytest.raises(ValueError, match="side_effects must be 'idempotent' or 'unsafe'"):
        keel.tool(side_effects="sometimes")  # type: ignore[arg-type]


class Ticket(TypedDict, total=False):
    note: str
    approved: bool


@keel.tool(side_effects="unsafe")
def post_to_bank(amount: int) -> str:
    CHARGES.append(amount)
    raise RuntimeError("bank timeout")


def settle(state: Ticket) -> dict[str, Any]:
    """A node that handles the unsafe call's error itself, then waits for a human. LangGraph
    runs the node again from its start when the human answers: the call must not run again,
    and must fail the same way."""
    try:
        post_to_bank(40)
        note = "posted"
    except Exception as exc:
        note = f"not posted: {exc}"
    return {"note": note, "approved": interrupt({"note": note})}


def _one_node(node: Any) -> StateGraph[Ticket]:
    builder = StateGraph(Ticket)
    builder.add_node(node.__name__, node)
    builder.add_edge(START, node.__name__)
    builder.add_edge(node.__name__, END)
    return builder


def test_an_unsafe_call_that_raised_in_a_node_raises_again_when_the_node_reruns(
        runtime: AgentRuntime) -> None:
    CHARGES.clear()
    waiting = runtime.run(_one_node(settle), {})
    assert waiting.status is Status.WAITING
    step = runtime.store.step(waiting.execution_id, next(
        k for k in runtime.store.steps(waiting.execution_id) if k.startswith("tool:")))
    assert step is not None and step.status == "failed"
    runtime.handle(waiting.execution_id).respond(True)
    result = runtime.handle(waiting.execution_id).join(timeout=30)
    assert result.status is Status.COMPLETED, result.error
    assert CHARGES == [40]
    assert result.output == {"note": "not posted: bank timeout", "approved": True}


def _cut_off_at_the_result(runtime: AgentRuntime, agent: Agent[Any],
                           monkeypatch: pytest.MonkeyPatch) -> str:
    """Run `agent` until the store is lost as the result of its call `s1` commits (the call
    ran; its result never reached the journal); returns the execution's id."""
    record = keel.runtime._execution.Execution.record

    def store_lost_at_the_result(self: Any, step_key: str, **step: Any) -> None:
        if step_key == "tool:s1" and step.get("status", "done") == "done":
            raise keel.StoreUnavailableError("Could not journal a step: the connection is lost")
        record(self, step_key, **step)

    with monkeypatch.context() as patched:
        patched.setattr(keel.runtime._execution.Execution, "record", store_lost_at_the_result)
        with pytest.raises(keel.StoreUnavailableError):
            runtime.run(agent, "ship it", idempotency_key="cut-off")
    execution_id = runtime.store.find_by_idempotency_key("cut-off")
    assert execution_id is not None
    return execution_id


def test_an_unsafe_call_whose_result_could_not_be_journaled_is_in_doubt_not_failed(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store going away as the result commits is keel's failure, not the tool's: the call
    ran, so a resume finds its intent without a result and parks the run IN_DOUBT (it once
    journaled the store's error as the tool's and replayed it, failing the run)."""
    shipped: list[str] = []

    @keel.tool(side_effects="unsafe")
    @function_tool
    def ship(order: str) -> str:
        """Ship an order."""
        shipped.append(order)
        return "shipped"

    shipper = Agent(name="shipper", instructions="shipper: ship", tools=[ship],
                    model=ScriptedModel(lambda agent, outputs: [say(outputs["ship"])]
                                        if "ship" in outputs else [call("ship", "s1",
                                                                        order="o-7")]))
    with AgentRuntime(database_url, auto_resume=False, lease_seconds=0.5) as runtime:
        execution_id = _cut_off_at_the_result(runtime, shipper, monkeypatch)
        step = runtime.store.step(execution_id, "tool:s1")
        assert step is not None and step.status == "intent"
        time.sleep(0.6)  # the lease this process left expires, as a dead process's would
        result = runtime.resume(execution_id)
    assert result.status is Status.IN_DOUBT, result.error
    assert shipped == ["o-7"]


def test_a_call_beside_one_in_doubt_finishes_and_is_journaled_before_the_run_parks(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume that parks IN_DOUBT at an unsafe call lets the calls of the same turn that
    are running beside it finish and journal their results first (it once threw them away,
    so they ran again once the doubt was resolved)."""
    lookups: list[str] = []

    @function_tool
    async def look_up(order: str) -> str:
        """Look an order up."""
        await asyncio.sleep(0.05)
        lookups.append(order)
        return "in stock"

    @keel.tool(side_effects="unsafe")
    @function_tool
    def ship(order: str) -> str:
        """Ship an order."""
        return "shipped"

    def script(agent: str, outputs: dict[str, str]) -> list[Any]:
        if "ship" in outputs:
            return [say(f"{outputs['look_up']}, {outputs['ship']}")]
        return [call("look_up", "l1", order="o-8"), call("ship", "s1", order="o-8")]

    shipper = Agent(name="shipper", instructions="shipper", tools=[look_up, ship],
                    model=ScriptedModel(script))
    with AgentRuntime(database_url, auto_resume=False, lease_seconds=0.5) as runtime:
        execution_id = _cut_off_at_the_result(runtime, shipper, monkeypatch)
        with runtime.store.engine.begin() as connection:  # as if killed before it ended
            connection.execute(sqlalchemy.text(
                "DELETE FROM keel_steps WHERE execution_id = :id AND step_key = 'tool:l1'"),
                {"id": execution_id})
        time.sleep(0.6)  # the lease this process left expires, as a dead process's would
        parked = runtime.resume(execution_id)
        assert parked.status is Status.IN_DOUBT, parked.error
        step = runtime.store.step(execution_id, "tool:l1")
        assert step is not None and step.status == "done"
        ran = len(lookups)
        AgentHandle(execution_id, runtime=runtime).resolve("record", result="shipped")
        result = runtime.resume(execution_id)
    assert (result.status, result.output) == (Status.COMPLETED, "in stock, shipped")
    assert len(lookups) == ran  # the journaled lookup was not run again


SENT: list[str] = []


@keel.tool(side_effects="unsafe")
def send_wire(amount: int) -> str:
    """Asks a human before the money leaves: LangGraph runs the call again from its start
    when the human answers, and only then does it send."""
    if not interrupt({"confirm": amount}):
        return "not sent"
    SENT.append(f"{amount}")
    return "sent"


def wire(state: Ticket) -> dict[str, Any]:
    return {"note": send_wire(70)}


def test_an_unsafe_call_its_framework_paused_runs_again_on_resume_not_in_doubt(
        runtime: AgentRuntime) -> None:
    """A pause is not a crash: the call is neither failed (it once replayed the pause as an
    error) nor in doubt."""
    SENT.clear()
    waiting = runtime.run(_one_node(wire), {})
    assert waiting.status is Status.WAITING and SENT == []
    runtime.handle(waiting.execution_id).respond(True)
    result = runtime.handle(waiting.execution_id).join(timeout=30)
    assert result.status is Status.COMPLETED, result.error
    assert (result.output, SENT) == ({"note": "sent"}, ["70"])
