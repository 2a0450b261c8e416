"""LangGraph graphs run unchanged under keel: the support team as a swarm graph, approvals on
keel's store, the user's own interrupt(), builders, configs and the user's checkpointer."""

from __future__ import annotations

import json
import operator
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from examples.support_triage import backend
from examples.support_triage.graph import support_graph, triage_graph
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import InjectedToolArg
from langchain_core.tools import tool as lc_tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt

import keel
from keel import AgentHandle, AgentRuntime, Status, UnsupportedAgentError

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
ANSWER = ("I've refunded $99.00 for invoice INV-8821. You'll see it on your statement in 3-5 "
          "business days.")


@pytest.fixture(autouse=True)
def _clean_backend() -> None:
    backend.REFUNDS.clear()


def _last_text(result: Any) -> str:
    """The final state's last message (the output is the state, as JSON data)."""
    return str(result.output["messages"][-1]["content"])


def _types(result: Any) -> list[str]:
    return [e.type for e in result.events if e.type != "thinking"]


def test_the_support_graph_waits_for_the_refund_and_finishes_once_approved(
    runtime: AgentRuntime, database_url: str
) -> None:
    waiting = runtime.run(triage_graph, TICKET)
    assert waiting.status is Status.WAITING
    assert [(p.tool_name, p.args, p.agent) for p in waiting.pending_approvals] == [
        ("process_refund", {"invoice_id": "INV-8821", "reason": "Duplicate charge"},
         "billing_specialist")]
    assert backend.REFUNDS == []
    # Another process decides and resumes, with nothing but the execution id.
    with AgentRuntime(database_url, auto_resume=False) as other:
        AgentHandle(waiting.execution_id, runtime=other).approve(reviewer="dana")
        done = other.resume(waiting.execution_id, triage_graph)
    assert done.status is Status.COMPLETED
    assert _last_text(done) == ANSWER
    assert _types(done) == [
        "tool_call", "tool_result", "handoff", "tool_call", "tool_result", "tool_call",
        "waiting", "approved", "resumed", "tool_result", "message", "done"]
    at = next(i for i, e in enumerate(done.events) if e.type == "handoff")
    handoff, started = done.events[at], done.events[at + 1]  # announced, then the agent starts
    assert (handoff.agent, handoff.target) == ("support_triage", "billing_specialist")
    assert (started.type, started.content) == ("thinking", "billing_specialist")
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]  # exactly once
    assert {e.content for e in done.events if e.type == "thinking"} >= {
        "support_triage", "billing_specialist", "agent", "tools"}


def test_a_rejected_refund_never_runs_and_the_model_hears_why(runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_graph, TICKET)
    AgentHandle(waiting.execution_id, runtime=runtime).reject("Refunds need a manager.")
    done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert "Refunds need a manager." in _last_text(done)
    assert backend.REFUNDS == []
    refund = next(c for c in done.tool_calls if c.name == "process_refund")
    assert refund.status == "rejected"


def test_require_approval_gates_the_handoff_tool_of_an_unmodified_graph(
    database_url: str,
) -> None:
    with AgentRuntime(database_url, require_approval=["transfer_to_*"]) as runtime:
        waiting = runtime.run(triage_graph, "I cannot log in, the page shows an error")
        assert [p.tool_name for p in waiting.pending_approvals] == [
            "transfer_to_technical_specialist"]
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert [e.target for e in done.events if e.type == "handoff"] == ["technical_specialist"]
    assert "operational" in _last_text(done)


class Draft(TypedDict):
    log: Annotated[list[str], operator.add]
    reply: str


def write_draft(state: Draft) -> dict[str, Any]:
    return {"log": ["drafted"], "reply": "Your refund is on its way."}


def review(state: Draft) -> dict[str, Any]:
    decision = interrupt({"question": "Send this reply?", "reply": state["reply"]})
    return {"log": [f"review: {json.dumps(decision, sort_keys=True)}"]}


def chain(*nodes: Any) -> StateGraph[Any, Any, Any, Any]:
    """A builder running `nodes` (functions) one after another on the Draft state."""
    builder = StateGraph(Draft)
    previous = START
    for node in nodes:
        builder.add_node(node.__name__, node)
        builder.add_edge(previous, node.__name__)
        previous = node.__name__
    builder.add_edge(previous, END)
    return builder


def draft_builder() -> StateGraph[Any, Any, Any, Any]:
    return chain(write_draft, review)


draft_graph = draft_builder().compile(name="drafter")


@pytest.mark.parametrize(("decide", "expected"), [
    (lambda h: h.approve(), {"type": "approve"}),
    (lambda h: h.reject("too curt"), {"reason": "too curt", "type": "reject"}),
    (lambda h: h.respond({"type": "edit", "reply": "Refunded: $99."}),
     {"reply": "Refunded: $99.", "type": "edit"}),
])
def test_the_users_own_interrupt_is_a_keel_approval(
    runtime: AgentRuntime, decide: Any, expected: dict[str, Any]
) -> None:
    waiting = runtime.run(draft_graph, {"log": [], "reply": ""})
    assert waiting.status is Status.WAITING
    (pending,) = waiting.pending_approvals
    assert (pending.tool_name, pending.args) == (
        "interrupt", {"question": "Send this reply?", "reply": "Your refund is on its way."})
    assert pending.rule == "interrupt() in the graph"
    decide(AgentHandle(waiting.execution_id, runtime=runtime))
    done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert done.output["log"] == ["drafted", f"review: {json.dumps(expected, sort_keys=True)}"]


def test_a_builder_is_compiled_with_keels_checkpointer(runtime: AgentRuntime) -> None:
    builder = draft_builder()
    waiting = runtime.run(builder, {"log": [], "reply": ""}, config={
        "configurable": {"thread_id": "ticket-42"}})
    assert waiting.status is Status.WAITING
    with runtime.store.reading() as conn:
        threads = conn.exec_driver_sql(
            "SELECT DISTINCT thread_id FROM keel_lg_checkpoints").scalars().all()
    assert threads == ["ticket-42"]
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    assert runtime.resume(waiting.execution_id, builder).status is Status.COMPLETED


def test_a_users_own_checkpointer_is_kept(runtime: AgentRuntime) -> None:
    saver = InMemorySaver()
    graph = draft_builder().compile(checkpointer=saver, name="drafter")
    waiting = runtime.run(graph, {"log": [], "reply": ""})
    assert waiting.status is Status.WAITING
    assert list(saver.list(None))  # the graph's state went to the user's checkpointer
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    assert runtime.resume(waiting.execution_id, graph).status is Status.COMPLETED


def test_a_string_is_the_first_message_and_config_passes_through(
    runtime: AgentRuntime,
) -> None:
    graph = support_graph()
    failed = runtime.run(graph, "Please check my account", config={"recursion_limit": 2})
    assert failed.status is Status.FAILED and "recursion" in (failed.error or "").lower()
    done = runtime.run(graph, "Please check my account")
    assert done.status is Status.COMPLETED
    first, *_, last = done.output["messages"]
    assert (first["type"], first["content"]) == ("human", "Please check my account")
    assert (last["type"], last["content"]) == (
        "ai", "I've reviewed your account; a specialist will follow up on your request.")


def test_objects_that_are_not_graphs_name_the_supported_frameworks(
    runtime: AgentRuntime,
) -> None:
    with pytest.raises(UnsupportedAgentError, match=r"LangGraph graphs .*keel\[langgraph\]"):
        runtime.run(object(), "hi")


def test_the_sequential_pipeline_hands_off_from_agent_to_agent(runtime: AgentRuntime) -> None:
    from examples.support_pipeline.graph import TICKET as PIPELINE_TICKET
    from examples.support_pipeline.graph import pipeline

    result = runtime.run(pipeline, PIPELINE_TICKET)
    assert result.status is Status.COMPLETED
    handoffs = [(e.agent, e.target) for e in result.events if e.type == "handoff"]
    assert handoffs == [("classifier", "responder"), ("responder", "escalation_checker")]
    messages = [(e.agent, e.content) for e in result.events if e.type == "message"]
    assert [agent for agent, _ in messages] == ["classifier", "responder", "escalation_checker"]
    assert messages[0][1].startswith("Priority: P1")
    assert _last_text(result).startswith("Escalate: yes.")


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_a_prebuilt_react_agent_built_before_keel_saw_it_is_journaled_and_gated(
    database_url: str,
) -> None:
    from examples.support_triage.graph import SupportChatModel, get_account
    from langgraph.prebuilt import create_react_agent

    agent = create_react_agent(SupportChatModel(), [get_account], name="accounts")
    with AgentRuntime(database_url, require_approval=["get_account"]) as runtime:
        waiting = runtime.run(agent, "Is my plan active?")
        assert [p.tool_name for p in waiting.pending_approvals] == ["get_account"]
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id, agent)
    assert done.status is Status.COMPLETED
    (call,) = done.tool_calls
    assert (call.name, call.status) == ("get_account", "done")
    assert "cust_123" in str(call.result)


def test_langchains_create_agent_and_its_own_human_in_the_loop(runtime: AgentRuntime) -> None:
    from examples.support_triage.graph import SupportChatModel, get_account
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware

    agent = create_agent(SupportChatModel(), [get_account], name="accounts", middleware=[
        HumanInTheLoopMiddleware(interrupt_on={"get_account": True})])
    waiting = runtime.run(agent, "Is my plan active?")
    (pending,) = waiting.pending_approvals
    assert pending.tool_name == "interrupt"
    assert pending.args["action_requests"][0]["name"] == "get_account"
    # The middleware's own answer format goes through respond() unchanged.
    AgentHandle(waiting.execution_id, runtime=runtime).respond(
        {"decisions": [{"type": "approve"}]})
    done = runtime.resume(waiting.execution_id, agent)
    assert done.status is Status.COMPLETED
    assert [c.name for c in done.tool_calls] == ["get_account"]
    assert _last_text(done) == (
        "I've reviewed your account; a specialist will follow up on your request.")


GATE = threading.Event()


def wait_for_gate(state: Draft) -> dict[str, Any]:
    assert GATE.wait(20), "the test never opened the gate"
    return {"log": ["reviewed"]}


def test_events_stream_live_while_the_graph_runs(runtime: AgentRuntime) -> None:
    GATE.clear()
    seen = []
    graph = chain(write_draft, wait_for_gate).compile(name="slow")
    for event in runtime.stream(graph, {"log": [], "reply": ""}):
        seen.append((event.type, getattr(event, "content", None)))
        if seen[-1] == ("thinking", "wait_for_gate"):
            GATE.set()  # the first node's events arrived while the second one blocks
    assert seen[:2] == [("thinking", "write_draft"), ("thinking", "wait_for_gate")]
    assert seen[-1][0] == "done"


def test_a_functional_entrypoint_runs_and_pauses(runtime: AgentRuntime) -> None:
    from langgraph.func import entrypoint, task

    @task
    def draft(ticket: str) -> str:
        return f"Re: {ticket} - refund issued."

    @entrypoint()
    def reply(ticket: str) -> dict[str, Any]:
        text = draft(ticket).result()
        decision = interrupt({"send": text})
        return {"reply": text, "decision": decision}

    waiting = runtime.run(reply, "INV-8821")
    assert [p.args for p in waiting.pending_approvals] == [
        {"send": "Re: INV-8821 - refund issued."}]
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, reply)
    assert done.output == {"reply": "Re: INV-8821 - refund issued.",
                           "decision": {"type": "approve"}}


SENT: list[str] = []


@keel.tool(approval_required=True)
def send_reply(ticket: str, text: str) -> str:
    """Post the reply on the ticket."""
    SENT.append(text)
    return f"sent to {ticket}"


def send(state: Draft) -> dict[str, Any]:
    # A custom node calling a keel tool directly: no model and no ToolNode involved.
    return {"log": [send_reply("TKT-7", state["reply"])]}


def test_a_keel_tool_called_from_a_custom_node_is_gated_and_runs_once(
    runtime: AgentRuntime,
) -> None:
    SENT.clear()
    graph = chain(write_draft, send).compile(name="sender")
    waiting = runtime.run(graph, {"log": [], "reply": ""})
    (pending,) = waiting.pending_approvals
    assert (pending.tool_name, pending.args) == (
        "send_reply", {"ticket": "TKT-7", "text": "Your refund is on its way."})
    assert SENT == []
    AgentHandle(waiting.execution_id, runtime=runtime).approve()
    done = runtime.resume(waiting.execution_id, graph)
    assert done.output["log"] == ["drafted", "sent to TKT-7"]
    assert SENT == ["Your refund is on its way."]
    (call,) = done.tool_calls
    assert (call.name, call.result, call.status) == ("send_reply", "sent to TKT-7", "done")
    assert send_reply("TKT-8", "outside a run") == "sent to TKT-8"  # a plain call elsewhere


def test_a_supervisor_that_sends_to_two_agents_hands_off_to_both(
    runtime: AgentRuntime,
) -> None:
    from examples.support_triage.graph import SupportChatModel, get_account, specialist
    from langgraph.graph import MessagesState
    from langgraph.types import Send

    model = SupportChatModel()
    graph = StateGraph(MessagesState)
    graph.add_node("supervisor", specialist("supervisor", model, []))
    graph.add_node("accounts", specialist("accounts", model, [get_account]))
    graph.add_node("audit", specialist("audit", model, [get_account]))
    graph.add_edge(START, "supervisor")
    graph.add_conditional_edges(
        "supervisor", lambda state: [Send("accounts", state), Send("audit", state)],
        ["accounts", "audit"])
    graph.add_edge("accounts", END)
    graph.add_edge("audit", END)
    result = runtime.run(graph.compile(name="fan_out"), "Please check my account")
    assert result.status is Status.COMPLETED
    handoffs = sorted((e.agent, e.target) for e in result.events if e.type == "handoff")
    assert handoffs == [("supervisor", "accounts"), ("supervisor", "audit")]


def test_one_builder_on_two_stores_keeps_each_graphs_checkpoints_in_its_own(
    tmp_path: Path, database_url: str
) -> None:
    builder = chain(write_draft)
    counts = []
    for url in (database_url, f"sqlite:///{tmp_path}/second.db"):
        with AgentRuntime(url) as runtime:
            assert runtime.run(builder, {"log": [], "reply": ""}).status is Status.COMPLETED
            with runtime.store.reading() as conn:
                counts.append(conn.exec_driver_sql(
                    "SELECT COUNT(DISTINCT thread_id) FROM keel_lg_checkpoints").scalar())
    assert counts == [1, 1]


def test_a_toolnodes_own_sync_wrapper_keeps_working_under_keel(runtime: AgentRuntime) -> None:
    from examples.support_triage.graph import SupportChatModel, get_account
    from langgraph.graph import MessagesState
    from langgraph.prebuilt import ToolNode, tools_condition

    seen: list[str] = []

    def audit(request: Any, execute: Any) -> Any:
        seen.append(request.tool_call["name"])
        return execute(request)

    bound = SupportChatModel().bind_tools([get_account])
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda state: {"messages": [bound.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode([get_account], wrap_tool_call=audit))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    done = runtime.run(graph.compile(name="audited"), "Is my plan active?")
    assert done.status is Status.COMPLETED
    assert seen == ["get_account"]  # the user's wrapper ran, once
    assert [(c.name, "cust_123" in str(c.result)) for c in done.tool_calls] == [
        ("get_account", True)]  # and keel journaled the call it made


class TurnsModel(BaseChatModel):
    """Says `turns[n]` after n answers of its own: text, or tool calls as (name, args, id)."""

    turns: list[Any]

    @property
    def _llm_type(self) -> str:
        return "turns"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        turn = self.turns[sum(isinstance(m, AIMessage) for m in messages)]
        message = turn if isinstance(turn, AIMessage) else AIMessage(content="", tool_calls=[
            {"name": name, "args": args, "id": call_id, "type": "tool_call"}
            for name, args, call_id in turn])
        return ChatResult(generations=[ChatGeneration(message=message)])


PAID: list[str] = []


@lc_tool
def pay(who: str) -> str:
    """Pay someone."""
    PAID.append(who)
    return f"paid {who}"


def tool_loop(model: BaseChatModel, name: str, tools: list[Any] | None = None) -> Any:
    """A hand-written agent: a model node, a ToolNode (of `pay`, unless `tools`) and
    LangGraph's tools_condition."""
    tools = tools or [pay]
    bound = model.bind_tools(tools)
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda state: {"messages": [bound.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name=name)


def test_parallel_gated_calls_in_one_toolnode_wait_together_and_each_runs_once(
    database_url: str,
) -> None:
    PAID.clear()
    model = TurnsModel(turns=[[("pay", {"who": "alice"}, "c1"), ("pay", {"who": "bob"}, "c2"),
                               ("pay", {"who": "carol"}, "c3")], AIMessage(content="Done.")])
    graph = tool_loop(model, "payer")
    with AgentRuntime(database_url, require_approval=["pay"]) as runtime:
        waiting = runtime.run(graph, "Pay them.")
        assert [(p.call_id, p.args) for p in waiting.pending_approvals] == [
            ("c1", {"who": "alice"}), ("c2", {"who": "bob"}), ("c3", {"who": "carol"})]
        handle = AgentHandle(waiting.execution_id, runtime=runtime)
        handle.approve("c1")
        handle.reject("Not bob.", call_id="c2")
        handle.approve("c3")
        done = runtime.resume(waiting.execution_id, graph)
    assert done.status is Status.COMPLETED
    assert sorted(PAID) == ["alice", "carol"]
    assert [(c.call_id, c.status) for c in done.tool_calls] == [
        ("c1", "done"), ("c2", "rejected"), ("c3", "done")]


def invoke_from_a_node(inner: Any, *, asynchronous: bool) -> Any:
    """An outer graph whose node invokes `inner` itself (LangGraph's "call a subgraph from a
    node", for a graph with another state), which keel finds by the variable it closes over."""
    class Outer(TypedDict):
        request: str
        answer: str

    def call_agent(state: Outer) -> dict[str, Any]:
        out = inner.invoke({"messages": [("user", state["request"])]})
        return {"answer": out["messages"][-1].content}

    async def acall_agent(state: Outer) -> dict[str, Any]:
        out = await inner.ainvoke({"messages": [("user", state["request"])]})
        return {"answer": out["messages"][-1].content}

    return chain_of(Outer, acall_agent if asynchronous else call_agent)


def chain_of(state: Any, node: Any) -> Any:
    graph = StateGraph(state)
    graph.add_node("call_agent", node)
    graph.add_edge(START, "call_agent")
    graph.add_edge("call_agent", END)
    return graph.compile(name="outer")


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_gated_tool_in_a_graph_that_a_node_invokes_waits_for_approval(
    database_url: str, asynchronous: bool,
) -> None:
    PAID.clear()
    inner = tool_loop(TurnsModel(turns=[[("pay", {"who": "alice"}, "p1")],
                                        AIMessage(content="Paid.")]), "payer")
    outer = invoke_from_a_node(inner, asynchronous=asynchronous)
    with AgentRuntime(database_url, require_approval=["pay"]) as runtime:
        waiting = runtime.run(outer, {"request": "Pay alice.", "answer": ""})
        assert [(p.tool_name, p.call_id) for p in waiting.pending_approvals] == [("pay", "p1")]
        assert PAID == []
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id, outer)
    assert (done.status, done.output["answer"]) == (Status.COMPLETED, "Paid.")
    assert PAID == ["alice"]
    assert [(c.call_id, c.status) for c in done.tool_calls] == [("p1", "done")]


def test_a_gated_tool_that_keel_cannot_find_is_refused_before_it_runs(
    database_url: str,
) -> None:
    PAID.clear()

    class Outer(TypedDict):
        request: str
        answer: str

    def call_agent(state: Outer) -> dict[str, Any]:
        inner = tool_loop(TurnsModel(turns=[[("pay", {"who": "alice"}, "p1")],
                                            AIMessage(content="Paid.")]), "payer")
        out = inner.invoke({"messages": [("user", state["request"])]})  # made at run time
        return {"answer": out["messages"][-1].content}

    with AgentRuntime(database_url, require_approval=["pay"]) as runtime:
        failed = runtime.run(chain_of(Outer, call_agent), {"request": "Pay alice.",
                                                          "answer": ""})
    assert failed.status is Status.FAILED
    assert "KeelError: The tool 'pay' may need approval" in (failed.error or "")
    assert "Add that graph to the parent graph as a node" in (failed.error or "")
    assert PAID == []


def test_a_gated_tool_inside_another_tool_is_refused_before_it_runs(database_url: str) -> None:
    """A tool that runs an agent of its own (LangGraph's "agent as a tool"): the gated tool
    in that agent's ToolNode once ran undecided, since a call was already running."""
    PAID.clear()
    payer = tool_loop(TurnsModel(turns=[[("pay", {"who": "alice"}, "p1")],
                                        AIMessage(content="Paid.")]), "payer")

    @lc_tool
    def ask_payer(request: str) -> str:
        """Ask the payer agent."""
        return str(payer.invoke({"messages": [("user", request)]})["messages"][-1].content)

    boss = tool_loop(TurnsModel(turns=[[("ask_payer", {"request": "Pay alice."}, "b1")],
                                       AIMessage(content="Done.")]), "boss", [ask_payer])
    with AgentRuntime(database_url, require_approval=["pay"]) as runtime:
        result = runtime.run(boss, "Pay alice.")
    assert PAID == []
    assert result.status is Status.FAILED
    assert "KeelError: The tool 'pay' may need approval" in (result.error or "")
    assert "inside another tool" in (result.error or "")


REFUNDED: list[str] = []


@keel.tool(approval_required=True)
@lc_tool
def refund_invoice(invoice: str) -> str:
    """Refund an invoice."""
    REFUNDED.append(invoice)
    return f"refunded {invoice}"


class Refund(TypedDict):
    answer: str


async def refund_from_code(state: Refund) -> dict[str, Any]:
    # A node's own code calls a marked LangChain tool the LangChain way (a thread runs it).
    return {"answer": await refund_invoice.ainvoke({"invoice": "INV-7"})}


@pytest.mark.parametrize("node", [
    lambda state: {"answer": refund_invoice.invoke({"invoice": "INV-7"})}, refund_from_code],
    ids=["invoke", "ainvoke"])
def test_a_marked_langchain_tool_invoked_from_a_node_is_gated_and_runs_once(
    database_url: str, node: Any,
) -> None:
    REFUNDED.clear()
    graph = chain_of(Refund, node)
    with AgentRuntime(database_url) as runtime:
        waiting = runtime.run(graph, {"answer": ""})
        assert [(p.tool_name, p.args) for p in waiting.pending_approvals] == [
            ("refund_invoice", {"invoice": "INV-7"})]
        assert REFUNDED == []
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id, graph)
        assert (done.status, done.output) == (Status.COMPLETED, {"answer": "refunded INV-7"})
        assert runtime.resume(waiting.execution_id, graph).output == done.output
    assert REFUNDED == ["INV-7"]
    assert refund_invoice.invoke({"invoice": "INV-8"}) == "refunded INV-8"  # outside a run


def test_a_marked_langchain_tool_keel_cannot_route_is_refused_from_a_node(
    runtime: AgentRuntime,
) -> None:
    from langchain_core.tools import BaseTool

    class Wire(BaseTool):  # a tool class of the user's own: no function for keel to route
        name: str = "wire"
        description: str = "Wire money."

        def _run(self, to: str) -> str:
            PAID.append(to)
            return f"wired {to}"

    PAID.clear()
    wire = keel.tool(approval_required=True)(Wire())
    failed = runtime.run(chain_of(Refund, lambda state: {"answer": wire.invoke({"to": "bob"})}),
                         {"answer": ""})
    assert failed.status is Status.FAILED
    assert "The tool 'wire' may need approval (@keel.tool(approval_required=True))" in (
        failed.error or "")
    assert PAID == []


def pay_from_code(who: str) -> Any:
    return chain_of(Refund, lambda state: {"answer": pay.invoke({"who": who})})


@pytest.mark.parametrize("rules", [
    {"require_approval": ["refund"]},
    {"approval_policy": [keel.Rule("refund", then=keel.Ask())]},
    {"approval_policy": lambda name, args, ctx: keel.Ask() if name == "refund" else None},
], ids=["require_approval", "rule_list", "callable_policy"])
def test_a_tool_a_node_invokes_runs_when_no_rule_concerns_it(
    database_url: str, rules: dict[str, Any],
) -> None:
    PAID.clear()
    with AgentRuntime(database_url, **rules) as runtime:
        done = runtime.run(pay_from_code("alice"), {"answer": ""})
    assert (done.status, done.output) == (Status.COMPLETED, {"answer": "paid alice"})
    assert PAID == ["alice"]


def test_a_policy_decides_from_the_arguments_of_a_tool_a_node_invokes(
    database_url: str,
) -> None:
    def policy(name: str, args: dict[str, Any], ctx: keel.PolicyContext) -> Any:
        return keel.Ask() if args.get("who") == "mallory" else None

    PAID.clear()
    with AgentRuntime(database_url, approval_policy=policy) as runtime:
        done = runtime.run(pay_from_code("alice"), {"answer": ""})
        failed = runtime.run(pay_from_code("mallory"), {"answer": ""})
    assert done.status is Status.COMPLETED
    assert failed.status is Status.FAILED
    assert "The tool 'pay' may need approval (approval_policy)" in (failed.error or "")
    assert PAID == ["alice"]


SHIPPED: list[tuple[str, str, str]] = []


@keel.tool
@lc_tool
def ship(order: str, config: RunnableConfig,
         warehouse: Annotated[str, InjectedToolArg] = "main") -> str:
    """Ship an order."""
    SHIPPED.append((order, warehouse, config["configurable"]["thread_id"]))
    return f"shipped {order}"


def ship_from_code() -> Any:
    return chain_of(Refund, lambda state: {
        "answer": ship.invoke({"order": "A-1", "warehouse": "east"})})


def ship_by_the_model() -> Any:
    model = TurnsModel(turns=[[("ship", {"order": "A-1"}, "s1")], AIMessage(content="Sent.")])
    return tool_loop(model, "shipper", [ship])


@pytest.mark.parametrize(("graph", "warehouse"), [
    (ship_from_code, "east"), (ship_by_the_model, "main")], ids=["node", "model"])
def test_the_args_of_a_marked_langchain_tool_leave_out_what_langchain_injects(
    database_url: str, graph: Any, warehouse: str,
) -> None:
    asked: list[dict[str, Any]] = []

    def policy(name: str, args: dict[str, Any], ctx: keel.PolicyContext) -> Any:
        asked.append(args)
        return keel.Ask()

    SHIPPED.clear()
    with AgentRuntime(database_url, approval_policy=policy) as runtime:
        waiting = runtime.run(graph(), {"answer": ""} if graph is ship_from_code else "Ship.")
    assert waiting.status is Status.WAITING
    assert [p.args for p in waiting.pending_approvals] == [{"order": "A-1"}]
    assert asked == [{"order": "A-1"}]
    # Approved and resumed in another runtime: the tool still gets its config there.
    with AgentRuntime(database_url, approval_policy=policy, auto_resume=False) as other:
        AgentHandle(waiting.execution_id, runtime=other).approve()
        done = other.resume(waiting.execution_id, graph())
    assert done.status is Status.COMPLETED
    assert SHIPPED == [("A-1", warehouse, waiting.execution_id)]
    assert [e.args for e in done.events if e.type == "tool_call"] == [{"order": "A-1"}]
    assert [c.args for c in done.tool_calls] == [{"order": "A-1"}]


CHARGES: list[int] = []


@keel.tool
def charge_card(amount: int) -> str:
    CHARGES.append(amount)
    return f"charged {amount}"


def test_a_node_retried_by_its_retry_policy_replays_the_keel_tools_it_called(
    runtime: AgentRuntime,
) -> None:
    from langgraph.types import RetryPolicy

    CHARGES.clear()
    attempts: list[int] = []

    def bill(state: Draft) -> dict[str, Any]:
        attempts.append(1)
        receipt = charge_card(100)
        if len(attempts) == 1:
            raise ConnectionError("the mail server flaked after the charge")
        return {"log": [receipt]}

    graph = StateGraph(Draft)
    graph.add_node("bill", bill, retry_policy=RetryPolicy(
        max_attempts=3, initial_interval=0.01, retry_on=ConnectionError))
    graph.add_edge(START, "bill")
    graph.add_edge("bill", END)
    done = runtime.run(graph.compile(name="billing"), {"log": [], "reply": ""})
    assert done.status is Status.COMPLETED
    assert (len(attempts), CHARGES) == (2, [100])
    (call,) = done.tool_calls
    assert call.call_id.endswith(":1") and call.status == "done"


def test_cancel_stops_a_graph_whose_nodes_call_no_model_and_no_tool(
    runtime: AgentRuntime,
) -> None:
    steps: list[int] = []
    third = threading.Event()
    go_on = threading.Event()

    def step(state: Draft) -> dict[str, Any]:
        steps.append(len(state["log"]))
        if len(steps) == 3:
            third.set()
            assert go_on.wait(20), "the test never let the step finish"
        return {"log": ["step"]}

    graph = StateGraph(Draft)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda state: END if len(state["log"]) >= 50 else "step")
    handle = runtime.start(graph.compile(name="loop"), {"log": [], "reply": ""},
                           config={"recursion_limit": 100})
    assert third.wait(20)
    handle.cancel()
    go_on.set()
    assert handle.join().status is Status.CANCELLED
    assert len(steps) < 50


def test_the_text_of_content_blocks_is_a_message_event(runtime: AgentRuntime) -> None:
    model = TurnsModel(turns=[
        AIMessage(content=[{"type": "text", "text": "Let me pay alice."},
                           {"type": "tool_use", "id": "p1", "name": "pay",
                            "input": {"who": "alice"}}],
                  tool_calls=[{"name": "pay", "args": {"who": "alice"}, "id": "p1",
                               "type": "tool_call"}]),
        AIMessage(content=[{"type": "text", "text": "Paid.", "annotations": []}])])
    done = runtime.run(tool_loop(model, "blocks"), "Pay alice.")
    assert [e.content for e in done.events if e.type == "message"] == [
        "Let me pay alice.", "Paid."]


def test_a_graph_compiled_without_checkpoints_is_refused_with_what_to_change(
    runtime: AgentRuntime,
) -> None:
    failed = runtime.run(chain(write_draft).compile(checkpointer=False, name="nockpt"),
                         {"log": [], "reply": ""})
    assert failed.status is Status.FAILED
    assert (failed.error or "").startswith(
        "UnsupportedAgentError: The graph 'nockpt' was compiled with checkpointer=False")
    assert "Compile it without checkpointer=False" in (failed.error or "")
