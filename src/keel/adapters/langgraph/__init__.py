"""The LangGraph adapter.

keel runs the user's graph with LangGraph's own `astream`, with `durability="sync"` and a
checkpointer: the graph's own, or keel's `KeelSaver` on keel's database. Checkpoints carry
the execution id in their metadata, so keel knows whether a thread's latest checkpoint is this
execution's (continue it) or not (start it). The status is keel's, never inferred from the
graph's `next` (after a crash between a node's writes and its checkpoint LangGraph reports
nothing left to do; continuing the thread finishes it). Tool calls in `ToolNode`s are
journaled and gated (`_tools`), and model calls are step boundaries whose token usage is
journaled (`_models`); a paused graph, whether keel's gate or the user's own `interrupt()`
paused it, becomes a WAITING execution and resumes with `Command(resume=...)`.
"""

from __future__ import annotations

import weakref
from typing import Any, cast

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphInterrupt
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, Interrupt, StreamMode

from ..._errors import KeelError, UnsupportedAgentError
from ...runtime._execution import ApprovalRequest, Execution
from ...runtime._json import jsonable, message_text
from ...runtime._store import NewEvent, Store
from .. import Outcome, RunOptions
from ._models import ModelSteps, with_handlers
from ._saver import KeelSaver
from ._tools import APPROVAL_KEY, AnyPregel, OutOfSight, instrument, running

__all__ = ["ADAPTER", "KeelSaver", "LangGraphAdapter"]

EXECUTION_KEY = "keel_execution_id"
"""Checkpoint metadata naming the keel execution that wrote the checkpoint."""


class LangGraphAdapter:
    framework = "langgraph"

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, Pregel | StateGraph)

    def agent_name(self, graph: Any) -> str:
        return str(getattr(graph, "name", None) or "LangGraph")

    def output_type(self, graph: Any) -> type | None:
        return None  # the output is the graph's final state, as JSON data

    async def execute(
        self, execution: Execution, graph: Any, input: Any, options: RunOptions
    ) -> Outcome:
        compiled = _compiled(graph, execution)
        execution.pauses = (GraphInterrupt,)  # interrupt() in a tool pauses it: no doubt
        config = _config(options.config, execution.id)
        state = await compiled.aget_state(config)
        config = cast("RunnableConfig", with_handlers(
            dict(config), ModelSteps(execution), OutOfSight(execution)))
        # keel's own gates resume without a value: only the user's interrupt() calls get one.
        answers = {i.id: _resume_value(execution, i) for i in state.interrupts
                   if _gated_call(i) is None}
        if (state.metadata or {}).get(EXECUTION_KEY) != execution.id:
            first: Any = _graph_input(compiled, input)  # nothing of this execution yet
        elif answers:
            first = Command(resume=answers)
        else:
            first = None  # continue from this execution's latest checkpoint
        name = self.agent_name(compiled)
        events = _Events(name, _agents(compiled), execution.recorded_calls())
        # "values": the root graph's state after each superstep, where a cancellation stops
        # the graph, and its final state (with redaction, its checkpoints are not the state
        # the graph has).
        modes: list[StreamMode] = ["tasks", "updates", "values"]
        final: Any = None
        with running(execution, name):
            async for namespace, mode, chunk in compiled.astream(
                first, config, stream_mode=modes, subgraphs=True, durability="sync",
            ):
                if mode == "values":
                    if not namespace:
                        final = chunk
                        # A graph whose nodes call no model and no tool stops here too.
                        execution.check_cancelled()
                    continue
                # Live: a node's start and what it said reach streams as they happen.
                execution.emit(events.of(namespace, mode, chunk))
        state = await compiled.aget_state(config)
        if state.interrupts:
            # By call id: parallel tasks may each ask about their siblings' calls too.
            execution.suspend(list({r.call_id: r for r in map(_request, state.interrupts)}
                                   .values()))
            return Outcome("waiting")
        if state.next:
            raise KeelError(
                f"The graph stopped before {', '.join(state.next)} without an interrupt(): "
                "static breakpoints (interrupt_before / interrupt_after) are not supported "
                "by keel yet. Pause with interrupt() in the node instead."
            )
        # The final state as JSON data (messages as dicts), the same in this process as in
        # a result loaded anywhere later (but for what redaction takes out of the latter).
        return Outcome("completed", output=jsonable(state.values if final is None else final),
                       agent=self.agent_name(compiled))


# -- the graph keel runs ---------------------------------------------------------------------

# A builder is compiled once per store it runs on.
_compiled_builders: weakref.WeakKeyDictionary[Any, tuple[Store, AnyPregel]] = \
    weakref.WeakKeyDictionary()


def _compiled(graph: Any, execution: Execution) -> AnyPregel:
    """The graph with a checkpointer (its own, or keel's saver) and keel's tool wrappers."""
    if isinstance(graph, StateGraph):  # a builder: compiled with keel's saver
        store, compiled = _compiled_builders.get(graph, (None, None))
        if store is not execution.store or compiled is None:
            compiled = graph.compile(checkpointer=KeelSaver(execution.store))
            _compiled_builders[graph] = (execution.store, compiled)
    elif graph.checkpointer is False:
        raise UnsupportedAgentError(
            f"The graph {graph.name!r} was compiled with checkpointer=False, and keel pauses, "
            "resumes and recovers a graph from its checkpoints. Compile it without "
            "checkpointer=False (keel then keeps its checkpoints in keel's database), or "
            "pass keel the StateGraph builder.")
    elif graph.checkpointer in (None, True):
        compiled = graph.copy(update={"checkpointer": KeelSaver(execution.store)})
    else:
        compiled = graph  # the user's own checkpointer keeps the graph's state
    instrument(compiled)
    return compiled


def _config(user: dict[str, Any] | None, execution_id: str) -> RunnableConfig:
    """The user's config, with the execution's thread (unless the user chose one) and the
    execution id in every checkpoint's metadata."""
    config = dict(user or {})
    configurable = dict(config.get("configurable") or {})
    configurable.setdefault("thread_id", execution_id)
    config["configurable"] = configurable
    config["metadata"] = {**(config.get("metadata") or {}), EXECUTION_KEY: execution_id}
    return cast("RunnableConfig", config)


def _graph_input(graph: AnyPregel, input: Any) -> Any:
    """A plain string becomes the first user message of a graph with a `messages` channel."""
    if isinstance(input, str) and "messages" in graph.channels:
        return {"messages": [HumanMessage(content=input)]}
    return input


# -- pauses ----------------------------------------------------------------------------------


def _gated_call(pause: Interrupt) -> dict[str, Any] | None:
    """The call of a pause keel's gate made, or None for the user's interrupt()."""
    value = pause.value
    return value if isinstance(value, dict) and APPROVAL_KEY in value else None


def _request(pause: Interrupt) -> ApprovalRequest:
    """keel's approval for a paused graph: a gated tool call, or the user's interrupt()."""
    call = _gated_call(pause)
    if call is not None:
        return ApprovalRequest(call_id=str(call[APPROVAL_KEY]), tool_name=call["tool_name"],
                               args=call["args"], agent=call.get("agent"))
    value = pause.value
    return ApprovalRequest(
        call_id=pause.id, tool_name="interrupt",
        args=jsonable(value) if isinstance(value, dict) else {"value": jsonable(value)},
        agent=None, kind="interrupt", rule="interrupt() in the graph",
    )


def _resume_value(execution: Execution, pause: Interrupt) -> Any:
    """What the user's interrupt() returns once a reviewer decided: the value given to
    respond(), else LangChain's decision vocabulary."""
    answer = execution.response(pause.id)
    if answer is not None:  # AgentHandle.respond(value)
        return answer
    decided = execution.decision(pause.id)
    if decided is None:
        raise KeelError(f"The graph's pause {pause.id!r} has no decision yet.")
    if decided.action == "approve":
        return {"type": "approve"}
    return {"type": "reject", "reason": decided.reason}


# -- events ----------------------------------------------------------------------------------


def _agents(graph: AnyPregel) -> frozenset[str]:
    """The root graph's agents: its nodes that are graphs themselves."""
    return frozenset(name for name, node in graph.nodes.items()
                     if isinstance(node.bound, Pregel))


class _Events:
    """keel events from LangGraph's `tasks` and `updates` stream parts (with subgraphs).

    A node starting is a `thinking` event. One of the root graph's agents (a subgraph node:
    a swarm's or supervisor's agent) starting after another is a `handoff`, however control
    got there (a handoff tool's `Command(goto=..., graph=Command.PARENT)`, a supervisor's
    edge, a `Send`).
    """

    def __init__(self, graph_name: str, agents: frozenset[str], calls: set[str]) -> None:
        """`calls`: the call ids whose tool_call events this execution already has."""
        self.graph_name = graph_name
        self.agents = agents
        self._calls = calls
        self._last: str | None = None  # the root agent that finished last
        self._subgraphs: set[tuple[str, ...]] = set()  # node paths that streamed on their own
        self._seen: set[str] = set()  # message ids: a node may pass a message on again

    def of(self, namespace: Any, mode: str, chunk: Any) -> list[NewEvent]:
        """`namespace`: the subgraph path, e.g. ("billing_agent:<task id>",), () at the root."""
        path = tuple(part.split(":", 1)[0] for part in namespace)
        self._subgraphs.add(path)
        agent = path[0] if path else self.graph_name
        return self._task(path, agent, chunk) if mode == "tasks" else \
            self._update(path, agent, chunk)

    def _task(self, path: tuple[str, ...], agent: str, task: dict[str, Any]) -> list[NewEvent]:
        name = task.get("name", "")
        if name.startswith("__"):
            return []  # LangGraph's own bookkeeping
        root_agent = not path and name in self.agents
        if "input" not in task:  # the task ended
            if root_agent:
                self._last = name
            return []
        events = [NewEvent("thinking", agent, {"content": name})]
        if root_agent and self._last not in (None, name):  # announced before the agent starts
            events.insert(0, NewEvent("handoff", self._last, {"target": name}))
        return events

    def _update(self, path: tuple[str, ...], agent: str, chunk: Any) -> list[NewEvent]:
        events: list[NewEvent] = []
        for node, update in (chunk or {}).items():
            if (*path, node) in self._subgraphs:
                continue  # a subgraph's messages, already seen as it streamed them
            messages = update.get("messages") if isinstance(update, dict) else None
            for message in messages if isinstance(messages, list) else [messages]:
                if isinstance(message, AIMessage) and self._first_time(message):
                    events += self._model_events(message, agent)
        return events

    def _first_time(self, message: AIMessage) -> bool:
        """False for a message seen before (LangChain's human-in-the-loop middleware, say,
        returns the model's message again once it is approved)."""
        if message.id is None:
            return True
        seen = message.id in self._seen
        self._seen.add(message.id)
        return not seen

    def _model_events(self, message: AIMessage, agent: str) -> list[NewEvent]:
        events = []
        text = message_text(message.content)
        if isinstance(text, str) and text:
            events.append(NewEvent("message", agent, {"content": text}))
        for call in message.tool_calls:
            if call["id"] in self._calls:
                continue  # announced before a pause, and passed on again after it
            self._calls.add(str(call["id"]))
            events.append(NewEvent("tool_call", agent, {
                "tool_name": call["name"], "call_id": call["id"],
                "args": jsonable(call["args"])}))
        return events


ADAPTER = LangGraphAdapter()
