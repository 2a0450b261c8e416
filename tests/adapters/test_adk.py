"""Google ADK agents run under keel: the support team with sub-agents, approvals on keel's store
from another process, gated transfers, apps, and resumes that replay the journal."""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from examples.support_triage import backend
from examples.support_triage.adk_agents import triage_agent
from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.function_tool import FunctionTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from adk_turns import TurnsLlm
from keel import AgentHandle, AgentRuntime, Status

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
ANSWER = ("I've refunded $99.00 for invoice INV-8821. You'll see it on your statement in 3-5 "
          "business days.")


@pytest.fixture(autouse=True)
def _clean_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    backend.REFUNDS.clear()
    calls = tmp_path / "model_calls.txt"
    monkeypatch.setenv("SUPPORT_MODEL_CALLS", str(calls))
    return calls


def _model_calls(tmp_path: Path) -> int:
    path = tmp_path / "model_calls.txt"
    return len(path.read_text().split()) if path.exists() else 0


def test_the_refund_waits_and_another_process_approves_and_resumes(
    runtime: AgentRuntime, database_url: str, tmp_path: Path
) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    assert waiting.status is Status.WAITING
    assert [(p.tool_name, p.args, p.agent) for p in waiting.pending_approvals] == [
        ("process_refund", {"invoice_id": "INV-8821", "reason": "Duplicate charge"},
         "billing_specialist")]
    assert backend.REFUNDS == [] and _model_calls(tmp_path) == 3
    with AgentRuntime(database_url, auto_resume=False) as other:
        AgentHandle(waiting.execution_id, runtime=other).approve(reviewer="dana")
        done = other.resume(waiting.execution_id, triage_agent)
    assert (done.status, done.output) == (Status.COMPLETED, ANSWER)
    assert _model_calls(tmp_path) == 4  # the three journaled turns were not asked again
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]
    # The transfer is a handoff, as in the other frameworks (no tool_result of its own), and
    # each agent's start is announced once, although the resume ran the invocation again.
    assert [(e.type, e.agent) for e in done.events][:3] == [
        ("thinking", "support_triage"), ("handoff", "support_triage"),
        ("thinking", "billing_specialist")]
    assert [e.type for e in done.events][3:] == [
        "tool_call", "tool_result", "tool_call", "waiting", "approved", "resumed",
        "tool_result", "message", "done"]
    handoff = done.events[1]
    assert (handoff.target, handoff.call_id) == ("billing_specialist", "call_1")


def test_a_rejected_refund_never_runs_and_the_model_hears_why(runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    AgentHandle(waiting.execution_id, runtime=runtime).reject("Refunds need a manager.")
    done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert "Refunds need a manager." in done.output
    assert backend.REFUNDS == []


def test_require_approval_gates_the_transfer_of_an_unmodified_agent(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["transfer_to_*"]) as runtime:
        waiting = runtime.run(triage_agent, "I cannot log in, the page shows an error")
        assert [(p.tool_name, p.args) for p in waiting.pending_approvals] == [
            ("transfer_to_agent", {"agent_name": "technical_specialist"})]
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert "operational" in done.output
    assert [e.target for e in done.events if e.type == "handoff"] == ["technical_specialist"]


def test_an_app_runs_with_its_own_plugins_and_keels(runtime: AgentRuntime) -> None:
    from google.adk.plugins.base_plugin import BasePlugin

    seen: list[str] = []

    class Audit(BasePlugin):
        async def before_tool_callback(self, *, tool, tool_args, tool_context):  # type: ignore[no-untyped-def]
            seen.append(tool.name)

    app = App(name="support", root_agent=triage_agent, plugins=[Audit(name="audit")])
    result = runtime.run(app, "Please check my account")
    assert (result.status, result.output) == (
        Status.COMPLETED,
        "I've reviewed your account; a specialist will follow up on your request.")
    assert seen == ["transfer_to_agent", "get_account"]  # the user's plugin still runs
    assert [c.name for c in result.tool_calls] == ["get_account"]


SENT: list[str] = []


def send_reply(ticket: str, text: str) -> dict[str, str]:
    """Post a reply on the ticket."""
    SENT.append(text)
    return {"status": "sent", "ticket": ticket}


def close_ticket(ticket: str, tool_context: ToolContext) -> dict[str, str]:
    """Close the ticket, once a human confirms."""
    if not tool_context.tool_confirmation:
        tool_context.request_confirmation(hint=f"Close {ticket}?")
        return {"status": "waiting for confirmation"}
    SENT.append(f"closed {ticket}")
    return {"status": "closed", "ticket": ticket}


class _ReplyLlm(BaseLlm):
    """Calls each of its tools once, then says it is done."""

    model: str = "reply-scripted"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        done = {part.function_response.name for content in llm_request.contents
                for part in content.parts or [] if part.function_response}
        todo = [name for name in llm_request.tools_dict if name not in done]
        args = {"send_reply": {"ticket": "TKT-7", "text": "Refunded."},
                "close_ticket": {"ticket": "TKT-7"}}
        part = types.Part(function_call=types.FunctionCall(
            name=todo[0], args=args[todo[0]], id=f"call_{todo[0]}")) if todo \
            else types.Part(text="All done.")
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


@pytest.mark.parametrize("tool", [
    FunctionTool(send_reply, require_confirmation=True), FunctionTool(close_ticket)],
    ids=["require_confirmation", "request_confirmation"])
def test_adks_own_confirmations_are_keel_approvals(runtime: AgentRuntime, tool: Any) -> None:
    SENT.clear()
    agent = LlmAgent(name="replier", model=_ReplyLlm(), instruction="Reply.", tools=[tool])
    waiting = runtime.run(agent, "Reply to TKT-7")
    assert waiting.status is Status.WAITING
    (pending,) = waiting.pending_approvals
    assert (pending.tool_name, pending.args["ticket"]) == (tool.name, "TKT-7")
    assert SENT == []
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, agent)
    assert (done.status, done.output) == (Status.COMPLETED, "All done.")
    assert len(SENT) == 1
    rejected = runtime.run(agent, "Reply to TKT-7")
    AgentHandle(rejected.execution_id, runtime=runtime).reject("Not now.")
    assert runtime.resume(rejected.execution_id, agent).status is Status.COMPLETED
    assert len(SENT) == 1  # the rejected call never ran


def test_the_sequential_pipeline_hands_off_from_step_to_step(runtime: AgentRuntime) -> None:
    from examples.support_pipeline.adk_agents import pipeline
    from examples.support_pipeline.graph import TICKET as PIPELINE_TICKET

    result = runtime.run(pipeline, PIPELINE_TICKET)
    assert result.status is Status.COMPLETED
    assert [(e.agent, e.target) for e in result.events if e.type == "handoff"] == [
        ("classifier", "responder"), ("responder", "escalation_checker")]
    messages = [(e.agent, e.content) for e in result.events if e.type == "message"]
    assert [agent for agent, _ in messages] == ["classifier", "responder", "escalation_checker"]
    assert messages[0][1].startswith("Priority: P1")
    assert result.output.startswith("Escalate: yes.")
    assert [e.content for e in result.events if e.type == "thinking"][0] == "support_pipeline"


def test_a_parallel_agent_runs_each_branch_with_its_own_journaled_turns(
    runtime: AgentRuntime, tmp_path: Path
) -> None:
    import warnings

    from examples.support_triage.adk_agents import MODEL, get_account
    from google.adk.agents import ParallelAgent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # in favour of Workflow
        both = ParallelAgent(name="checks", sub_agents=[
            LlmAgent(name=name, model=MODEL, instruction="Check the account.",
                     tools=[get_account]) for name in ("plan_check", "usage_check")])
    result = runtime.run(both, "Please check my account")
    assert result.status is Status.COMPLETED
    assert sorted(e.agent for e in result.events if e.type == "message") == [
        "plan_check", "usage_check"]
    assert sorted(c.agent for c in result.tool_calls) == ["plan_check", "usage_check"]
    assert _model_calls(tmp_path) == 4  # two turns per branch


class _EchoLlm(BaseLlm):
    """Answers with every user message of the session so far."""

    model: str = "echo"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        said = [part.text for content in llm_request.contents if content.role == "user"
                for part in content.parts or [] if part.text]
        yield LlmResponse(content=types.Content(
            role="model", parts=[types.Part(text=" | ".join(said))]))


echo_agent = LlmAgent(name="echo", model=_EchoLlm(), instruction="Repeat.")


def test_a_session_id_continues_the_conversation_from_another_runtime(
    runtime: AgentRuntime, database_url: str
) -> None:
    first = runtime.run(echo_agent, "my order is A-1", user_id="dana", session_id="chat-1")
    assert first.output == "my order is A-1"
    with AgentRuntime(database_url, auto_resume=False) as other:  # as another process
        second = other.run(echo_agent, "where is it?", user_id="dana", session_id="chat-1")
        alone = other.run(echo_agent, "hello", user_id="dana", session_id="chat-2")
    assert second.output == "my order is A-1 | where is it?"
    assert alone.output == "hello"
    third = runtime.run(echo_agent, "thanks", user_id="dana", session_id="chat-1")
    assert third.output == "my order is A-1 | where is it? | thanks"


class _AttachmentLlm(BaseLlm):
    """Says what the user sent: each part's text, or the kind and size of its file."""

    model: str = "attachments"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        parts = [part for content in llm_request.contents if content.role == "user"
                 for part in content.parts or []]
        said = [_described(part) for part in parts]
        yield LlmResponse(content=types.Content(
            role="model", parts=[types.Part(text=" | ".join(said))]))


def _described(part: types.Part) -> str:
    if part.inline_data is None:
        return part.text or ""
    return f"{part.inline_data.mime_type}, {len(part.inline_data.data or b'')} bytes"


def test_a_content_input_reaches_the_agent_with_its_files(runtime: AgentRuntime) -> None:
    """As ADK's Runner takes new_message=types.Content(...); it used to get the repr()."""
    photo = bytes(range(256)) * 4
    message = types.Content(role="user", parts=[
        types.Part(text="Is this charge mine?"),
        types.Part(inline_data=types.Blob(mime_type="image/png", data=photo))])
    agent = LlmAgent(name="desk", model=_AttachmentLlm(), instruction="Describe.")
    result = runtime.run(agent, message)
    assert result.output == "Is this charge mine? | image/png, 1024 bytes"


class _FrontDeskLlm(BaseLlm):
    """Asks the account specialist (an AgentTool) once, then answers."""

    model: str = "front-desk"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        answered = any(part.function_response for content in llm_request.contents
                       for part in content.parts or [])
        part = types.Part(text="Done.") if answered else types.Part(
            function_call=types.FunctionCall(name="account_specialist", id="ask_1",
                                             args={"request": "Check my account"}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


# ADK 2.13's own AgentTool builds its Runner with the argument ADK itself deprecates.
@pytest.mark.filterwarnings("ignore:The `plugins` argument is deprecated")
def test_an_agent_tools_inner_agent_is_journaled_and_visible(runtime: AgentRuntime) -> None:
    from examples.support_triage.adk_agents import account_agent
    from google.adk.tools.agent_tool import AgentTool

    front = LlmAgent(name="front_desk", model=_FrontDeskLlm(), instruction="Ask.",
                     tools=[AgentTool(agent=account_agent.clone())])
    result = runtime.run(front, "Please check my account")
    assert (result.status, result.output) == (Status.COMPLETED, "Done.")
    # A call, not a handoff: the front desk goes on when the specialist has answered.
    assert [(e.agent, e.type) for e in result.events if e.type != "thinking"] == [
        ("front_desk", "tool_call"),
        ("account_specialist", "tool_call"), ("account_specialist", "tool_result"),
        ("account_specialist", "message"), ("front_desk", "tool_result"),
        ("front_desk", "message"), ("front_desk", "done")]
    # The inner agent's steps are named within the call that ran it.
    assert sorted(runtime.store.steps(result.execution_id)) == [
        "agent:ask_1/account_specialist:0", "agent:front_desk:0",
        "model:ask_1/account_specialist:0", "model:ask_1/account_specialist:1",
        "model:front_desk:0", "model:front_desk:1", "tool:ask_1", "tool:call_1_get_account"]


class _NoIdLlm(BaseLlm):
    """Calls send_reply without a function-call id (ADK then invents a random one)."""

    model: str = "no-ids"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        answered = any(part.function_response for content in llm_request.contents
                       for part in content.parts or [])
        part = types.Part(text="Sent.") if answered else types.Part(
            function_call=types.FunctionCall(name="send_reply",
                                             args={"ticket": "TKT-9", "text": "Hi."}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def test_calls_without_ids_get_stable_ones_and_concurrent_resumes_run_the_tool_once(
    database_url: str,
) -> None:
    import threading

    SENT.clear()
    agent = LlmAgent(name="no_ids", model=_NoIdLlm(), instruction="Reply.",
                     tools=[FunctionTool(send_reply, require_confirmation=True)])
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(agent, "Reply to TKT-9")
        (pending,) = waiting.pending_approvals
        assert pending.call_id == "model:no_ids:0:0"  # not ADK's random adk-<uuid>
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        results = []
        resumers = [threading.Thread(target=lambda: results.append(
            runtime.resume(waiting.execution_id, agent))) for _ in range(2)]
        for thread in resumers:
            thread.start()
        for thread in resumers:
            thread.join(30)
    assert [r.status for r in results] == [Status.COMPLETED, Status.COMPLETED]
    assert SENT == ["Hi."]  # one resume ran the call; the other followed it
    assert [c.call_id for c in results[0].tool_calls] == ["model:no_ids:0:0"]


def test_a_loop_agent_journals_each_iteration_apart(runtime: AgentRuntime) -> None:
    import warnings

    from google.adk.agents import LoopAgent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # in favour of Workflow
        loop = LoopAgent(name="twice", max_iterations=2, sub_agents=[echo_agent.clone()])
    result = runtime.run(loop, "ping")
    assert result.status is Status.COMPLETED
    assert [e.content for e in result.events if e.type == "message"] == ["ping", "ping"]
    assert sorted(k for k in runtime.store.steps(result.execution_id) if k.startswith("model")
                  ) == ["model:echo:0", "model:echo:1"]


def test_the_agents_own_callbacks_and_a_custom_agent_keep_working(runtime: AgentRuntime) -> None:
    from google.adk.agents import BaseAgent
    from google.adk.events import Event

    seen: list[str] = []

    def before_model(callback_context: Any, llm_request: Any) -> None:
        seen.append(f"model:{callback_context.agent_name}")

    class Greeter(BaseAgent):  # a custom agent: greets, then hands the turn to its echo
        async def _run_async_impl(self, ctx: Any) -> AsyncGenerator[Event, None]:
            yield Event(author=self.name, invocation_id=ctx.invocation_id,
                        content=types.Content(role="model", parts=[types.Part(text="Hi!")]))
            async for event in self.sub_agents[0].run_async(ctx):
                yield event

    echo = echo_agent.clone(update={"before_model_callback": before_model})
    result = runtime.run(Greeter(name="greeter", sub_agents=[echo]), "hello")
    assert result.status is Status.COMPLETED
    assert result.output.startswith("hello")  # ADK quotes the greeting to echo as well
    assert "Hi!" in result.output
    assert seen == ["model:echo"]  # the agent's own callback ran, keel's plugin too
    assert [e.content for e in result.events if e.type == "thinking"] == ["greeter", "echo"]


LOOKED_UP: list[str] = []


def lookup(customer: str) -> dict[str, str]:
    """Look up a customer."""
    LOOKED_UP.append(customer)
    return {"customer": customer, "plan": "pro" if customer == "ALICE" else "free"}


class _ResearcherLlm(BaseLlm):
    """Looks up the customer its request names, then reports on them."""

    model: str = "researcher"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        request = llm_request.contents[0].parts[0].text or ""
        who = "ALICE" if "ALICE" in request else "BOB"
        found = [part.function_response.response for content in llm_request.contents
                 for part in content.parts or [] if part.function_response]
        part = types.Part(text=f"report on {who}: {found[0]['plan']}") if found else \
            types.Part(function_call=types.FunctionCall(name="lookup", args={"customer": who}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


@pytest.mark.filterwarnings("ignore:The `plugins` argument is deprecated")
def test_a_second_agent_tool_call_after_a_resume_gets_its_own_journal(
    runtime: AgentRuntime,
) -> None:
    """The first call is replayed from the journal (its inner agent does not run again), and
    the second's inner turns are still its own: the approved lookup runs, for BOB."""
    from google.adk.tools.agent_tool import AgentTool

    LOOKED_UP.clear()
    researcher = LlmAgent(name="researcher", description="Researches a customer.",
                          model=_ResearcherLlm(), instruction="Research.",
                          tools=[FunctionTool(lookup, require_confirmation=(
                              lambda customer: customer == "BOB"))])
    boss = LlmAgent(name="boss", instruction="Ask.", tools=[AgentTool(agent=researcher)],
                    model=TurnsLlm(turns=[
                        {"name": "researcher", "args": {"request": "ALICE"}, "id": "q1"},
                        {"name": "researcher", "args": {"request": "BOB"}, "id": "q2"},
                        "Both researched."]))
    waiting = runtime.run(boss, "Research ALICE and BOB")
    assert [(p.tool_name, p.args) for p in waiting.pending_approvals] == [
        ("lookup", {"customer": "BOB"})]
    gc.collect()  # the call the pause cut off was ended, not left to the collector to end
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, boss)
    assert (done.status, done.output) == (Status.COMPLETED, "Both researched.")
    assert LOOKED_UP == ["ALICE", "BOB"]
    assert [(c.call_id, c.result) for c in done.tool_calls if c.name == "researcher"] == [
        ("q1", "report on ALICE: pro"), ("q2", "report on BOB: free")]


PAID: list[int] = []


def pay(amount: int) -> dict[str, int]:
    """Pay an amount."""
    PAID.append(amount)
    return {"paid": amount}


def test_the_agents_after_model_callback_runs_and_runs_again_on_replay(
    runtime: AgentRuntime,
) -> None:
    """A safety callback caps what the model asks for; keel journals the model's answer and
    the callback makes the same of it when the turn is replayed."""
    capped: list[int] = []

    def cap(callback_context: Any, llm_response: LlmResponse) -> LlmResponse | None:
        calls = [p.function_call for p in llm_response.content.parts or [] if p.function_call]
        if not calls or calls[0].args["amount"] <= 100:
            return None
        capped.append(calls[0].args["amount"])
        return LlmResponse(content=types.Content(role="model", parts=[types.Part(
            function_call=types.FunctionCall(name="pay", args={"amount": 100}))]))

    PAID.clear()
    agent = LlmAgent(name="payer", instruction="Pay.", after_model_callback=cap,
                     tools=[FunctionTool(pay, require_confirmation=True)],
                     model=TurnsLlm(turns=[{"name": "pay", "args": {"amount": 1000}}, "Paid."]))
    waiting = runtime.run(agent, "Pay 1000")
    assert [p.args for p in waiting.pending_approvals] == [{"amount": 100}]
    assert [e.args for e in waiting.events if e.type == "tool_call"] == [{"amount": 100}]
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, agent)
    assert (done.status, PAID, capped) == (Status.COMPLETED, [100], [1000, 1000])
    (step,) = [s for k, s in runtime.store.steps(done.execution_id).items()
               if k == "model:payer:0"]
    assert "1000" in step.payload  # the model's own answer is what keel journals


def pay_counted(amount: int, tool_context: ToolContext) -> dict[str, Any]:
    """Pay an amount."""
    PAID.append(amount)
    return {"paid": amount, "turns": tool_context.state.get("turns")}


def test_the_agents_before_model_callback_runs_again_on_replay(runtime: AgentRuntime) -> None:
    """What the agent's before-model callback writes in the session state is there after a
    pause: a replayed turn runs the agent's model callbacks once, as a live turn does."""
    seen: list[str] = []

    def count_turns(callback_context: Any, llm_request: LlmRequest) -> None:
        seen.append("before")
        callback_context.state["turns"] = callback_context.state.get("turns", 0) + 1

    def note(callback_context: Any, llm_response: LlmResponse) -> None:
        seen.append("after")

    PAID.clear()
    agent = LlmAgent(name="payer", instruction="Pay.", before_model_callback=count_turns,
                     after_model_callback=note,
                     tools=[FunctionTool(pay_counted, require_confirmation=True)],
                     model=TurnsLlm(turns=[{"name": "pay_counted", "args": {"amount": 5}},
                                            "Paid."]))
    waiting = runtime.run(agent, "Pay 5")
    assert (waiting.status, seen) == (Status.WAITING, ["before", "after"])
    seen.clear()
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, agent)
    assert (done.status, PAID) == (Status.COMPLETED, [5])
    assert [c.result for c in done.tool_calls] == [{"paid": 5, "turns": 1}]
    assert seen == ["before", "after", "before", "after"]  # the replayed turn, the live one


def get_report(tool_context: ToolContext) -> dict[str, str]:
    """The quarterly report, shown as it is."""
    tool_context.actions.skip_summarization = True
    return {"report": "Q3 revenue 42"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SequentialAgent, for Workflow
def test_a_replayed_tool_keeps_skip_summarization(runtime: AgentRuntime) -> None:
    from google.adk.agents import SequentialAgent

    reporter_model = TurnsLlm(turns=[{"name": "get_report", "id": "g1"}, "(a summary)"],
                               asked=[])
    reporter = LlmAgent(name="reporter", instruction="Report.", tools=[get_report],
                        model=reporter_model)
    filer = LlmAgent(name="filer", instruction="File.",
                     tools=[FunctionTool(send_reply, require_confirmation=True)],
                     model=TurnsLlm(turns=[{"name": "send_reply", "id": "s1", "args": {
                         "ticket": "TKT-1", "text": "filed"}}, "Filed."]))
    both = SequentialAgent(name="report_and_file", sub_agents=[reporter, filer])
    waiting = runtime.run(both, "Report, then file it")
    assert reporter_model.asked == [0]  # the tool's result is the reporter's answer
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, both)
    assert (done.status, done.output) == (Status.COMPLETED, "Filed.")
    assert reporter_model.asked == [0]  # nor asked to summarize it after the resume


def test_the_models_thoughts_are_not_the_answer(runtime: AgentRuntime) -> None:
    agent = LlmAgent(name="thinker", instruction="Answer.", model=TurnsLlm(turns=[[
        types.Part(text="The user seems angry.", thought=True),
        types.Part(text="Hello! How can I help?")]]))
    result = runtime.run(agent, "hi")
    assert result.output == "Hello! How can I help?"
    assert [e.output for e in result.events if e.type == "done"] == ["Hello! How can I help?"]
    assert "The user seems angry." in [e.content for e in result.events if e.type == "thinking"]


def test_a_tool_the_model_made_up_is_answered_and_costs_no_tool_call(
    runtime: AgentRuntime,
) -> None:
    from keel import Budget

    SENT.clear()
    agent = LlmAgent(name="guesser", instruction="Reply.", tools=[send_reply],
                     model=TurnsLlm(turns=[
                         {"name": "ghost_tool", "id": "g1", "args": {}},
                         {"name": "send_reply", "id": "s1", "args": {"ticket": "T", "text": "a"}},
                         "Sent."]))
    result = runtime.run(agent, "Reply", budget=Budget(max_tool_calls=1))
    assert (result.status, result.output, SENT) == (Status.COMPLETED, "Sent.", ["a"])
    (ghost,) = [e for e in result.events if e.type == "tool_result" and e.call_id == "g1"]
    assert "ghost_tool" in ghost.result["error"]


def test_parallel_branches_are_no_handoffs_and_a_step_is_announced_before_it_starts(
    runtime: AgentRuntime,
) -> None:
    import warnings

    from google.adk.agents import ParallelAgent, SequentialAgent

    def says(name: str, text: str) -> LlmAgent:
        return LlmAgent(name=name, instruction="Say.", model=TurnsLlm(turns=[text]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # in favour of Workflow
        flow = SequentialAgent(name="flow", sub_agents=[
            says("writer", "A draft."),
            ParallelAgent(name="reviews", sub_agents=[says("style", "OK."), says("facts", "OK.")]),
            SequentialAgent(name="finish", sub_agents=[says("editor", "Edited."),
                                                        says("publisher", "Published.")])])
    result = runtime.run(flow, "Write")
    assert result.status is Status.COMPLETED
    # The branches start afresh, and what follows them comes after no one agent.
    moves = [(e.type, e.agent, getattr(e, "target", None)) for e in result.events
             if e.type == "handoff" or e.type == "thinking" and e.agent in ("editor", "publisher")]
    assert moves == [("thinking", "editor", None), ("handoff", "editor", "publisher"),
                     ("thinking", "publisher", None)]


def test_a_mock_runs_thinking_is_not_the_answer() -> None:
    from keel.testing import MockEvent, mock_run

    result = mock_run(echo_agent, "hi", events=[MockEvent.thinking("Hmm."),
                                                 MockEvent.done("Hello.")])
    assert result.output == "Hello."


async def save_report(text: str, tool_context: ToolContext) -> dict[str, Any]:
    """Save a report as an artifact."""
    return {"version": await tool_context.save_artifact("report.txt", types.Part(text=text))}


async def read_report(tool_context: ToolContext) -> dict[str, Any]:
    """Read the saved report back."""
    part = await tool_context.load_artifact("report.txt")
    return {"text": part.text if part is not None else None}


def test_tools_save_and_load_artifacts_as_under_adks_in_memory_runner(
        runtime: AgentRuntime) -> None:
    """The run failed with "Artifact service is not initialized" before."""
    model = TurnsLlm(turns=[
        {"name": "save_report", "args": {"text": "all good"}, "id": "save"},
        {"name": "read_report", "args": {}, "id": "read"}, "done"], asked=[])
    agent = LlmAgent(name="reporter", model=model, instruction="Report.",
                     tools=[save_report, read_report])
    result = runtime.run(agent, "report")
    assert result.status is Status.COMPLETED, result.error
    assert [c.result for c in result.tool_calls] == [{"version": 0}, {"text": "all good"}]


def test_a_mock_turns_message_before_its_answer_is_said_apart_as_with_openai(
    runtime: AgentRuntime,
) -> None:
    """Scripted in one turn, a message and the answer are two messages, and the answer is
    the output (it was the two joined into one before), as a mock run of OpenAI agents has
    them."""
    from examples.support_triage.agents import triage_agent as openai_triage

    from keel.testing import MockEvent, mock_run

    script = [MockEvent.message("Let me check."), MockEvent.done("All good.")]
    said = []
    for team in (triage_agent, openai_triage):
        result = mock_run(team, "hi", events=script, runtime=runtime)
        said.append((result.output, [
            (e.type, e.content if e.type == "message" else e.output) for e in result.events
            if e.type in ("message", "done")]))
    adk, openai = said
    assert adk == openai == ("All good.", [
        ("message", "Let me check."), ("message", "All good."), ("done", "All good.")])
