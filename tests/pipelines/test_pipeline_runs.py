"""Running pipelines: each stage a child execution, outputs handed on, one event stream,
parallel stages, failures, resume and cancel; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from agents import Agent, ModelResponse, Usage, function_tool
from agents.models.interface import Model
from examples.support_pipeline.cross_framework import TICKET, Classification
from examples.support_pipeline.cross_framework import pipeline as support_pipeline
from pipeline_agents import SEEN, Ticket, adk_agent, graph_agent, openai_agent, ticket_graph

import keel
from keel import AgentHandle, AgentNotFoundError, AgentRuntime, Status
from scripted import call, say

shout = openai_agent("shout", str.upper)
whisper = graph_agent("whisper", lambda text: text.lower() + "...")
frame = adk_agent("frame", lambda text: f"[{text}]")
echo = keel.agent(shout) >> whisper >> frame


@pytest.fixture(autouse=True)
def _forget_what_agents_saw() -> None:
    SEEN.clear()


def stages(runtime: AgentRuntime, execution_id: str) -> list[tuple[str, str, str, str]]:
    """(id, agent, framework, status) of the pipeline's stage executions, in order."""
    rows = [r for r in runtime.store.executions(limit=100) if r.parent_id == execution_id]
    return [(r.id, r.agent_name, r.framework, r.status) for r in sorted(rows, key=lambda r: r.id)]


def test_each_stage_is_a_child_execution_given_the_last_ones_output(
    runtime: AgentRuntime
) -> None:
    result = runtime.run(echo, "Hello there")
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "[hello there...]"
    assert result.agent == "shout >> whisper >> frame"
    pid = result.execution_id
    assert stages(runtime, pid) == [
        (f"{pid}.0", "shout", "openai", "COMPLETED"),
        (f"{pid}.1", "whisper", "langgraph", "COMPLETED"),
        (f"{pid}.2", "frame", "adk", "COMPLETED"),
    ]
    assert SEEN == {"shout": ["Hello there"], "whisper": ["HELLO THERE"],
                    "frame": ["hello there..."]}
    # A stage's execution is an execution like any other.
    assert runtime.result(f"{pid}.1").output["messages"][-1]["content"] == "hello there..."


def test_the_pipelines_stream_shows_every_stage_and_a_handoff_at_each_move(
    runtime: AgentRuntime
) -> None:
    streamed = list(runtime.stream(support_pipeline, TICKET))
    stored = runtime.result(streamed[0].execution_id).events
    assert streamed == stored  # live and replayed alike, numbered in the pipeline's sequence
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert [(e.agent, e.target) for e in stored if e.type == "handoff"] == [
        ("classifier", "responder"), ("responder", "escalation_checker")]
    assert [(e.type, e.agent) for e in stored if e.type in ("tool_call", "done")] == [
        ("tool_call", "responder"), ("tool_call", "escalation_checker"),
        ("done", "escalation_checker")]
    # Between two handoffs, the events are the stage's own.
    moves = [i for i, e in enumerate(stored) if e.type == "handoff"]
    assert {e.agent for e in stored[moves[0] + 1:moves[1]]} == {"responder"}
    assert not {"resumed", "approved", "error"} & {e.type for e in stored}
    result = runtime.result(streamed[0].execution_id)
    assert [c.name for c in result.tool_calls] == ["check_service_status", "add_internal_note"]
    assert all(c.status == "done" for c in result.tool_calls)
    # The pipeline's tokens are its stages' (the LangGraph stage's scripted model reports none).
    usages = [runtime.result(f"{result.execution_id}.{i}").token_usage for i in range(3)]
    assert usages[0] and usages[2] and result.token_usage is not None
    for field in ("input_tokens", "output_tokens", "total_tokens"):
        assert getattr(result.token_usage, field) == sum(getattr(u, field) for u in usages if u)


def test_structured_output_reaches_the_next_stage_as_json_text(runtime: AgentRuntime) -> None:
    result = runtime.run(support_pipeline, TICKET)
    classified = runtime.result(f"{result.execution_id}.0").output
    assert isinstance(classified, Classification) and classified.priority == "P1"
    responder_input = json.loads(runtime.store.execution(f"{result.execution_id}.1").input)
    assert Classification.model_validate_json(responder_input) == classified
    # A graph with a messages channel hands on its answer, not its whole conversation.
    draft = json.loads(runtime.store.execution(f"{result.execution_id}.2").input)
    assert draft.startswith("Hi David") and "messages" not in draft


def test_stages_that_declare_a_structure_get_it(runtime: AgentRuntime) -> None:
    tagger = openai_agent("tagger", lambda text: Ticket(customer=text, priority="P1")
                          .model_dump_json(), output_type=Ticket)
    checker = adk_agent("checker", lambda text: f"checked {text}", input_schema=Ticket)
    result = runtime.run(keel.agent(tagger) >> checker >> tagger >> ticket_graph("replier"),
                         "Acme")
    assert result.status is Status.COMPLETED, result.error
    # The ADK agent's input_schema validated the data, which it got as JSON text.
    assert [Ticket.model_validate_json(t) for t in SEEN["checker"]] == [
        Ticket(customer="Acme", priority="P1")]
    # The graph without a messages channel got its input state.
    assert SEEN["replier"] == [repr({"customer": 'checked {"customer":"Acme","priority":"P1"}',
                                     "priority": "P1"})]
    assert result.output == {"customer": 'checked {"customer":"Acme","priority":"P1"}',
                             "priority": "P1", "reply": 'P1 for checked {"customer":"Acme",'
                                                        '"priority":"P1"}'}


def test_a_typed_last_output_comes_back_as_its_type(runtime: AgentRuntime) -> None:
    tagger = openai_agent("tagger", lambda text: Ticket(customer=text, priority="P2")
                          .model_dump_json(), output_type=Ticket)
    result = runtime.run(keel.agent(frame) >> tagger, "acme")
    assert result.output == Ticket(customer="[acme]", priority="P2")
    assert runtime.result(result.execution_id).output == result.output  # rebuilt from the store


def test_an_input_that_does_not_fit_fails_the_pipeline_saying_what_to_do(
    runtime: AgentRuntime
) -> None:
    checker = adk_agent("checker", str.upper, input_schema=Ticket)
    result = runtime.run(keel.agent(shout) >> checker, "not a ticket")
    assert result.status is Status.FAILED
    assert "PipelineError: Stage 'checker' takes input_schema Ticket" in str(result.error)
    assert "output_type" in str(result.error)
    assert [s[1] for s in stages(runtime, result.execution_id)] == ["shout"]


def test_a_failing_stage_fails_the_pipeline_and_no_later_stage_runs(
    runtime: AgentRuntime
) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("the model is down")

    result = runtime.run(keel.agent(shout) >> openai_agent("broken", broken) >> frame, "hi")
    pid = result.execution_id
    assert result.status is Status.FAILED
    assert f"Stage 'broken' failed: RuntimeError: the model is down. Its execution '{pid}.1'" \
        in str(result.error)
    assert [s[1:] for s in stages(runtime, pid)] == [
        ("shout", "openai", "COMPLETED"), ("broken", "openai", "FAILED")]
    assert [e.type for e in result.events][-1] == "error"


def test_parallel_branches_run_on_the_same_input_and_gather_by_name(
    runtime: AgentRuntime
) -> None:
    summary = openai_agent("summary", lambda text: f"summary of {text}")
    fan = keel.parallel(whisper, keel.agent(frame) >> keel.agent(shout, name="loud"))
    result = runtime.run(keel.agent(shout) >> fan >> summary, "Hi")
    assert result.status is Status.COMPLETED, result.error
    assert SEEN["whisper"] == ["HI"] and SEEN["frame"] == ["HI"]
    gathered = {"whisper": "hi...", "frame >> loud": "[HI]"}
    assert result.output == f"summary of {json.dumps(gathered, separators=(',', ':'))}"
    pid = result.execution_id
    assert stages(runtime, pid)[1][1:] == ("parallel(whisper, frame >> loud)", "pipeline",
                                           "COMPLETED")
    assert [s[1] for s in stages(runtime, f"{pid}.1")] == ["whisper", "frame >> loud"]
    assert [s[1] for s in stages(runtime, f"{pid}.1.1")] == ["frame", "loud"]
    assert [(e.agent, e.target) for e in result.events if e.type == "handoff"] == [
        ("shout", "parallel(whisper, frame >> loud)"),
        ("frame", "loud"),  # inside the branch that is a sequence
        ("parallel(whisper, frame >> loud)", "summary")]
    # The branches' own events reach the outer pipeline too (under their agents' own names).
    said = [(e.agent, e.content) for e in result.events if e.type == "message"]
    assert (said[0], said[-1], len(said)) == (("shout", "HI"), ("summary", result.output), 5)
    assert sorted(said[1:4]) == [("frame", "[HI]"), ("shout", "[HI]"), ("whisper", "hi...")]

    alone = runtime.run(keel.parallel(shout, frame), "ok")
    assert alone.output == {"shout": "OK", "frame": "[ok]"}


def test_module_level_functions_run_pipelines(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_DATABASE_URL", database_url)
    monkeypatch.setattr(keel, "_default", None)
    assert keel.run(echo, "a").output == "[a...]"
    assert [e.type for e in keel.stream(echo, "b")][-1] == "done"
    assert keel.start(echo, "c").join(timeout=30).output == "[c...]"
    assert asyncio.run(keel.run_async(echo, "d")).output == "[d...]"
    keel._default_runtime().close()


gated = keel.agent(shout) >> support_pipeline.stages[2].agent  # type: ignore[union-attr]


def test_resume_finds_a_module_level_pipeline_and_refuses_a_stage(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["add_internal_note"],
                      auto_resume=False) as runtime:
        waiting = runtime.run(gated, "P1 outage")
        assert waiting.status is Status.WAITING, waiting.error
        local = keel.agent(shout) >> whisper
        assert runtime.run(local, "x").status is Status.COMPLETED
        runtime.handle(waiting.execution_id).approve()
    with AgentRuntime(database_url) as fresh:  # knows neither pipeline: finds it by reference
        assert fresh.store.execution(waiting.execution_id).agent_ref == \
            "test_pipeline_runs:gated"
        with pytest.raises(AgentNotFoundError, match=r"stage of the pipeline execution"):
            fresh.resume(f"{waiting.execution_id}.1")
        assert fresh.resume(waiting.execution_id).status is Status.COMPLETED


def test_cancelling_a_pipeline_cancels_its_waiting_stage(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["add_internal_note"]) as runtime:
        waiting = runtime.run(gated, "P1 outage")
        pid = waiting.execution_id
        assert AgentHandle(pid, runtime=runtime).cancel("duplicate ticket") is Status.CANCELLED
        assert [s[3] for s in stages(runtime, pid)] == ["COMPLETED", "CANCELLED"]
        assert [a.status for a in runtime.store.approvals(f"{pid}.1")] == ["cancelled"]
        assert runtime.result(pid).pending_approvals == []


class Rendezvous(Model):
    """A model whose calls return only once all the barrier's parties are in flight."""

    def __init__(self, name: str, barrier: asyncio.Barrier) -> None:
        self.name, self.barrier = name, barrier

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        async with asyncio.timeout(10):  # run one after the other, they would never meet
            await self.barrier.wait()
        return ModelResponse(output=[say(f"{self.name} met")], response_id=None,
                             usage=Usage())

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
        yield


def test_parallel_branches_are_in_flight_at_the_same_time(runtime: AgentRuntime) -> None:
    barrier = asyncio.Barrier(2)
    left, right = (Agent(name=n, model=Rendezvous(n, barrier)) for n in ("left", "right"))
    result = runtime.run(keel.parallel(left, right), "go")
    assert result.status is Status.COMPLETED, result.error
    assert result.output == {"left": "left met", "right": "right met"}


class Held(Model):
    """Answers with a tool call once `release` is set; `entered` says it was called."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.entered.set()
        await asyncio.to_thread(self.release.wait, 10)
        return ModelResponse(output=[call("lookup", "call_1", q="x")], response_id=None,
                             usage=Usage())

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
        yield


def test_cancelling_a_running_pipeline_stops_its_running_stage(runtime: AgentRuntime) -> None:
    ran: list[str] = []

    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        ran.append(q)
        return "found"

    model = Held()
    slow = Agent(name="slow", model=model, tools=[lookup])
    handle = runtime.start(keel.agent(slow) >> frame, "hi")
    assert model.entered.wait(10)
    assert handle.cancel("not needed") is Status.RUNNING  # it stops at its next step
    model.release.set()
    result = handle.join(timeout=30)
    assert result.status is Status.CANCELLED
    assert [s[1:] for s in stages(runtime, handle.execution_id)] == [
        ("slow", "openai", "CANCELLED")]
    assert ran == ["x"]  # the stage stopped at its next step, not asking its model again
    assert "frame" not in SEEN
