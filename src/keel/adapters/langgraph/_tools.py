"""Tool calls in `ToolNode`s: journaled, gated by keel's rules, replayed after a crash.

keel installs its wrappers in every ToolNode of a graph it runs the first time it sees the
graph (`ToolNode` has no public hook for a wrapper added after it was built), around the
node's own wrappers if it has any: in subgraphs added as nodes, and in the graphs a node's
function refers to by name (LangGraph's "call a subgraph from a node"). Outside a keel run
the wrappers hand the call to the node's own wrapper, or run it, so the graph behaves as
before everywhere else. A tool that keel's rules may gate and that starts where no wrapper
sees it (in a graph a node builds or finds at run time) is refused (`OutOfSight`) when keel's
rules would stop it: it would run undecided and unjournaled.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langchain_core.tools.base import FILTERED_ARGS, _get_type_hints, _is_injected_arg_type
from langgraph.config import get_config
from langgraph.errors import GraphInterrupt
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.runtime import get_runtime
from langgraph.types import Command, Interrupt

from ..._errors import KeelError
from ..._tool import LANGCHAIN_MARK, ToolSpec, calling, tool_spec
from ...runtime._approvals import PolicyContext
from ...runtime._execution import Execution, current_call
from ...runtime._json import jsonable

__all__ = ["APPROVAL_KEY", "AnyPregel", "OutOfSight", "agent_of", "current_execution",
           "instrument", "running"]

APPROVAL_KEY = "keel_approval"
"""Marks the payload of the pause keel raises for a gated call (its value: call id)."""

Execute = Callable[[Any], Awaitable[Any]]
AnyPregel = Pregel[Any, Any, Any, Any]

@dataclass(frozen=True)
class _Run:
    execution: Execution
    graph_name: str


_RUN: ContextVar[_Run | None] = ContextVar("keel_langgraph_run", default=None)
_INSTALLED = "_keel_instrumented"


@contextmanager
def running(execution: Execution, graph_name: str) -> Iterator[None]:
    """Make `execution` the run whose tool calls the wrappers journal, and whose nodes'
    direct calls of `@keel.tool` functions are journaled too."""
    token = _RUN.set(_Run(execution, graph_name))
    try:
        with calling(_NodeCalls(execution)):
            yield
    finally:
        _RUN.reset(token)


class _NodeCalls:
    """`@keel.tool` functions called from a node's own code: journaled and gated as if the
    model had called them. Their call id is the tool's name, the node's task (its checkpoint
    namespace, stable when the node runs again after a crash or a pause) and a count of the
    task's calls of it in this attempt (a retry of the node by its RetryPolicy makes the same
    calls again: they replay, or run again with the same idempotency key)."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self._counts: Counter[tuple[str, int, str]] = Counter()

    def call(self, spec: ToolSpec, name: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        config = get_config()
        namespace = str((config.get("configurable") or {}).get("checkpoint_ns", ""))
        counted = (namespace, getattr(get_runtime().execution_info, "node_attempt", 1), name)
        self._counts[counted] += 1
        task = hashlib.sha1(namespace.encode()).hexdigest()[:12]
        call_id = f"{name}:{task}:{self._counts[counted]}"
        func = spec.func
        assert func is not None  # call_tool checked
        call = {"call_id": call_id, "tool_name": name,
                "args": jsonable(_chosen_arguments(func, args, kwargs)), "agent": agent_of(config),
                "announce": True, "unsafe": spec.unsafe}
        if _gate(self.execution, call, spec) == "ask":
            _pause([call])
        if inspect.iscoroutinefunction(func):
            return self.execution.run_tool(invoke=lambda: func(*args, **kwargs), **call)
        return self.execution.run_tool_sync(invoke=lambda: func(*args, **kwargs), **call)


def _chosen_arguments(func: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments as the journal, the policies and a reviewer see them: those the
    caller chose, as in a model's tool call, without those LangChain injects when it runs the
    function as a tool (its RunnableConfig, callbacks, InjectedToolArg, InjectedState,
    InjectedStore, ToolRuntime). The function itself still receives them all."""
    injected = _injected_parameters(func)
    bound = inspect.signature(func).bind(*args, **kwargs)
    return {key: value for key, value in bound.arguments.items() if key not in injected}


@functools.cache  # resolving type hints costs more than the call it serves
def _injected_parameters(func: Callable[..., Any]) -> frozenset[str]:
    """The parameters of `func` that LangChain fills in itself, found as LangChain finds
    what to leave out of the schema it shows the model."""
    hints = _get_type_hints(func, include_extras=True) or {}
    return frozenset({*FILTERED_ARGS, *(name for name, hint in hints.items()
                                        if hint is RunnableConfig or _is_injected_arg_type(hint))})


def current_execution() -> Execution | None:
    """The execution whose graph runs in this task, or None outside keel's runs."""
    run = _RUN.get()
    return None if run is None else run.execution


def instrument(graph: AnyPregel) -> None:
    """Install keel's wrappers in every ToolNode reachable from `graph` (once per node).
    ToolNode's async path runs the node's sync wrapper when it has no async one: a node with
    only a sync wrapper of its own keeps it that way, so that it keeps the sync `execute` it
    was written for."""
    for node in _tool_nodes(graph, set()):
        if getattr(node, _INSTALLED, False):
            continue
        own_sync, own_async = node._wrap_tool_call, node._awrap_tool_call
        node._wrap_tool_call = _sync_wrapper(node, own_sync)
        if own_async is not None or own_sync is None:
            node._awrap_tool_call = _async_wrapper(node, own_async)
        object.__setattr__(node, _INSTALLED, True)


def _tool_nodes(runnable: Any, seen: set[int]) -> Iterator[ToolNode]:
    """The ToolNodes in `runnable`: itself, a graph's nodes, and what the functions of nodes
    refer to by name (a graph that a node invokes)."""
    if id(runnable) in seen:
        return
    seen.add(id(runnable))
    if isinstance(runnable, ToolNode):
        yield runnable
    elif isinstance(runnable, Pregel):
        for node in runnable.nodes.values():
            yield from _tool_nodes(node.bound, seen)
    else:
        for func in (getattr(runnable, "func", None), getattr(runnable, "afunc", None)):
            for graph in _graphs_named_by(func):
                yield from _tool_nodes(graph, seen)


def _graphs_named_by(func: Any) -> list[AnyPregel]:
    """The graphs a node's function refers to: its globals and the variables it closes over."""
    if not inspect.isfunction(func):
        return []
    names = inspect.getclosurevars(func)
    return [value for value in (*names.nonlocals.values(), *names.globals.values())
            if isinstance(value, Pregel)]


def _async_wrapper(node: ToolNode, own: Any) -> Callable[[Any, Execute], Awaitable[Any]]:
    async def keel_wrapper(request: Any, execute: Execute) -> Any:
        async def call_through() -> Any:  # what the node did before keel
            return await (own(request, execute) if own is not None else execute(request))

        run = _RUN.get()
        if run is None:
            return await call_through()
        call, action = _prepare(run.execution, node, request)
        return _answer(await run.execution.run_tool(invoke=call_through, **call), action, call)

    return keel_wrapper


def _sync_wrapper(node: ToolNode, own: Any) -> Callable[[Any, Callable[[Any], Any]], Any]:
    def keel_wrapper(request: Any, execute: Callable[[Any], Any]) -> Any:
        def call_through() -> Any:
            return own(request, execute) if own is not None else execute(request)

        run = _RUN.get()
        if run is None:
            return call_through()
        call, action = _prepare(run.execution, node, request)
        return _answer(run.execution.run_tool_sync(invoke=call_through, **call), action, call)

    return keel_wrapper


def _prepare(ex: Execution, node: ToolNode, request: Any) -> tuple[dict[str, Any], str]:
    """`_decided`; a call that must wait pauses the graph, with the other calls of the node
    that wait too."""
    config = getattr(request.runtime, "config", None)
    call, action = _decided(ex, request.tool_call, request.tool, config)
    if action == "ask":
        _pause([call, *_waiting_beside(ex, node, request, config)])
    return call, action


def _decided(ex: Execution, tool_call: Any, tool: Any,
             config: Any) -> tuple[dict[str, Any], str]:
    """The journal's view of a ToolNode call, and keel's decision on it."""
    spec = tool_spec(tool) or tool_spec(getattr(tool, "func", None))
    call = {"call_id": tool_call["id"], "tool_name": tool_call["name"],
            "args": dict(tool_call.get("args") or {}), "agent": agent_of(config),
            "unsafe": spec is not None and spec.unsafe}
    return call, _gate(ex, call, spec)


def _waiting_beside(ex: Execution, node: ToolNode, request: Any,
                    config: Any) -> list[dict[str, Any]]:
    """The other calls of the model's response that `node` runs and that wait for a decision
    too: a task pauses once, at the first of its calls that pauses, so that call asks about
    them all. (Where each call runs in a task of its own, as in create_react_agent, each
    task asks about them all too; keel asks once per call.)"""
    try:
        calls, _ = node._parse_input(request.state)
    except ValueError:  # not the model's response: a state of the user's own
        return []
    waiting = []
    for tool_call in calls:
        tool = node.tools_by_name.get(tool_call["name"])
        if tool is not None and tool_call["id"] != request.tool_call["id"]:
            call, action = _decided(ex, tool_call, tool, config)
            if action == "ask":
                waiting.append(call)
    return waiting


def _gate(ex: Execution, call: dict[str, Any], spec: ToolSpec | None) -> str:
    """keel's decision on a call ("run", "approve", "reject", "ask"), noting in `call` how
    it is gated."""
    flag = "@keel.tool(approval_required=True)" if spec and spec.approval_required else None
    call["gated"] = ex.rules.may_gate(call["tool_name"], flagged=flag is not None)
    if not call["gated"]:
        return "run"
    call["flagged_by"] = flag
    return ex.verdict(call["call_id"], call["tool_name"], call["args"], agent=call["agent"],
                      flagged_by=flag).action


def _pause(calls: list[dict[str, Any]]) -> NoReturn:
    """Pause the graph until `calls` are decided. Not with interrupt(): LangGraph pairs the
    values it resumes a task with to the task's interrupt() calls in the order they are
    made, which parallel calls do not keep. keel's gate needs no value (the decision is
    keel's stored verdict), so the graph resumes these pauses without one."""
    raise GraphInterrupt(tuple(
        Interrupt(value={APPROVAL_KEY: call["call_id"], "tool_name": call["tool_name"],
                         "args": call["args"], "agent": call["agent"]},
                  id=f"{APPROVAL_KEY}:{call['call_id']}")
        for call in calls))


class OutOfSight(BaseCallbackHandler):
    """Refuses a tool call that keel's rules would gate or deny when it starts where no keel
    wrapper runs it: in a ToolNode of a graph that a node makes or finds at run time, invoked
    by a node's own code, or inside another tool (a graph a tool invokes). It would run
    undecided, and unjournaled. (A `@keel.tool` LangChain tool that a node invokes is not
    refused: its function goes through keel; inside another tool it would run directly.)"""

    raise_error = True  # the refusal must reach the run, not a log line
    run_inline = True  # in the tool's own task, before the tool runs

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *,
                      metadata: dict[str, Any] | None = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        metadata = metadata or {}
        mark = metadata.get(LANGCHAIN_MARK) or {}
        running = current_call()
        if running is not None and kwargs.get("tool_call_id") == running.call_id:
            return  # the call keel's wrapper runs: gated and journaled there
        if running is None and mark.get("routed"):
            return  # its function goes through keel, which gates and journals it
        name = str((serialized or {}).get("name", ""))
        flag = "@keel.tool(approval_required=True)" if mark.get("approval_required") else None
        rules = self.execution.rules
        if not rules.may_gate(name, flagged=flag is not None):  # cheap: most tools stop here
            return
        # Only calls the rules would stop are refused; the callback sees the arguments
        # (`inputs`: None for a tool invoked with a string, which a policy then cannot read).
        context = PolicyContext(
            self.execution.id, str(kwargs.get("tool_call_id") or kwargs.get("run_id")),
            agent_of({"configurable": {"checkpoint_ns": metadata.get("checkpoint_ns", "")}}),
            "tool")
        verdict = rules.evaluate(name, inputs, context, flagged_by=flag)
        if verdict.action in ("ask", "reject"):
            raise KeelError(
                f"The tool {name!r} may need approval ({verdict.rule}), but it started where "
                "keel can neither gate nor journal it: in a graph that a node makes or finds "
                "at run time, invoked by a node's own code, or inside another tool. Add that "
                "graph to the parent graph as a node, or refer to it from the node's function "
                "by a module or enclosing variable, so that keel finds it; from a node's code, "
                "call a @keel.tool function (or a LangChain tool marked with @keel.tool); "
                "rather than from inside a tool, let the model call it.")


def _answer(result: Any, action: str, call: dict[str, Any]) -> Any:
    if action == "reject":  # the model is told the reviewer's reason instead
        return ToolMessage(content=result, tool_call_id=call["call_id"], name=call["tool_name"],
                           status="error")
    return _revive(result, call["call_id"], call["tool_name"])


def _revive(result: Any, call_id: str, name: str) -> Any:
    """The tool's result as LangGraph wants it: live, or rebuilt from the journal's JSON."""
    if isinstance(result, ToolMessage | Command | list):
        return result
    if isinstance(result, dict) and result.get("type") == "tool":
        # It answers this call: a result a mock run supplies was journaled by another run.
        return convert_to_messages([{**result, "tool_call_id": call_id}])[0]
    if isinstance(result, dict) and "goto" in result and "graph" in result:
        update = {key: convert_to_messages(value) if _messages(value) else value
                  for key, value in (result.get("update") or {}).items()}
        return Command(graph=result["graph"], goto=result["goto"], update=update,
                       resume=result.get("resume"))
    # A plain value a wrapper returned.
    return ToolMessage(content=result if isinstance(result, str) else str(result),
                       tool_call_id=call_id, name=name)


def _messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and "type" in item and "content" in item for item in value)


def agent_of(config: Any) -> str | None:
    """The agent a node runs for: the outermost subgraph in its checkpoint namespace (a
    supervisor's or swarm's agent), else the graph that keel runs (a node of the root graph
    has only its own task in the namespace)."""
    namespace = str(((config or {}).get("configurable") or {}).get("checkpoint_ns", ""))
    parts = namespace.split("|")
    if len(parts) > 1:
        return parts[0].split(":", 1)[0]
    run = _RUN.get()
    return None if run is None else run.graph_name
