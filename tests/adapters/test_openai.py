"""keel's OpenAI Agents SDK adapter with every way a user supplies models, agents and options.

The scripted models here are pure functions of the request they get (the asking agent's
instructions, its tools and handoffs, and the conversation so far): a run that resumes from the
journal meets exactly the replies the first run met. They count their calls only to prove which
turns reached a model and which were answered from the journal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    ModelResponse,
    RunConfig,
    RunContextWrapper,
    Usage,
    function_tool,
    handoff,
)
from agents.models import _openai_shared
from agents.models.interface import Model, ModelProvider
from agents.run_config import CallModelData, ModelInputData
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from pydantic import BaseModel

import keel
from keel import AgentHandle, AgentResult, AgentRuntime, Status, TokenUsage, ToolCall
from keel.runtime._result import INPUT_LIST
from three_frameworks import scripted_agent

Item = ResponseFunctionToolCall | ResponseOutputMessage

# -- scripted models --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a scripted model may look at: everything the SDK passes, nothing else."""

    instructions: str
    items: list[dict[str, Any]]
    tools: frozenset[str]
    handoffs: dict[str, str]  # target agent name -> transfer tool name
    structured: bool

    def user_text(self) -> str:
        return next(str(i["content"]) for i in self.items if i.get("role") == "user")

    def tool_outputs(self) -> dict[str, str]:
        """call id -> output, for every tool call answered so far."""
        return {str(i["call_id"]): str(i["output"]) for i in self.items
                if i.get("type") == "function_call_output"}


Reply = Callable[[Request], list[Item]]


class ScriptedModel(Model):
    """A Model whose every reply is `reply(request)`; reports `usage` per turn."""

    def __init__(self, reply: Reply, usage: Usage | None = None) -> None:
        self.reply = reply
        self.usage = usage
        self.calls = 0

    async def get_response(  # type: ignore[override]
        self, system_instructions: str | None, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: Any, tracing: Any, **kwargs: Any,
    ) -> ModelResponse:
        self.calls += 1
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        request = Request(
            instructions=system_instructions or "",
            items=[i if isinstance(i, dict) else i.model_dump() for i in items],
            tools=frozenset(t.name for t in tools),
            handoffs={h.agent_name: h.tool_name for h in handoffs},
            structured=output_schema is not None and not output_schema.is_plain_text(),
        )
        usage = self.usage if self.usage is not None else Usage()
        return ModelResponse(output=self.reply(request), usage=usage, response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("keel drives Runner.run, which does not stream")
        yield


class RecordingProvider(ModelProvider):
    """A user's provider: resolves model names to scripted models and records each lookup."""

    def __init__(self) -> None:
        self.requested: list[str | None] = []
        self.models: dict[str | None, ScriptedModel] = {}

    def get_model(self, model_name: str | None) -> Model:
        self.requested.append(model_name)
        model = self.models.get(model_name)
        if model is None:
            model = self.models[model_name] = ScriptedModel(route_or_answer_as(model_name))
        return model


def function_call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}", call_id=call_id, type="function_call", name=name,
        arguments=json.dumps(args), status="completed",
    )


def message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def tool_then_answer(tool: str, args: dict[str, Any], call_id: str) -> Reply:
    """Call `tool` once, then answer with what it returned."""

    def reply(request: Request) -> list[Item]:
        outputs = request.tool_outputs()
        if call_id not in outputs:
            return [function_call(tool, args, call_id)]
        return [message(f"{tool} said: {outputs[call_id]}")]

    return reply


def route_or_answer_as(label: str | None) -> Reply:
    """Agents with handoffs route on the ticket's words; the others answer, signed `label`."""

    def reply(request: Request) -> list[Item]:
        if request.handoffs:
            target = "billing_agent" if "bill" in request.user_text().lower() else "tech_agent"
            return [function_call(request.handoffs[target], {}, f"call_to_{target}")]
        return [message(f"{label}: {request.instructions} handled it")]

    return reply


def echo_instructions(request: Request) -> list[Item]:
    return [message(f"instructions were: {request.instructions}")]


def refund_tool(needs_approval: Any, runs: list[dict[str, Any]]) -> FunctionTool:
    def refund(invoice_id: str, amount: int) -> str:
        """Refund an invoice."""
        runs.append({"invoice_id": invoice_id, "amount": amount})
        return f"refunded {amount} on {invoice_id}"

    return function_tool(refund, needs_approval=needs_approval)


REFUND_ARGS = {"invoice_id": "INV-1", "amount": 250}


def steps_of(runtime: AgentRuntime, result: AgentResult) -> dict[str, tuple[str, str]]:
    """step key -> (kind, name) of the journal's finished steps, without the input list that
    a completed run adds for `to_input_list()` (nothing replays it)."""
    steps = runtime.store.steps(result.execution_id)
    return {key: (s.kind, s.name) for key, s in steps.items()
            if s.status == "done" and key != INPUT_LIST}


def event_types(result: AgentResult) -> list[str]:
    return [e.type for e in result.events]


# -- 1. a string model, resolved by the SDK's own default provider, over HTTP ----------------


@dataclass
class FakeOpenAI:
    """A tiny OpenAI-compatible server: POST /v1/responses answers like the Responses API."""

    server: ThreadingHTTPServer
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def inputs(self) -> list[list[str]]:
        """The item kinds each request sent, in order."""
        return [[str(i.get("type") or i.get("role")) for i in body["input"]]
                for _, body, _ in self.requests]


def responses_api_reply(body: dict[str, Any]) -> dict[str, Any]:
    """First turn: call lookup_order; once its output is in the input: answer with it."""
    outputs = [i["output"] for i in body["input"] if i.get("type") == "function_call_output"]
    if outputs:
        output: dict[str, Any] = {
            "id": "msg_http", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": f"Order: {outputs[0]}",
                         "annotations": []}],
        }
    else:
        output = {"id": "fc_http", "type": "function_call", "call_id": "call_http_1",
                  "name": "lookup_order", "arguments": json.dumps({"order_id": "A-7"}),
                  "status": "completed"}
    return {
        "id": "resp_test", "object": "response", "created_at": 0, "model": body["model"],
        "output": [output], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "status": "completed",
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake server, with OPENAI_BASE_URL and OPENAI_API_KEY pointing the SDK at it.

    How the SDK's default provider finds its endpoint (openai-agents 0.24.0): without a
    run_config keel builds a fresh `RunConfig()`, whose default `model_provider` is a new
    `MultiProvider`, which sends unprefixed names to a new `OpenAIProvider`. That provider
    builds its `AsyncOpenAI` lazily, at the first `get_model`, from
    `_openai_shared.get_default_openai_client()` if `agents.set_default_openai_client()` set
    one, else from `AsyncOpenAI(api_key=get_default_openai_key() or $OPENAI_API_KEY,
    base_url=$OPENAI_BASE_URL)`. So the environment is read on every run and no client is
    cached across runs; only a process-wide default client, key or API choice set by other
    code would redirect it, so those three globals are reset here for isolation. The server
    keeps connections alive, as real ones do: the SDK's process-wide httpx client pools them
    on the event loop that opened them, which keel's one loop for sync calls must respect.
    """
    fake: FakeOpenAI

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # connections stay open between requests
        timeout = 5  # a stuck client cannot hold the server thread forever

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append((self.path, body, {k.lower(): v for k, v in self.headers.items()}))
            if self.path != "/v1/responses":
                self.send_error(404)
                return
            data = json.dumps(responses_api_reply(body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    fake = FakeOpenAI(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    fake.server.daemon_threads = True
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(_openai_shared, "_default_openai_client", None)
    monkeypatch.setattr(_openai_shared, "_default_openai_key", None)
    monkeypatch.setattr(_openai_shared, "_use_responses_by_default", True)
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(timeout=5)


@pytest.mark.keel_real_model  # the fake server stands in for OpenAI
def test_string_model_via_sdk_default_provider_resumes_without_new_requests(
    fake_openai: FakeOpenAI, database_url: str
) -> None:
    lookups: list[str] = []

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        lookups.append(order_id)
        return f"{order_id} shipped"

    agent = Agent(name="http_agent", instructions="Help.", model="gpt-keel-test",
                  tools=[lookup_order])
    with AgentRuntime(database_url, require_approval=["lookup_order"],
                      auto_resume=False) as runtime:
        first = runtime.run(agent, "Where is order A-7?")
        assert first.status is Status.WAITING
        assert [(p.tool_name, p.call_id, p.args) for p in first.pending_approvals] == [
            ("lookup_order", "call_http_1", {"order_id": "A-7"})
        ]
        assert [path for path, _, _ in fake_openai.requests] == ["/v1/responses"]
        _, body, headers = fake_openai.requests[0]
        assert body["model"] == "gpt-keel-test"
        assert headers["authorization"] == "Bearer sk-test"
        assert lookups == []

        AgentHandle(first.execution_id, runtime=runtime).approve(reviewer="dana")
        done = runtime.resume(first.execution_id)
        assert done.status is Status.COMPLETED, done.error
        assert done.output == "Order: A-7 shipped"
        assert lookups == ["A-7"]
        # Turn 0 came from the journal: one new request only, for the turn after the tool.
        assert fake_openai.inputs() == [
            ["user"], ["user", "function_call", "function_call_output"]
        ]
        assert steps_of(runtime, done) == {
            "model:0": ("model", "http_agent"),
            "tool:call_http_1": ("tool", "lookup_order"),
            "model:1": ("model", "http_agent"),
        }
        assert done.token_usage == TokenUsage(requests=2, input_tokens=20, output_tokens=10,
                                              total_tokens=30)
        assert runtime.resume(first.execution_id).output == "Order: A-7 shipped"
    assert len(fake_openai.requests) == 2


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return f"{order_id} shipped"


@pytest.mark.keel_real_model  # the fake server stands in for OpenAI
def test_sync_runs_in_a_row_share_pooled_connections(fake_openai: FakeOpenAI,
                                                     database_url: str) -> None:
    agent = Agent(name="http_agent", model="gpt-keel-test", tools=[lookup_order])
    with AgentRuntime(database_url, require_approval=["lookup_order"],
                      auto_resume=False) as runtime:
        for _ in range(3):
            waiting = runtime.run(agent, "Where is order A-7?")
            assert waiting.status is Status.WAITING, waiting.error
            runtime.handle(waiting.execution_id).approve()
            final = runtime.resume(waiting.execution_id)
            assert final.output == "Order: A-7 shipped", final.error


@pytest.mark.keel_real_model  # the fake server stands in for OpenAI
def test_background_and_sync_runs_in_one_process(fake_openai: FakeOpenAI,
                                                 database_url: str) -> None:
    agent = Agent(name="http_agent", model="gpt-keel-test", tools=[lookup_order])
    with AgentRuntime(database_url) as runtime:
        for _ in range(2):
            assert runtime.start(agent, "A-7?").join(timeout=30).output == "Order: A-7 shipped"
            assert runtime.run(agent, "A-7?").output == "Order: A-7 shipped"


# -- 2-5. models on agents, on the RunConfig, and from the user's provider -------------------


def test_model_instance_on_the_agent(runtime: AgentRuntime) -> None:
    @function_tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel(tool_then_answer("ping", {}, "call_ping"))
    agent = Agent(name="own_model_agent", model=model, tools=[ping])
    result = runtime.run(agent, "ping please")
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "ping said: pong"
    assert model.calls == 2
    assert agent.model is model  # the user's agent is left as it was
    assert steps_of(runtime, result) == {
        "model:0": ("model", "own_model_agent"),
        "tool:call_ping": ("tool", "ping"),
        "model:1": ("model", "own_model_agent"),
    }


def test_run_config_model_instance_serves_every_agent(runtime: AgentRuntime) -> None:
    model = ScriptedModel(route_or_answer_as("shared"))
    billing = Agent(name="billing_agent", instructions="billing_agent", model="never-resolved")
    tech = Agent(name="tech_agent", instructions="tech_agent")
    triage = Agent(name="triage", model="never-resolved", handoffs=[billing, tech])
    run_config = RunConfig(model=model)
    result = runtime.run(triage, "My bill is wrong", run_config=run_config)
    assert result.status is Status.COMPLETED, result.error
    assert run_config.model is model  # keel composed a copy; the user's config is as it was
    assert result.output == "shared: billing_agent handled it"
    assert model.calls == 2
    assert steps_of(runtime, result) == {
        "model:0": ("model", "triage"),
        "handoff:call_to_billing_agent": ("handoff", "billing_agent"),
        "model:1": ("model", "billing_agent"),
    }


def test_users_provider_resolves_each_agents_model_name(runtime: AgentRuntime) -> None:
    provider = RecordingProvider()
    billing = Agent(name="billing_agent", instructions="billing_agent", model="billing-model")
    tech = Agent(name="tech_agent", instructions="tech_agent", model="tech-model")
    triage = Agent(name="triage", model="router-model", handoffs=[billing, tech])
    run_config = RunConfig(model_provider=provider)
    result = runtime.run(triage, "My bill is wrong", run_config=run_config)
    assert result.status is Status.COMPLETED, result.error
    assert run_config.model_provider is provider
    assert result.output == "billing-model: billing_agent handled it"
    assert provider.requested == ["router-model", "billing-model"]
    assert {name: m.calls for name, m in provider.models.items()} == {
        "router-model": 1, "billing-model": 1,
    }
    assert steps_of(runtime, result) == {
        "model:0": ("model", "triage"),
        "handoff:call_to_billing_agent": ("handoff", "billing_agent"),
        "model:1": ("model", "billing_agent"),
    }
    assert [(e.agent, e.target) for e in result.events if e.type == "handoff"] == [
        ("triage", "billing_agent")
    ]


def test_run_config_model_name_goes_through_the_users_provider(runtime: AgentRuntime) -> None:
    provider = RecordingProvider()
    tech = Agent(name="tech_agent", instructions="tech_agent", model="tech-model")
    triage = Agent(name="triage", model="router-model", handoffs=[tech])
    result = runtime.run(
        triage, "The API is down",
        run_config=RunConfig(model="override-model", model_provider=provider),
    )
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "override-model: tech_agent handled it"
    assert set(provider.requested) == {"override-model"}
    assert provider.models["override-model"].calls == 2
    assert sorted(s[0] for s in steps_of(runtime, result).values()) == [
        "handoff", "model", "model"]


# -- 6. handoffs: bare agents, handoff() objects, on_handoff callbacks ------------------------


def test_bare_agent_and_handoff_object_targets_give_handoff_events(
    runtime: AgentRuntime,
) -> None:
    callbacks: list[str] = []

    def on_handoff(context: RunContextWrapper[Any]) -> None:
        callbacks.append("tech_agent")

    model = ScriptedModel(route_or_answer_as("m"))
    billing = Agent(name="billing_agent", instructions="billing_agent", model=model)
    tech = Agent(name="tech_agent", instructions="tech_agent", model=model)
    triage = Agent(name="triage", model=model,
                   handoffs=[billing, handoff(tech, on_handoff=on_handoff)])

    to_billing = runtime.run(triage, "Billing question")
    assert to_billing.status is Status.COMPLETED, to_billing.error
    assert to_billing.output == "m: billing_agent handled it"
    assert [(e.agent, e.target, e.call_id) for e in to_billing.events
            if e.type == "handoff"] == [("triage", "billing_agent", "call_to_billing_agent")]
    assert callbacks == []

    to_tech = runtime.run(triage, "Login error")
    assert to_tech.status is Status.COMPLETED, to_tech.error
    assert to_tech.output == "m: tech_agent handled it"
    assert [(e.agent, e.target) for e in to_tech.events if e.type == "handoff"] == [
        ("triage", "tech_agent")
    ]
    assert callbacks == ["tech_agent"]
    assert event_types(to_tech) == ["handoff", "message", "done"]
    assert [e.agent for e in to_tech.events] == ["triage", "tech_agent", "tech_agent"]


def test_handoff_object_without_callback(runtime: AgentRuntime) -> None:
    model = ScriptedModel(route_or_answer_as("m"))
    billing = Agent(name="billing_agent", instructions="billing_agent", model=model)
    triage = Agent(name="triage", model=model, handoffs=[handoff(billing)])
    result = runtime.run(triage, "A billing problem")
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "m: billing_agent handled it"
    assert [e.target for e in result.events if e.type == "handoff"] == ["billing_agent"]


class Escalation(BaseModel):
    reason: str


def escalate_with_reason(request: Request) -> list[Item]:
    if request.handoffs:
        reason = {"reason": f"user said {request.user_text()!r}"}
        return [function_call(request.handoffs["tech_agent"], reason, "call_escalate")]
    return [message(f"{request.instructions} took it")]


def test_on_handoff_with_input_type_gets_the_parsed_input(runtime: AgentRuntime) -> None:
    received: list[Escalation] = []

    def on_handoff(context: RunContextWrapper[Any], escalation: Escalation) -> None:
        received.append(escalation)

    model = ScriptedModel(escalate_with_reason)
    tech = Agent(name="tech_agent", instructions="tech_agent", model=model)
    triage = Agent(name="triage", model=model, handoffs=[
        handoff(tech, on_handoff=on_handoff, input_type=Escalation)
    ])
    result = runtime.run(triage, "it broke")
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "tech_agent took it"
    assert received == [Escalation(reason="user said 'it broke'")]
    assert [(e.target, e.call_id) for e in result.events if e.type == "handoff"] == [
        ("tech_agent", "call_escalate")
    ]


def route_then_refund(request: Request) -> list[Item]:
    """triage hands off to billing_agent, which refunds, then answers (as a Ticket if asked)."""
    if request.handoffs:
        return [function_call(request.handoffs["billing_agent"], {}, "call_to_billing")]
    if "call_refund" not in request.tool_outputs():
        return [function_call("refund", REFUND_ARGS, "call_refund")]
    if request.structured:
        return [message(Ticket(category="billing", priority=1).model_dump_json())]
    return [message("refunded")]


def test_on_handoff_does_not_run_again_on_resume(database_url: str) -> None:
    callbacks: list[str] = []
    runs: list[dict[str, Any]] = []
    model = ScriptedModel(route_then_refund)
    billing = Agent(name="billing_agent", model=model, tools=[refund_tool(True, runs)])
    triage = Agent(name="triage", model=model, handoffs=[
        handoff(billing, on_handoff=lambda context: callbacks.append("billing_agent"))
    ])
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        first = runtime.run(triage, "refund please")
        assert first.status is Status.WAITING, first.error
        assert callbacks == ["billing_agent"]
        AgentHandle(first.execution_id, runtime=runtime).approve()
        done = runtime.resume(first.execution_id)
        assert done.status is Status.COMPLETED, done.error
        assert runs == [REFUND_ARGS]
        assert callbacks == ["billing_agent"]


# -- 7. structured output ------------------------------------------------------------------


class Ticket(BaseModel):
    """Module-level so keel can record it as `module:qualname` and load it again."""

    category: str
    priority: int


def answer_with_ticket(request: Request) -> list[Item]:
    assert request.structured, "the agent's output_type did not reach the model"
    return [message(Ticket(category="billing", priority=2).model_dump_json())]


def test_pydantic_output_type_survives_a_new_runtime(
    runtime: AgentRuntime, database_url: str
) -> None:
    agent = Agent(name="classifier", model=ScriptedModel(answer_with_ticket),
                  output_type=Ticket)
    result = runtime.run(agent, "charged twice")
    assert result.status is Status.COMPLETED, result.error
    assert isinstance(result.output, Ticket)
    assert result.output == Ticket(category="billing", priority=2)
    done = next(e for e in result.events if e.type == "done")
    assert done.output == {"category": "billing", "priority": 2}
    with AgentRuntime(database_url) as other:
        loaded = other.result(result.execution_id).output
    assert isinstance(loaded, Ticket)
    assert loaded == result.output


def test_output_type_of_a_handoff_target_survives_a_new_runtime(
    runtime: AgentRuntime, database_url: str
) -> None:
    runs: list[dict[str, Any]] = []
    model = ScriptedModel(route_then_refund)
    billing = Agent(name="billing_agent", model=model, tools=[refund_tool(False, runs)],
                    output_type=Ticket)
    triage = Agent(name="triage", model=model, handoffs=[billing])
    result = runtime.run(triage, "refund please")
    assert result.status is Status.COMPLETED, result.error
    assert isinstance(result.output, Ticket)
    with AgentRuntime(database_url) as other:
        loaded = other.result(result.execution_id).output
    assert loaded == Ticket(category="billing", priority=1)


# -- 8. context -----------------------------------------------------------------------------


@dataclass
class UserContext:
    user_id: str
    seen_by_tools: list[str] = field(default_factory=list)


def test_tools_see_the_users_context_object(runtime: AgentRuntime) -> None:
    @function_tool
    def whoami(wrapper: RunContextWrapper[UserContext]) -> str:
        """Who is asking."""
        wrapper.context.seen_by_tools.append("whoami")
        return wrapper.context.user_id

    context = UserContext(user_id="u-42")
    agent = Agent(name="ctx_agent", model=ScriptedModel(tool_then_answer("whoami", {}, "c1")),
                  tools=[whoami])
    result = runtime.run(agent, "who am I?", context=context)
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "whoami said: u-42"
    assert context.seen_by_tools == ["whoami"]


# -- 9. max_turns -----------------------------------------------------------------------------


def test_max_turns_exceeded_fails_the_run(runtime: AgentRuntime) -> None:
    @function_tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel(tool_then_answer("ping", {}, "call_ping"))
    agent = Agent(name="short_agent", model=model, tools=[ping])
    result = runtime.run(agent, "ping", max_turns=1)
    assert result.status is Status.FAILED
    assert model.calls == 1
    errors = [e.content for e in result.events if e.type == "error"]
    assert len(errors) == 1 and errors[0].startswith("MaxTurnsExceeded"), errors
    assert result.error is not None and "MaxTurnsExceeded" in result.error
    assert "done" not in event_types(result)


# -- 10. tool events, done, token usage -------------------------------------------------------


def test_tool_events_done_and_summed_token_usage(
    runtime: AgentRuntime, database_url: str
) -> None:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = ScriptedModel(tool_then_answer("add", {"a": 2, "b": 3}, "call_add_1"),
                          usage=Usage(requests=1, input_tokens=11, output_tokens=4,
                                      total_tokens=15))
    agent = Agent(name="calculator", model=model, tools=[add])
    result = runtime.run(agent, "2 + 3?")
    assert result.status is Status.COMPLETED, result.error
    assert event_types(result) == ["tool_call", "tool_result", "message", "done"]
    call, output, said, done = result.events
    assert (call.agent, call.tool_name, call.call_id, call.args) == (
        "calculator", "add", "call_add_1", {"a": 2, "b": 3})
    assert (output.agent, output.tool_name, output.call_id, output.result) == (
        "calculator", "add", "call_add_1", 5)
    assert said.content == "add said: 5"
    assert (done.agent, done.output) == ("calculator", "add said: 5")
    assert result.output == "add said: 5"
    assert [e.seq for e in result.events] == sorted({e.seq for e in result.events})
    assert result.tool_calls == [ToolCall("add", "call_add_1", {"a": 2, "b": 3}, 5,
                                          "calculator", "done")]
    assert result.token_usage == TokenUsage(requests=2, input_tokens=22, output_tokens=8,
                                            total_tokens=30)
    with AgentRuntime(database_url) as other:
        assert other.result(result.execution_id).events == result.events


def test_no_token_usage_when_the_model_reports_none(runtime: AgentRuntime) -> None:
    agent = Agent(name="quiet", instructions="be quiet", model=ScriptedModel(echo_instructions))
    result = runtime.run(agent, "hi")
    assert result.status is Status.COMPLETED, result.error
    assert result.token_usage is None



def test_a_conversation_goes_on_from_to_input_list_in_any_process(
    runtime: AgentRuntime, database_url: str
) -> None:
    """As with the SDK's RunResult.to_input_list(): the next run gets the whole conversation."""
    seen: list[list[dict[str, Any]]] = []

    def reply(request: Request) -> list[Item]:
        seen.append(request.items)
        if "call_refund" not in request.tool_outputs():
            return [function_call("refund", REFUND_ARGS, "call_refund")]
        return [message(f"turn {len(seen)}: refunded")]

    runs: list[dict[str, Any]] = []
    agent = Agent(name="refunder", model=ScriptedModel(reply), tools=[refund_tool(True, runs)])
    first = runtime.run(agent, "refund INV-1")
    with pytest.raises(keel.KeelError, match="only a completed OpenAI Agents SDK run"):
        first.to_input_list()  # it is waiting: the conversation is not over
    AgentHandle(first.execution_id, runtime=runtime).approve()
    done = runtime.resume(first.execution_id)
    assert done.status is Status.COMPLETED, done.error
    with AgentRuntime(database_url) as other:
        conversation = other.result(done.execution_id).to_input_list()
    assert conversation == done.to_input_list()
    assert [(i.get("role"), i.get("type")) for i in conversation] == [
        ("user", None), (None, "function_call"), (None, "function_call_output"),
        ("assistant", "message")]
    assert conversation[0]["content"] == "refund INV-1"

    follow_up = runtime.run(agent, [*conversation, {"role": "user", "content": "Thanks!"}])
    assert follow_up.status is Status.COMPLETED, follow_up.error
    assert seen[-1][:4] == conversation  # the model saw the first run's conversation
    assert follow_up.to_input_list()[-1]["content"][0]["text"] == "turn 3: refunded"
    assert runs == [REFUND_ARGS]  # the answered call was not asked or run again


def test_only_openai_runs_have_an_input_list(runtime: AgentRuntime) -> None:
    graph = scripted_agent("langgraph", [], [])
    with pytest.raises(keel.KeelError, match="continues its thread"):
        runtime.run(graph, {"messages": [("user", "hi")]}).to_input_list()

# -- 11. the SDK's own needs_approval ---------------------------------------------------------


def test_native_needs_approval_true_waits_then_runs_once(runtime: AgentRuntime) -> None:
    runs: list[dict[str, Any]] = []
    model = ScriptedModel(tool_then_answer("refund", REFUND_ARGS, "call_refund"))
    agent = Agent(name="refunder", model=model, tools=[refund_tool(True, runs)])
    first = runtime.run(agent, "refund INV-1")
    assert first.status is Status.WAITING, first.error
    assert [(p.tool_name, p.call_id, p.args, p.agent, p.rule)
            for p in first.pending_approvals] == [
        ("refund", "call_refund", REFUND_ARGS, "refunder", "needs_approval")
    ]
    assert runs == []
    assert event_types(first) == ["tool_call", "waiting"]

    AgentHandle(first.execution_id, runtime=runtime).approve(reviewer="dana")
    done = runtime.resume(first.execution_id)
    assert done.status is Status.COMPLETED, done.error
    assert done.output == "refund said: refunded 250 on INV-1"
    assert runs == [REFUND_ARGS]
    assert model.calls == 2  # turn 0 was answered from the journal on resume


async def never(context: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
    return False


def never_sync(context: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
    return False


@pytest.mark.parametrize("needs_approval", [False, never, never_sync],
                         ids=["false", "async-callable", "sync-callable"])
def test_needs_approval_that_says_no_lets_the_call_run(
    runtime: AgentRuntime, needs_approval: Any
) -> None:
    runs: list[dict[str, Any]] = []
    model = ScriptedModel(tool_then_answer("refund", REFUND_ARGS, "call_refund"))
    agent = Agent(name="refunder", model=model, tools=[refund_tool(needs_approval, runs)])
    result = runtime.run(agent, "refund INV-1")
    assert result.status is Status.COMPLETED, result.error
    assert runs == [REFUND_ARGS]
    assert result.pending_approvals == []
    assert runtime.store.approvals(result.execution_id) == []


def test_needs_approval_callable_sees_the_arguments(runtime: AgentRuntime) -> None:
    asked: list[tuple[dict[str, Any], str]] = []

    async def over_100(context: RunContextWrapper[Any], params: dict[str, Any],
                       call_id: str) -> bool:
        asked.append((params, call_id))
        return int(params["amount"]) > 100

    runs: list[dict[str, Any]] = []
    model = ScriptedModel(tool_then_answer("refund", REFUND_ARGS, "call_refund"))
    agent = Agent(name="refunder", model=model, tools=[refund_tool(over_100, runs)])
    result = runtime.run(agent, "refund INV-1")
    assert result.status is Status.WAITING, result.error
    assert asked == [(REFUND_ARGS, "call_refund")]
    assert [p.call_id for p in result.pending_approvals] == ["call_refund"]
    assert runs == []


# -- 12. the user's call_model_input_filter ---------------------------------------------------


def sign_instructions(data: CallModelData[Any]) -> ModelInputData:
    return ModelInputData(input=data.model_data.input,
                          instructions=f"{data.model_data.instructions} [filtered]")


async def sign_instructions_async(data: CallModelData[Any]) -> ModelInputData:
    return sign_instructions(data)


@pytest.mark.parametrize("user_filter", [sign_instructions, sign_instructions_async],
                         ids=["sync", "async"])
def test_users_call_model_input_filter_still_runs(
    runtime: AgentRuntime, user_filter: Callable[[CallModelData[Any]], Any]
) -> None:
    seen: list[tuple[str, Any]] = []

    def recording_filter(data: CallModelData[Any]) -> Any:
        seen.append((data.agent.name, data.context))
        return user_filter(data)

    agent = Agent(name="filtered", instructions="Be brief.",
                  model=ScriptedModel(echo_instructions))
    context = {"tenant": "acme"}
    result = runtime.run(agent, "hi", context=context,
                         run_config=RunConfig(call_model_input_filter=recording_filter))
    assert result.status is Status.COMPLETED, result.error
    assert result.output == "instructions were: Be brief. [filtered]"
    assert seen == [("filtered", context)]


# -- 13. agents called as tools (agent.as_tool()) ---------------------------------------------


def boss_asks_billing_to_refund(request: Request) -> list[Item]:
    """The boss calls the billing agent as a tool; billing refunds, then says so."""
    outputs = request.tool_outputs()
    if request.instructions == "billing":
        if "call_refund" not in outputs:
            return [function_call("refund", REFUND_ARGS, "call_refund")]
        return [message(f"billing: {outputs['call_refund']}")]
    if "call_billing" not in outputs:
        return [function_call("billing_tool", {"input": "refund INV-1"}, "call_billing")]
    return [message(f"boss: {outputs['call_billing']}")]


def gated_refund(how: str, runs: list[dict[str, Any]]) -> Any:
    """The refund tool, gated by keel's flag, by the runtime's rules or by the SDK's flag."""
    if how == "keel":
        @keel.tool(approval_required=True)
        def refund(invoice_id: str, amount: int) -> str:
            """Refund an invoice."""
            runs.append({"invoice_id": invoice_id, "amount": amount})
            return f"refunded {amount} on {invoice_id}"

        return refund
    return refund_tool(how == "needs_approval", runs)


def _boss_with_billing_as_a_tool(refund: Any) -> tuple[ScriptedModel, Agent[Any]]:
    """The boss agent, with the billing agent (its one tool `refund`) as its tool."""
    model = ScriptedModel(boss_asks_billing_to_refund)
    billing = Agent(name="billing", instructions="billing", model=model, tools=[refund])
    return model, Agent(name="boss", instructions="boss", model=model, tools=[
        billing.as_tool(tool_name="billing_tool", tool_description="Billing.")])


@pytest.mark.parametrize("how", ["keel", "require_approval", "needs_approval"])
def test_gated_tool_of_an_agent_tool_waits_then_runs_once(database_url: str, how: str) -> None:
    runs: list[dict[str, Any]] = []
    model, boss = _boss_with_billing_as_a_tool(gated_refund(how, runs))
    rules = {"require_approval": ["refund"]} if how == "require_approval" else {}
    with AgentRuntime(database_url, auto_resume=False, **rules) as runtime:
        first = runtime.run(boss, "refund INV-1")
        assert first.status is Status.WAITING, first.error
        assert [(p.tool_name, p.call_id, p.args, p.agent) for p in first.pending_approvals] == [
            ("refund", "call_refund", REFUND_ARGS, "billing")]
        assert runs == []
        assert [(e.type, e.agent, e.call_id) for e in first.events] == [
            ("tool_call", "boss", "call_billing"), ("tool_call", "billing", "call_refund"),
            ("waiting", "billing", "call_refund")]
        AgentHandle(first.execution_id, runtime=runtime).approve()
    with AgentRuntime(database_url, auto_resume=False, **rules) as other:
        done = other.resume(first.execution_id, agent=boss)
        assert done.status is Status.COMPLETED, done.error
        assert done.output == "boss: billing: refunded 250 on INV-1"
        assert runs == [REFUND_ARGS]
        assert model.calls == 4  # the nested run's first turn was answered from the journal
        assert steps_of(other, done) == {
            "model:0": ("model", "boss"),
            "model:call_billing/0": ("model", "billing"),
            "tool:call_refund": ("tool", "refund"),
            "model:call_billing/1": ("model", "billing"),
            "tool:call_billing": ("tool", "billing_tool"),
            "model:1": ("model", "boss"),
        }
        assert other.resume(first.execution_id, agent=boss).output == done.output
    assert runs == [REFUND_ARGS]


def test_rejected_tool_of_an_agent_tool_tells_the_nested_agent(runtime: AgentRuntime) -> None:
    runs: list[dict[str, Any]] = []
    model, boss = _boss_with_billing_as_a_tool(refund_tool(True, runs))
    first = runtime.run(boss, "refund INV-1")
    AgentHandle(first.execution_id, runtime=runtime).reject("too large")
    done = runtime.resume(first.execution_id)
    assert done.status is Status.COMPLETED, done.error
    assert done.output == ("boss: billing: The call to refund was rejected by the reviewer and "
                           "did not run: too large")
    assert runs == []


def test_an_agent_tool_keel_cannot_wrap_is_refused(runtime: AgentRuntime) -> None:
    async def run_agent(context: Any, arguments: str) -> str:  # not the SDK's own invocation
        return "ran without keel"

    billing = Agent(name="billing", instructions="billing", tools=[refund_tool(True, [])])
    tool = dataclasses.replace(billing.as_tool(tool_name="billing_tool", tool_description="B."),
                               on_invoke_tool=run_agent)
    boss = Agent(name="boss", instructions="boss",
                 model=ScriptedModel(boss_asks_billing_to_refund), tools=[tool])
    result = runtime.run(boss, "refund INV-1")
    assert result.status is Status.FAILED
    assert result.error is not None and "UnsupportedAgentError" in result.error
    assert "'billing_tool' (made by Agent.as_tool())" in result.error


# -- 14. gated calls whose arguments are not JSON ---------------------------------------------


def bad_arguments_then_answer(request: Request) -> list[Item]:
    outputs = request.tool_outputs()
    if "call_bad" not in outputs:
        call = function_call("refund", {}, "call_bad")
        return [call.model_copy(update={"arguments": "{not json"})]
    return [message(f"saw: {outputs['call_bad']}")]


@pytest.mark.parametrize("how", ["keel", "needs_approval"])
@pytest.mark.parametrize(("decide", "seen"), [
    ("approve", "An error occurred while running the tool. Please try again."),
    ("reject", "The call to refund was rejected by the reviewer and did not run: no"),
])
def test_gated_call_with_unparseable_arguments_can_be_decided(
    runtime: AgentRuntime, how: str, decide: str, seen: str
) -> None:
    runs: list[dict[str, Any]] = []
    agent = Agent(name="refunder", model=ScriptedModel(bad_arguments_then_answer),
                  tools=[gated_refund(how, runs)])
    first = runtime.run(agent, "refund")
    assert first.status is Status.WAITING, first.error
    assert [(p.call_id, p.args) for p in first.pending_approvals] == [("call_bad", "{not json")]
    handle = AgentHandle(first.execution_id, runtime=runtime)
    handle.approve() if decide == "approve" else handle.reject("no")
    done = runtime.resume(first.execution_id)
    assert done.status is Status.COMPLETED, done.error
    assert done.output == f"saw: {seen}"  # as the SDK answers: the tool's argument error
    assert runs == []


# -- 15. the SDK's tool timeout ---------------------------------------------------------------


def slow_then_gated(request: Request) -> list[Item]:
    outputs = request.tool_outputs()
    if "call_slow" not in outputs:
        return [function_call("slow_charge", {}, "call_slow")]
    if "call_refund" not in outputs:
        return [function_call("refund", REFUND_ARGS, "call_refund")]
    return [message(f"{outputs['call_slow']} | {outputs['call_refund']}")]


def test_a_timed_out_call_is_journaled_and_not_run_again(runtime: AgentRuntime) -> None:
    charges: list[str] = []

    async def slow_charge() -> str:
        """Charge, slowly."""
        charges.append("charged")
        await asyncio.sleep(5)
        return "late"

    runs: list[dict[str, Any]] = []
    unsafe_slow = keel.tool(side_effects="unsafe")(function_tool(slow_charge, timeout=0.05))
    agent = Agent(name="charger", model=ScriptedModel(slow_then_gated),
                  tools=[unsafe_slow, refund_tool(True, runs)])
    first = runtime.run(agent, "charge, then refund")
    assert first.status is Status.WAITING, first.error
    timed_out = "Tool 'slow_charge' timed out after 0.05 seconds."
    assert [(c.name, c.status, c.result) for c in first.tool_calls][0] == (
        "slow_charge", "done", timed_out)
    AgentHandle(first.execution_id, runtime=runtime).approve()
    done = runtime.resume(first.execution_id)
    assert done.status is Status.COMPLETED, done.error  # not IN_DOUBT: the outcome is known
    assert done.output == f"{timed_out} | refunded 250 on INV-1"
    assert charges == ["charged"]


# -- 16. a dataclass context ------------------------------------------------------------------


@dataclass
class Notes:
    notes: list[str] = field(default_factory=list)


def note_then_refund(request: Request) -> list[Item]:
    outputs = request.tool_outputs()
    if "call_note" not in outputs:
        return [function_call("add_note", {"note": "first"}, "call_note")]
    if "call_refund" not in outputs:
        return [function_call("refund", REFUND_ARGS, "call_refund")]
    return [message(outputs["call_refund"])]


def test_dataclass_context_changes_survive_a_resume_elsewhere(database_url: str) -> None:
    @function_tool
    def add_note(wrapper: RunContextWrapper[Notes], note: str) -> str:
        """Add a note."""
        wrapper.context.notes.append(note)
        return "noted"

    @keel.tool(approval_required=True)
    def refund(wrapper: RunContextWrapper[Notes], invoice_id: str, amount: int) -> str:
        """Refund an invoice."""
        return f"refunded {amount}, notes: {wrapper.context.notes}"

    agent = Agent(name="clerk", model=ScriptedModel(note_then_refund), tools=[add_note, refund])
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        first = runtime.run(agent, "note, then refund", context=Notes())
        assert first.status is Status.WAITING, first.error
        AgentHandle(first.execution_id, runtime=runtime).approve()
    with AgentRuntime(database_url, auto_resume=False) as other:  # the context is code: given again
        done = other.resume(first.execution_id, agent=agent, context=Notes())
    assert done.status is Status.COMPLETED, done.error
    assert done.output == "refunded 250, notes: ['first']"
