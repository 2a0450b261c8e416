"""ADK runs things in parallel: the branches of a ParallelAgent (in a TaskGroup, so a pause
reaches keel inside an exception group, and the run must wait, not fail), and the function
calls of one model turn (each in a task of its own: the gated ones wait together)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator

import pytest
from google.adk.agents import LlmAgent, ParallelAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.function_tool import FunctionTool
from google.genai import types

import keel
from adk_turns import TurnsLlm
from keel import AgentHandle, AgentRuntime, Status

ACTED: list[str] = []


def act(branch: str) -> dict[str, str]:
    """Do the branch's work."""
    ACTED.append(branch)
    return {"done": branch}


class _ActOnceLlm(BaseLlm):
    """Calls `act` for its branch, then says it is finished."""

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        acted = any(part.function_response for content in llm_request.contents
                    for part in content.parts or [])
        part = types.Part(text=f"{self.model} finished") if acted else types.Part(
            function_call=types.FunctionCall(name="act", args={"branch": self.model},
                                             id=f"call_{self.model}"))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def _branches() -> ParallelAgent:
    gated = FunctionTool(act, require_confirmation=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # in favour of Workflow
        return ParallelAgent(name="both", sub_agents=[
            LlmAgent(name=name, model=_ActOnceLlm(model=name), instruction="Act.",
                     tools=[gated]) for name in ("left", "right")])


def test_gated_calls_in_parallel_branches_wait_and_each_runs_once_approved(
    runtime: AgentRuntime,
) -> None:
    ACTED.clear()
    agent = _branches()
    result = runtime.run(agent, "go")  # raised an exception group of keel's pause before
    decided = []
    while result.status is Status.WAITING:
        (pending,) = result.pending_approvals
        decided.append(pending.args["branch"])
        assert sorted(ACTED) == sorted(decided[:-1])  # nothing runs before its approval
        AgentHandle(result.execution_id, runtime=runtime).approve()
        result = runtime.resume(result.execution_id, agent)
    assert result.status is Status.COMPLETED
    assert sorted(decided) == sorted(ACTED) == ["left", "right"]
    assert sorted(e.content for e in result.events if e.type == "message") == [
        "left finished", "right finished"]


def refund(invoice: str) -> dict[str, str]:
    """Refund an invoice."""
    ACTED.append(f"refund {invoice}")
    return {"refunded": invoice}


def notify(customer: str) -> dict[str, str]:
    """Tell the customer."""
    ACTED.append(f"notify {customer}")
    return {"notified": customer}


def _refund_and_notify() -> LlmAgent:
    """An agent whose first turn calls `refund` (gated with @keel.tool) and `notify`."""
    model = TurnsLlm(turns=[[
        {"name": "refund", "args": {"invoice": "INV-1"}, "id": "call_refund"},
        {"name": "notify", "args": {"customer": "dana"}, "id": "call_notify"}], "Done."],
        asked=[])
    return LlmAgent(name="clerk", model=model, instruction="Act.",
                    tools=[keel.tool(approval_required=True)(FunctionTool(refund)),
                           FunctionTool(notify)])


def test_two_gated_calls_of_one_turn_wait_together_and_run_once_on_one_resume(
    database_url: str,
) -> None:
    ACTED.clear()
    agent = _refund_and_notify()
    with AgentRuntime(database_url, require_approval=["notify"]) as runtime:
        waiting = runtime.run(agent, "Refund INV-1 and tell dana")
        assert waiting.status is Status.WAITING
        assert sorted(p.call_id for p in waiting.pending_approvals) == [
            "call_notify", "call_refund"]  # one pause asked about both
        assert ACTED == []
        AgentHandle(waiting.execution_id, runtime=runtime).approve()  # decides both
        done = runtime.resume(waiting.execution_id, agent)
    assert (done.status, done.output) == (Status.COMPLETED, "Done.")
    assert sorted(ACTED) == ["notify dana", "refund INV-1"]
    assert agent.model.asked == [0, 1]  # the journaled turn was not asked again


def test_an_ungated_call_beside_a_gated_one_runs_once_before_the_pause(
    runtime: AgentRuntime,
) -> None:
    ACTED.clear()
    agent = _refund_and_notify()
    waiting = runtime.run(agent, "Refund INV-1 and tell dana")
    assert [p.call_id for p in waiting.pending_approvals] == ["call_refund"]
    assert ACTED == ["notify dana"]  # it ran beside the gated call, and was journaled
    assert [e.call_id for e in waiting.events if e.type == "tool_result"] == ["call_notify"]
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, agent)
    assert done.status is Status.COMPLETED
    assert ACTED == ["notify dana", "refund INV-1"]  # not run again on resume


def test_one_of_two_gated_calls_rejected_and_the_other_approved(database_url: str) -> None:
    ACTED.clear()
    agent = _refund_and_notify()
    with AgentRuntime(database_url, require_approval=["notify"]) as runtime:
        waiting = runtime.run(agent, "Refund INV-1 and tell dana")
        handle = AgentHandle(waiting.execution_id, runtime=runtime)
        handle.reject("Not this one.", call_id="call_refund")
        handle.approve("call_notify")
        done = runtime.resume(waiting.execution_id, agent)
    assert done.status is Status.COMPLETED
    assert ACTED == ["notify dana"]
    results = {c.call_id: c.result for c in done.tool_calls}
    assert "Not this one." in results["call_refund"]
    assert results["call_notify"] == {"notified": "dana"}


LOOKED_UP: list[str] = []


def lookup(customer: str) -> dict[str, str]:
    """Look up a customer."""
    LOOKED_UP.append(customer)
    return {"customer": customer, "plan": "free"}


class _ResearcherLlm(BaseLlm):
    """Looks up the customer its request names, then reports on them."""

    model: str = "researcher"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        who = llm_request.contents[0].parts[0].text or ""
        found = [part.function_response.response for content in llm_request.contents
                 for part in content.parts or [] if part.function_response]
        part = types.Part(text=f"{who} is on {found[0]['plan']}") if found else types.Part(
            function_call=types.FunctionCall(name="lookup", args={"customer": who},
                                             id=f"look_{who}"))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def _boss(*calls: dict[str, object]) -> LlmAgent:
    """An agent whose first turn makes `calls`: the researcher (an AgentTool whose lookups
    are gated) and a gated refund."""
    from google.adk.tools.agent_tool import AgentTool

    researcher = LlmAgent(name="researcher", description="Researches a customer.",
                          model=_ResearcherLlm(), instruction="Research.",
                          tools=[keel.tool(approval_required=True)(FunctionTool(lookup))])
    return LlmAgent(name="boss", instruction="Act.", model=TurnsLlm(
        turns=[list(calls), "Done."], asked=[]), tools=[
            AgentTool(agent=researcher), keel.tool(approval_required=True)(FunctionTool(refund))])


_RESEARCH_BOB = {"name": "researcher", "args": {"request": "BOB"}, "id": "ask_bob"}
_RESEARCH_EVE = {"name": "researcher", "args": {"request": "EVE"}, "id": "ask_eve"}
_REFUND = {"name": "refund", "args": {"invoice": "INV-1"}, "id": "call_refund"}


# ADK's own AgentTool builds its Runner with the argument ADK itself deprecates.
@pytest.mark.filterwarnings("ignore:The `plugins` argument is deprecated")
@pytest.mark.parametrize(("calls", "asked"), [
    ((_RESEARCH_BOB, _REFUND), [("lookup", {"customer": "BOB"}), ("refund", {"invoice": "INV-1"})]),
    ((_RESEARCH_BOB, _RESEARCH_EVE),
     [("lookup", {"customer": "BOB"}), ("lookup", {"customer": "EVE"})]),
], ids=["agent-tool-beside-a-gated-call", "two-agent-tools"])
def test_a_call_inside_an_agent_tool_waits_with_the_gated_calls_beside_it(
    runtime: AgentRuntime, calls: tuple[dict[str, object], ...],
    asked: list[tuple[str, dict[str, str]]],
) -> None:
    ACTED.clear()
    LOOKED_UP.clear()
    boss = _boss(*calls)
    waiting = runtime.run(boss, "Act")
    assert waiting.status is Status.WAITING
    # One pause asks about every call the turn is waiting for, in the turn's order.
    assert [(p.tool_name, p.args) for p in waiting.pending_approvals] == asked
    assert ACTED == LOOKED_UP == []
    AgentHandle(waiting.execution_id, runtime=runtime).approve()  # decides them all
    done = runtime.resume(waiting.execution_id, boss)
    assert (done.status, done.output) == (Status.COMPLETED, "Done.")
    types_ = [e.type for e in done.events]
    assert (types_.count("waiting"), types_.count("resumed")) == (len(asked), 1)  # one round
    assert LOOKED_UP == [args["customer"] for name, args in asked if name == "lookup"]
    assert ACTED == (["refund INV-1"] if _REFUND in calls else [])
    assert boss.model.asked == [0, 1]  # the journaled turn was not asked again
