"""From a real run to a regression test: events_from and export_test."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import agents_as_tools
import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent

from keel import AgentHandle, AgentResult, AgentRuntime, KeelError, Status
from keel.testing import MockEvent, MockScriptError, events_from, expect, export_test, mock_run
from scripted import ScriptedModel, call, say

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
TRIAGE = {"openai": ("examples.support_triage.agents", "triage_agent"),
          "langgraph": ("examples.support_triage.graph", "triage_graph"),
          "adk": ("examples.support_triage.adk_agents", "triage_agent")}


@pytest.fixture
def runtime(database_url: str) -> AgentRuntime:
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        yield runtime


def _real_run(runtime: AgentRuntime, *, approve: bool, agent: Any = triage_agent) -> AgentResult:
    """The demo's ticket on the example's own scripted support model, each pause decided by a
    reviewer."""
    result = runtime.run(agent, TICKET)
    while result.status is Status.WAITING:
        handle = AgentHandle(result.execution_id, runtime=runtime)
        if approve:
            handle.approve(reviewer="dana")
        else:
            handle.reject("Refunds need a manager this week.")
        result = runtime.resume(result.execution_id)
    return result


def _calls(result: AgentResult) -> list[tuple[str, dict[str, object], object, str]]:
    return [(c.name, c.args, c.result, c.status) for c in result.tool_calls]


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "rejected"])
def test_the_script_of_a_real_run_reproduces_it(runtime: AgentRuntime, approve: bool) -> None:
    real = _real_run(runtime, approve=approve)
    backend.REFUNDS.clear()
    script = events_from(real.execution_id, runtime=runtime)
    assert script[0] == MockEvent.handoff("billing_specialist")
    assert (MockEvent.approve() if approve else
            MockEvent.reject("Refunds need a manager this week.")) in script
    replay = mock_run(triage_agent, TICKET, events=script)
    assert replay.status is Status.COMPLETED
    assert replay.output == real.output
    assert _calls(replay) == _calls(real)
    assert backend.REFUNDS == []  # the journaled results were supplied: no tool ran again


def test_an_adk_runs_approved_transfer_replays_with_its_decision(database_url: str) -> None:
    from examples.support_triage.adk_agents import triage_agent as adk_triage

    with AgentRuntime(database_url, require_approval=["transfer_to_agent", "process_refund"],
                      auto_resume=False) as gated:
        result = gated.run(adk_triage, TICKET)
        while result.status is Status.WAITING:  # the transfer, then the refund
            AgentHandle(result.execution_id, runtime=gated).approve(reviewer="dana")
            result = gated.resume(result.execution_id)
        script = events_from(result.execution_id, runtime=gated)
    at = script.index(MockEvent.handoff("billing_specialist"))
    assert script[at + 1] == MockEvent.approve()  # found by the handoff's call id
    replay = mock_run(adk_triage, TICKET, events=script,
                      require_approval=["transfer_to_agent", "process_refund"])
    assert (replay.status, replay.output) == (Status.COMPLETED, result.output)


def test_without_tool_results_the_real_tools_run_again(runtime: AgentRuntime) -> None:
    real = _real_run(runtime, approve=True)
    backend.REFUNDS.clear()
    script = events_from(real.execution_id, runtime=runtime, tool_results=False)
    assert all(event.type != "tool_result" for event in script)
    expect(mock_run(triage_agent, TICKET, events=script)).completed().approved("process_refund")
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]


def test_an_undecided_pause_becomes_waiting(runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    script = events_from(waiting.execution_id, runtime=runtime)
    assert script[-1] == MockEvent.waiting()
    assert mock_run(triage_agent, TICKET, events=script).status is Status.WAITING


# SQLite only, to save ~4 s: the exported module runs on mock_run, whatever store the run
# came from, and export_test reads from both stores in the tests above and below.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_exported_test_passes_against_the_same_agent(runtime: AgentRuntime,
                                                         tmp_path: Path) -> None:
    real = _real_run(runtime, approve=True)
    path = tmp_path / "test_exported.py"
    source = export_test(real.execution_id, path, runtime=runtime)
    assert "from examples.support_triage.agents import triage_agent" in source
    assert ".output_equals(" in source
    _passes(path)


def _exported_test_passes(execution_id: str, runtime: AgentRuntime, tmp_path: Path) -> None:
    """The test `export_test` writes for the execution passes, run as `_passes` runs it."""
    path = tmp_path / "test_exported.py"
    export_test(execution_id, path, runtime=runtime)
    _passes(path)


def _passes(path: Path) -> None:
    """Run the exported test module at `path` in a fresh interpreter: it passes. It imports
    agents from where these tests find them: the checkout, tests/ and this directory."""
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        cwd=path.parent, capture_output=True, text=True, timeout=120,
        env={**_env(), "PYTHONPATH": os.pathsep.join(map(str, [ROOT, ROOT / "tests", HERE]))},
    )
    assert child.returncode == 0, child.stdout + child.stderr
    assert "1 passed" in child.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("framework", list(TRIAGE))
def test_an_exported_run_gated_by_the_runtimes_rules_is_gated_in_the_replay(
    database_url: str, framework: str, tmp_path: Path,
) -> None:
    module, name = TRIAGE[framework]
    agent = getattr(importlib.import_module(module), name)
    with AgentRuntime(database_url, require_approval=["get_invoice"],
                      auto_resume=False) as gated:
        real = _real_run(gated, approve=True, agent=agent)
        path = tmp_path / "test_exported.py"
        source = export_test(real.execution_id, path, runtime=gated)
    assert real.status is Status.COMPLETED, real.error
    # Both calls waited: one for the runtime's rule, one for its tool's flag.
    assert "events=EVENTS, require_approval=['get_invoice', 'process_refund'])" in source
    _passes(path)


# ADK's own AgentTool builds its Runner with the argument ADK itself deprecates.
@pytest.mark.filterwarnings("ignore:The `plugins` argument is deprecated")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("framework", ["openai", "adk"])
def test_an_agent_called_as_a_tool_runs_again_on_its_own_turns(
    runtime: AgentRuntime, framework: str, tmp_path: Path,
) -> None:
    boss = getattr(agents_as_tools, f"{framework}_boss")
    real = _real_run(runtime, approve=True, agent=boss)  # the refund waits inside the tool
    assert real.status is Status.COMPLETED, real.error
    backend.REFUNDS.clear()
    # The agent tool's result is not supplied, even with the other tools': its agent answers
    # on its turns, marked off from the boss's, and the real tools it calls run again.
    script = events_from(real.execution_id, runtime=runtime, tool_results=False)
    turns = [e.agent for e in script if e.type == "agent_turn"]
    assert turns == ["billing_specialist", "boss"]
    assert all(e.type != "tool_result" for e in script)
    replay = mock_run(boss, TICKET, events=script)
    assert (replay.status, replay.output) == (Status.COMPLETED, real.output)
    expect(replay).approved("process_refund")
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]
    _exported_test_passes(real.execution_id, runtime, tmp_path)


@pytest.mark.filterwarnings("ignore:The `plugins` argument is deprecated")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("framework", ["openai", "adk"])
def test_a_run_waiting_inside_an_agent_tool_exports_a_test_that_waits_there(
    runtime: AgentRuntime, framework: str, tmp_path: Path,
) -> None:
    boss = getattr(agents_as_tools, f"{framework}_boss")
    waiting = runtime.run(boss, TICKET)
    assert [(p.tool_name, p.agent) for p in waiting.pending_approvals] == [
        ("process_refund", "billing_specialist")]
    # The billing specialist's turns follow the boss's call of it, up to the gated refund.
    script = events_from(waiting.execution_id, runtime=runtime)
    assert [e.type for e in script if e.type != "thinking"][:2] == ["tool_call", "agent_turn"]
    assert script[-2:] == [MockEvent.tool_call("process_refund", {
        "invoice_id": "INV-8821", "reason": "Duplicate charge"}), MockEvent.waiting()]
    replay = mock_run(boss, TICKET, events=script)
    assert replay.status is Status.WAITING
    assert [(p.tool_name, p.agent) for p in replay.pending_approvals] == [
        ("process_refund", "billing_specialist")]
    _exported_test_passes(waiting.execution_id, runtime, tmp_path)


@pytest.mark.filterwarnings("ignore:The `plugins` argument is deprecated")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("framework", ["openai", "adk"])
@pytest.mark.parametrize("approve", [True, False], ids=["approved", "rejected"])
def test_a_decision_inside_an_agent_tool_is_replayed_with_the_agents_turns(
    runtime: AgentRuntime, tmp_path: Path, framework: str, approve: bool,
) -> None:
    boss = getattr(agents_as_tools, f"{framework}_boss")
    real = _real_run(runtime, approve=approve, agent=boss)
    assert real.status is Status.COMPLETED, real.error
    backend.REFUNDS.clear()
    script = events_from(real.execution_id, runtime=runtime)
    assert (MockEvent.approve() if approve else
            MockEvent.reject("Refunds need a manager this week.")) in script
    assert MockEvent.agent_turn("boss") in script  # the boss answers again after the tool
    replay = mock_run(boss, TICKET, events=script)
    assert (replay.status, replay.output) == (Status.COMPLETED, real.output)
    assert _calls(replay) == _calls(real)
    assert backend.REFUNDS == []
    _exported_test_passes(real.execution_id, runtime, tmp_path)


def _asks_twice(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "echo_tool" in outputs:
        return [say("Both heard.")]
    return [call("echo_tool", "e1", input="one"), call("echo_tool", "e2", input="two")]


echo = Agent(name="echo", instructions="echo:",
             model=ScriptedModel(lambda agent, outputs: [say("heard")]))
twin_boss = Agent(name="twin_boss", instructions="twin_boss:", model=ScriptedModel(_asks_twice),
                  tools=[echo.as_tool(tool_name="echo_tool", tool_description="Echo.")])


def test_agent_tools_called_together_cannot_be_scripted(runtime: AgentRuntime) -> None:
    real = runtime.run(twin_boss, "Echo twice.")
    assert real.status is Status.COMPLETED, real.error
    with pytest.raises(MockScriptError, match=r"'twin_boss' called the agent tools \['echo_tool', "
                       r"'echo_tool'\] together"):
        export_test(real.execution_id, runtime=runtime)


@pytest.mark.parametrize("tool_results", [True, False], ids=["supplied", "run_again"])
def test_a_graphs_script_hands_off_and_ends_with_the_models_answer(
    runtime: AgentRuntime, tool_results: bool,
) -> None:
    from examples.support_triage.graph import triage_graph

    real = _real_run(runtime, approve=True, agent=triage_graph)
    backend.REFUNDS.clear()
    script = events_from(real.execution_id, runtime=runtime, tool_results=tool_results)
    answer = real.output["messages"][-1]["content"]
    # The handoff is the model's transfer_to_ call; the graph's node starts are no reasoning.
    assert script[0] == MockEvent.handoff("billing_specialist")
    assert script[-1] == MockEvent.done(answer)
    assert all(event.type != "thinking" for event in script)
    replay = mock_run(triage_graph, TICKET, events=script)
    assert replay.status is Status.COMPLETED
    assert replay.output["messages"][-1]["content"] == answer
    assert [(c.name, c.args) for c in replay.tool_calls] == \
        [(c.name, c.args) for c in real.tool_calls]
    assert len(backend.REFUNDS) == (0 if tool_results else 1)


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_a_supplied_result_answers_the_replays_own_call(runtime: AgentRuntime) -> None:
    from examples.support_triage.graph import SupportChatModel, get_account
    from langgraph.prebuilt import create_react_agent

    # The prebuilt agent refuses a history whose tool call has no ToolMessage of its id.
    agent = create_react_agent(SupportChatModel(), [get_account], name="accounts")
    real = runtime.run(agent, "Is my plan active?")
    replay = mock_run(agent, "Is my plan active?",
                      events=events_from(real.execution_id, runtime=runtime))
    assert replay.status is Status.COMPLETED, replay.error
    assert replay.output["messages"][-1]["content"] == real.output["messages"][-1]["content"]


@input_guardrail
def no_refund_talk(ctx: RunContextWrapper[Any], agent: Agent[Any],
                   text: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info="refunds go to billing",
                                   tripwire_triggered="refund" in str(text))


@output_guardrail
def polite(ctx: RunContextWrapper[Any], agent: Agent[Any],
           output: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info="not polite",
                                   tripwire_triggered="please" not in str(output))


@function_tool(failure_error_function=None)
def charge_card(amount: int) -> str:
    """Charge the customer's card."""
    raise RuntimeError("card declined")


FAILING = {
    "input_guardrail": Agent(name="front_desk", instructions="front_desk:",
                             model=ScriptedModel(lambda agent, outputs: [say("Sure.")]),
                             input_guardrails=[no_refund_talk]),
    "output_guardrail": Agent(name="terse", instructions="terse:",
                              model=ScriptedModel(lambda agent, outputs: [say("No.")]),
                              output_guardrails=[polite]),
    "tool": Agent(name="cashier", instructions="cashier:", tools=[charge_card],
                  model=ScriptedModel(lambda agent, outputs: [call("charge_card", "c1",
                                                                   amount=5)])),
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("failed_in", list(FAILING))
def test_a_run_that_failed_after_its_model_answered_fails_there_again(
    runtime: AgentRuntime, failed_in: str,
) -> None:
    agent = FAILING[failed_in]
    real = runtime.run(agent, "A refund, now.")
    assert real.status is Status.FAILED
    script = events_from(real.execution_id, runtime=runtime)
    assert all(event.type != "error" for event in script)  # no model call failed
    replay = mock_run(agent, "A refund, now.", events=script)
    assert (replay.status, replay.error) == (Status.FAILED, real.error)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_exported_pipeline_ends_each_stage_with_its_output(runtime: AgentRuntime,
                                                             tmp_path: Path) -> None:
    from examples.support_pipeline.cross_framework import TICKET as SLOW_API_TICKET
    from examples.support_pipeline.cross_framework import pipeline

    real = runtime.run(pipeline, SLOW_API_TICKET)
    assert real.status is Status.COMPLETED
    script = events_from(real.execution_id, runtime=runtime)
    assert [event.type for event in script].count("done") == 3  # one per stage
    assert all(event.type != "handoff" for event in script)  # the pipeline's, not a model's
    _exported_test_passes(real.execution_id, runtime, tmp_path)


def test_an_agent_without_an_importable_name_cannot_be_exported(runtime: AgentRuntime) -> None:
    local = triage_agent.clone(name="local_triage")
    result = runtime.run(local, "hello")
    with pytest.raises(KeelError, match="define the agent at module level"):
        export_test(result.execution_id, runtime=runtime)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_agent_tool_named_like_its_caller_gets_its_own_turns(
    runtime: AgentRuntime, tmp_path: Path,
) -> None:
    real = runtime.run(agents_as_tools.openai_desk, TICKET)
    assert (real.status, real.output) == (Status.COMPLETED, "desk: filed as TKT-7")
    script = events_from(real.execution_id, runtime=runtime)
    # Both agents are "desk": the turns are marked off where the clerk starts and ends.
    replay = mock_run(agents_as_tools.openai_desk, TICKET, events=script)
    assert [e.type for e in script if e.type != "thinking"] == [
        "tool_call", "agent_turn", "message", "agent_turn", "done"]
    assert (replay.status, replay.output) == (Status.COMPLETED, real.output)
    _exported_test_passes(real.execution_id, runtime, tmp_path)


def _review(state: dict[str, Any]) -> dict[str, Any]:
    from langgraph.types import interrupt

    return {"log": [f"reviewed: {interrupt({'send': state['log'][-1]})}"]}


def _review_graph() -> Any:
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class Log(TypedDict):
        log: list[str]

    builder = StateGraph(Log)
    builder.add_node("review", _review)
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    return builder.compile(name="reviewer")


review_graph = _review_graph()  # at module level, so that an exported test imports it


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("decide", "scripted"), [
    (lambda handle: handle.respond("looks good"), MockEvent.respond("looks good")),
    (lambda handle: handle.approve(), MockEvent.approve()),
    (lambda handle: handle.reject("Too curt."), MockEvent.reject("Too curt.")),
], ids=["respond", "approve", "reject"])
@pytest.mark.parametrize("framework", ["adk", "langgraph"])
def test_a_decided_pause_of_the_frameworks_own_is_replayed_where_the_run_paused(
    runtime: AgentRuntime, tmp_path: Path, decide: Any, scripted: MockEvent, framework: str,
) -> None:
    from adk_workflows import reply_flow

    agent, prompt = {"adk": (reply_flow, "late order"),
                     "langgraph": (review_graph, {"log": ["Ships today."]})}[framework]
    waiting = runtime.run(agent, prompt)
    decide(AgentHandle(waiting.execution_id, runtime=runtime))
    real = runtime.resume(waiting.execution_id, agent)
    assert real.status is Status.COMPLETED
    # No model said anything: the decision is the script, and the nodes make the output.
    assert events_from(real.execution_id, runtime=runtime) == [scripted]
    replay = mock_run(agent, prompt, events=[scripted])
    assert (replay.status, replay.output) == (Status.COMPLETED, real.output)
    if scripted.type == "respond":  # the exported code of the others is tested above
        _exported_test_passes(real.execution_id, runtime, tmp_path)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_workflow_whose_last_node_answers_replays_its_agents_own_answer(
    runtime: AgentRuntime, tmp_path: Path,
) -> None:
    from adk_workflows import refunds_flow

    real = _real_run(runtime, approve=True, agent=refunds_flow)
    assert (real.status, real.output) == (Status.COMPLETED, "report: Refunded INV-1.")
    script = events_from(real.execution_id, runtime=runtime)
    # The clerk's last message is its answer (the report node's output is the workflow's).
    assert [e for e in script if e.type != "thinking"] == [
        MockEvent.tool_call("refund", {"invoice": "INV-1"}), MockEvent.approve(),
        MockEvent.tool_result("refund", {"refunded": "INV-1"}),
        MockEvent.message("Refunded INV-1.")]
    replay = mock_run(refunds_flow, TICKET, events=script)
    assert (replay.status, replay.output) == (Status.COMPLETED, real.output)
    _exported_test_passes(real.execution_id, runtime, tmp_path)
