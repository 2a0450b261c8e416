"""The runtime API: run, start, stream, resume, handles, results, module-level functions."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool
from examples.support_triage.agents import triage_agent

import keel
from keel import (
    AgentHandle,
    AgentNotFoundError,
    AgentRuntime,
    KeelError,
    Status,
    UnsupportedAgentError,
)
from scripted import ScriptedModel, call, say
from three_frameworks import scripted_agent

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
GATE = threading.Event()  # a tool waits for it, so tests can watch a run that is mid-way
STARTED = threading.Event()  # that tool has started


@function_tool
async def slow_lookup(order: str) -> str:
    """Look an order up (waits for the test to let it finish, without holding up the loop)."""
    STARTED.set()
    for _ in range(2000):
        if GATE.is_set():
            return f"{order}: shipped"
        await asyncio.sleep(0.01)
    raise AssertionError("the test never opened the gate")


def _slow_script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "slow_lookup" not in outputs:
        return [call("slow_lookup", "s1", order="A-1")]
    return [say(f"Your order {outputs['slow_lookup']}")]


slow_agent = Agent(name="slow", instructions="slow: look it up",
                   model=ScriptedModel(_slow_script), tools=[slow_lookup])


@pytest.fixture(autouse=True)
def _close_gate() -> None:
    GATE.clear()
    STARTED.clear()


def test_stream_yields_events_live_and_stops_when_waiting(runtime: AgentRuntime) -> None:
    types = [(e.type, getattr(e, "tool_name", None) or getattr(e, "target", None))
             for e in runtime.stream(triage_agent, TICKET)]
    assert types == [
        ("handoff", "billing_specialist"),
        ("tool_call", "get_invoice"),
        ("tool_result", "get_invoice"),
        ("tool_call", "process_refund"),
        ("waiting", "process_refund"),
    ]


def test_events_arrive_while_the_run_is_still_going(runtime: AgentRuntime) -> None:
    seen = []
    for event in runtime.stream(slow_agent, "where is A-1?"):
        seen.append(event.type)
        if event.type == "tool_call":  # the tool is blocked: this event is live
            assert runtime.handle(event.execution_id).status() is Status.RUNNING
            GATE.set()
    assert seen == ["tool_call", "tool_result", "message", "done"]


def test_a_handle_in_another_runtime_replays_then_follows(database_url: str) -> None:
    with AgentRuntime(database_url) as runner, AgentRuntime(database_url) as watcher:
        handle = runner.start(slow_agent, "where is A-1?")
        stream = AgentHandle(handle.execution_id, runtime=watcher).stream(timeout=30)
        for event in stream:
            if event.type == "tool_call":
                GATE.set()
        result = stream.get_result()
    assert [e.type for e in stream.events] == ["tool_call", "tool_result", "message", "done"]
    assert result.status is Status.COMPLETED
    assert result.output == "Your order A-1: shipped"


def test_stream_after_a_sequence_number(runtime: AgentRuntime) -> None:
    result = runtime.run(triage_agent, TICKET)
    later = list(runtime.handle(result.execution_id).stream(after=3))
    assert [e.seq for e in later] == [4, 5]
    assert later == result.events[3:]


def test_approve_then_get_result_with_the_background_resumer(runtime: AgentRuntime) -> None:
    handle = runtime.start(triage_agent, TICKET)
    waiting = [e for e in handle.stream() if e.type == "waiting"]
    assert [e.tool_name for e in waiting] == ["process_refund"]
    handle.approve(reviewer="dana")
    result = handle.stream(timeout=30).get_result()
    assert result.status is Status.COMPLETED
    assert result.output.startswith("I've refunded $99.00")


def test_the_background_resumer_carries_on_a_decided_run_beside_a_slow_one(
    database_url: str,
) -> None:
    with AgentRuntime(database_url, require_approval=["slow_lookup"]) as runtime:
        slow = runtime.run(slow_agent, "where is A-1?")
        quick = runtime.run(triage_agent, TICKET)  # both wait; this runtime watches both
        assert (slow.status, quick.status) == (Status.WAITING, Status.WAITING)
        runtime.handle(slow.execution_id).approve()
        assert STARTED.wait(20)  # carried on in the background, and still looking
        runtime.handle(quick.execution_id).approve()
        done = runtime.handle(quick.execution_id).join(timeout=20)
        assert done.status is Status.COMPLETED  # it did not wait for the slow one
        assert runtime.handle(slow.execution_id).status() is Status.RUNNING
        GATE.set()
        assert runtime.handle(slow.execution_id).join(timeout=20).output == (
            "Your order A-1: shipped")


def test_start_returns_at_once_and_join_waits(runtime: AgentRuntime) -> None:
    handle = runtime.start(slow_agent, "where is A-1?")
    assert handle.status() is Status.RUNNING
    GATE.set()
    result = handle.join(timeout=30)
    assert result.status is Status.COMPLETED
    assert [c.name for c in result.tool_calls] == ["slow_lookup"]


def test_results_loaded_later_have_everything(database_url: str) -> None:
    with AgentRuntime(database_url) as runtime:
        GATE.set()
        live = runtime.run(slow_agent, "where is A-1?")
    with AgentRuntime(database_url) as other:
        loaded = other.result(live.execution_id)
    assert loaded.events == live.events and len(loaded.events) == 4
    assert loaded.output == live.output == "Your order A-1: shipped"
    assert loaded.tool_calls == live.tool_calls
    assert loaded.token_usage == live.token_usage
    assert loaded.token_usage is not None and loaded.token_usage.total_tokens == 30


def test_cancel_stops_a_running_execution_at_its_next_step(runtime: AgentRuntime) -> None:
    handle = runtime.start(slow_agent, "where is A-1?")
    for event in handle.stream():
        if event.type == "tool_call":
            assert handle.cancel("no longer needed") is Status.RUNNING
            GATE.set()
    result = handle.join(timeout=30)
    assert result.status is Status.CANCELLED
    assert result.events[-1].type == "cancelled"
    assert result.events[-1].reason == "no longer needed"  # it was lost once


def test_an_idempotency_key_returns_the_existing_execution(runtime: AgentRuntime) -> None:
    GATE.set()
    first = runtime.run(slow_agent, "where is A-1?", idempotency_key="ticket-7")
    again = runtime.run(slow_agent, "where is A-1?", idempotency_key="ticket-7")
    assert again.execution_id == first.execution_id
    assert again.output == first.output
    assert runtime.start(slow_agent, "x", idempotency_key="ticket-7").execution_id == \
        first.execution_id


def test_an_idempotency_key_given_for_another_agent_is_refused_and_its_run_kept(
        runtime: AgentRuntime) -> None:
    """It once carried the key's run on with the other agent, which failed it for good."""
    waiting = runtime.run(triage_agent, TICKET, idempotency_key="ticket-42")
    assert waiting.status is Status.WAITING
    with pytest.raises(keel.IdempotencyConflictError, match="'ticket-42' belongs to execution"):
        runtime.run(slow_agent, "where is A-1?", idempotency_key="ticket-42")
    with pytest.raises(keel.IdempotencyConflictError):
        runtime.start(slow_agent, "where is A-1?", idempotency_key="ticket-42")
    assert runtime.handle(waiting.execution_id).status() is Status.WAITING
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    assert runtime.resume(waiting.execution_id).status is Status.COMPLETED
    with pytest.raises(ValueError, match="non-empty string"):
        runtime.run(slow_agent, "where is A-1?", idempotency_key="")


def test_a_turn_that_calls_no_tool_commits_with_the_completion(runtime: AgentRuntime) -> None:
    GATE.set()
    with runtime.store.count_commits() as commits:
        result = runtime.run(slow_agent, "where is A-1?")
    assert result.status is Status.COMPLETED
    assert sorted(runtime.store.steps(result.execution_id)) == [
        "input_list", "model:0", "model:1", "tool:s1"]
    # The admission, the turn that asks for the tool (before it runs), the tool's result, and
    # the final turn and the conversation (`to_input_list()`) together with the completion.
    assert commits.count == 4
    assert [e.type for e in result.events] == ["tool_call", "tool_result", "message", "done"]


async def test_run_async_and_the_async_context_manager(database_url: str) -> None:
    GATE.set()
    async with AgentRuntime(database_url) as runtime:
        result = await runtime.run_async(slow_agent, "where is A-1?")
        with pytest.raises(KeelError, match="run_async"):
            runtime.run(slow_agent, "inside a loop")
    assert result.status is Status.COMPLETED


def test_module_level_functions_use_a_default_runtime(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_DATABASE_URL", database_url)
    monkeypatch.setattr(keel, "_default", None)
    GATE.set()
    assert keel.run(slow_agent, "where is A-1?").status is Status.COMPLETED
    assert [e.type for e in keel.stream(slow_agent, "again")][-1] == "done"
    assert keel.start(slow_agent, "once more").join(timeout=30).is_success
    assert asyncio.run(keel.run_async(slow_agent, "async")).is_success
    assert keel._default_runtime().database_url == database_url
    keel._default_runtime().close()


def test_unsupported_objects_name_what_is_supported(runtime: AgentRuntime) -> None:
    with pytest.raises(UnsupportedAgentError) as caught:
        runtime.run(object(), "hi")
    message = str(caught.value)
    assert "builtins.object" in message
    assert "OpenAI Agents SDK" in message and "pip install 'keel[openai]'" in message


def test_an_unknown_option_names_the_ones_there_are(runtime: AgentRuntime) -> None:
    with pytest.raises(TypeError, match="run\\(\\) got an unexpected keyword argument 'max_turn'. "
                                        "The options it passes to the framework are run_config"):
        runtime.run(triage_agent, "hi", max_turn=3)  # type: ignore[call-arg]
    assert runtime.store.executions() == []  # nothing admitted


@pytest.mark.parametrize(("option", "value", "said"), [
    ("max_turns", "3", "positive int"), ("max_turns", 0, "positive int"),
    ("config", "abc", "RunnableConfig"), ("run_config", {"model": "x"}, "RunConfig object"),
    ("session_id", 7, "is a string"),
])
def test_an_option_of_the_wrong_type_is_refused_before_anything_is_stored(
        runtime: AgentRuntime, option: str, value: Any, said: str) -> None:
    """It was stored, and the run then failed with the framework's raw error."""
    with pytest.raises(TypeError, match=f"run\\(\\) got .*{said}"):
        runtime.run(triage_agent, "hi", **{option: value})
    assert runtime.store.executions() == []


def test_resume_names_the_recorded_agent_when_it_cannot_be_found(database_url: str) -> None:
    local = Agent(name="local", instructions="local: wait", tools=[slow_lookup],
                  model=ScriptedModel(_slow_script))
    # Without auto_resume: this runtime knows `local` and would otherwise resume the approved
    # run itself before closing, so the fresh runtime would find nothing left to resume.
    with AgentRuntime(database_url, require_approval=["slow_lookup"],
                      auto_resume=False) as runtime:
        waiting = runtime.run(local, "x")
        runtime.handle(waiting.execution_id).approve()
    with AgentRuntime(database_url) as fresh, pytest.raises(AgentNotFoundError, match="agent="):
        fresh.resume(waiting.execution_id)
    GATE.set()
    with AgentRuntime(database_url) as fresh:
        assert fresh.resume(waiting.execution_id, agent=local).is_success


async def test_streams_can_be_followed_with_async_for(database_url: str) -> None:
    async with AgentRuntime(database_url) as runtime:
        stream = runtime.stream(slow_agent, "where is A-1?")
        seen = []
        async for event in stream:
            seen.append(event.type)
            if event.type == "tool_call":
                GATE.set()
        result = await stream.get_result_async()
    assert seen == ["tool_call", "tool_result", "message", "done"]
    assert result.output == "Your order A-1: shipped"


def test_a_script_that_starts_a_run_and_ends_lets_it_finish(
    tmp_path: Path, database_url: str
) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "fire_and_forget.py"
    script.write_text(
        "import keel\n"
        "from examples.support_triage.agents import triage_agent\n"
        "print(keel.start(triage_agent, 'My login fails with an error').execution_id)\n"
    )
    env = {**os.environ, "KEEL_DATABASE_URL": database_url,
           "PYTHONPATH": str(Path(__file__).parents[2])}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    with AgentRuntime(database_url) as runtime:
        result = runtime.result(out.stdout.strip())
    assert result.status is Status.COMPLETED  # the default runtime waited for it at exit


def test_delete_removes_a_settled_execution_and_refuses_a_running_one(
    runtime: AgentRuntime,
) -> None:
    running = runtime.start(slow_agent, "where is A-1?")
    with pytest.raises(KeelError, match="cancel it"):
        runtime.delete(running.execution_id)
    GATE.set()
    done = running.join(timeout=30)
    runtime.delete(done.execution_id)
    with pytest.raises(keel.ExecutionNotFoundError):
        runtime.result(done.execution_id)
    assert runtime.store.steps(done.execution_id) == {}
    assert runtime.store.events(done.execution_id) == []


def _one_tool_agent(tool: Any) -> Agent[Any]:
    def script(agent: str, outputs: dict[str, str]) -> list[Any]:
        return [say("done")] if outputs else [call(tool.name, "t1")]

    return Agent(name="one_tool", instructions="one_tool", tools=[tool],
                 model=ScriptedModel(script))


def test_a_tool_that_raises_keyboardinterrupt_or_systemexit_leaves_keels_loop_running(
        database_url: str) -> None:
    """asyncio re-raises them out of the loop: keel's loop once died with them, and every
    later run of the process hung."""
    @function_tool
    def interrupted() -> str:
        """Raise as Ctrl-C would."""
        raise KeyboardInterrupt

    @function_tool
    def exits() -> str:
        """Exit the process, as a careless tool might."""
        raise SystemExit(2)

    GATE.set()
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        with pytest.raises(KeyboardInterrupt):  # to the caller, as from Runner.run_sync
            runtime.run(_one_tool_agent(interrupted), "go")
        with pytest.raises(SystemExit):
            runtime.run(_one_tool_agent(exits), "go")
        assert runtime.run(slow_agent, "where is A-1?").status is Status.COMPLETED


def test_ctrl_c_while_run_waits_stops_the_run(database_url: str) -> None:
    """The run went on in the background, its tools acting after the user stopped it."""
    import signal

    effects: list[str] = []

    @function_tool
    async def slow_effect() -> str:
        """Act, after a while."""
        # The user presses Ctrl-C while run() waits (to the main thread, where Python
        # raises KeyboardInterrupt).
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        await asyncio.sleep(0.5)
        effects.append("acted")
        return "acted"

    with AgentRuntime(database_url, auto_resume=False) as runtime:
        with pytest.raises(KeyboardInterrupt):
            runtime.run(_one_tool_agent(slow_effect), "go")
        time.sleep(1)
    assert effects == []


def test_a_closed_runtime_refuses_every_run_before_anything_is_stored(
        database_url: str) -> None:
    runtime = AgentRuntime(database_url)
    runtime.close()
    for attempt in (lambda: runtime.run(slow_agent, "x"),
                    lambda: runtime.start(slow_agent, "x", idempotency_key="k1"),
                    lambda: runtime.resume("nope")):
        with pytest.raises(KeelError, match="closed"):
            attempt()
    with AgentRuntime(database_url) as fresh:
        assert fresh.store.executions() == []
        assert fresh.store.find_by_idempotency_key("k1") is None


class _Ticket:
    """An object with no JSON form."""


def test_an_input_with_no_json_form_is_refused_before_anything_is_stored(
        runtime: AgentRuntime) -> None:
    """Its repr() used to reach the agent, a string its caller never meant."""
    ticket = [{"role": "user", "content": "Refund this.", "ticket": _Ticket()}]
    for entry in (runtime.run, runtime.start):
        with pytest.raises(TypeError, match="test_runtime._Ticket has no JSON form"):
            entry(triage_agent, ticket)
    assert runtime.store.executions() == []


def test_framework_objects_in_an_input_reach_the_agent_as_it_understands_them(
        runtime: AgentRuntime) -> None:
    from langchain_core.messages import HumanMessage

    graph = scripted_agent("langgraph", [("lookup_order", {"order": "A-1"})], [lookup_order])
    result = runtime.run(graph, {"messages": [HumanMessage("Where is A-1?")]})
    assert result.status is Status.COMPLETED
    assert [c.result["content"] for c in result.tool_calls] == ["A-1: shipped"]


def lookup_order(order: str) -> str:
    """Look an order up."""
    return f"{order}: shipped"
