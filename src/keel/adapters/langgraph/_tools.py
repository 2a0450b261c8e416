"""Tool calls in `ToolNode`s: journaled, gated by keel's rules, replayed after a crash.

keel installs one wrapper in every ToolNode of a graph it runs, subgraphs included, the first
time it sees the graph (`ToolNode` has no public hook for a wrapper added after it was built),
around the node's own wrapper if it has one. Outside a keel run the wrapper hands the call to
the node's own wrapper, or runs it, so the graph behaves as before everywhere else.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolMessage, convert_to_messages
from langgraph.config import get_config
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.types import Command, interrupt

from ..._tool import ToolSpec, calling, tool_spec
from ...runtime._execution import Execution
from ...runtime._json import jsonable

__all__ = ["APPROVAL_KEY", "AnyPregel", "agent_of", "current_execution", "instrument",
           "running"]

APPROVAL_KEY = "keel_approval"
"""Marks the payload of the interrupt() keel raises for a gated call (its value: call id)."""

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
    task's calls of it."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self._counts: Counter[tuple[str, str]] = Counter()

    def call(self, spec: ToolSpec, name: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        config = get_config()
        namespace = str((config.get("configurable") or {}).get("checkpoint_ns", ""))
        self._counts[namespace, name] += 1
        task = hashlib.sha1(namespace.encode()).hexdigest()[:12]
        call_id = f"{name}:{task}:{self._counts[namespace, name]}"
        func = spec.func
        assert func is not None  # call_tool checked
        bound = inspect.signature(func).bind(*args, **kwargs)
        call = {"call_id": call_id, "tool_name": name, "args": jsonable(dict(bound.arguments)),
                "agent": agent_of(config), "announce": True, "unsafe": spec.unsafe}
        _gate(self.execution, call, spec)
        if inspect.iscoroutinefunction(func):
            return self.execution.run_tool(invoke=lambda: func(*args, **kwargs), **call)
        return self.execution.run_tool_sync(invoke=lambda: func(*args, **kwargs), **call)


def current_execution() -> Execution | None:
    """The execution whose graph runs in this task, or None outside keel's runs."""
    run = _RUN.get()
    return None if run is None else run.execution


def instrument(graph: AnyPregel) -> None:
    """Install keel's wrapper in every ToolNode reachable from `graph` (once per node). A
    node with only a sync wrapper of its own gets keel's around it, so that it keeps the sync
    `execute` it was written for; any other gets an async one."""
    for node in _tool_nodes(graph):
        if getattr(node, _INSTALLED, False):
            continue
        if node._awrap_tool_call is None and node._wrap_tool_call is not None:
            node._wrap_tool_call = _sync_wrapper(node._wrap_tool_call)
        else:
            node._awrap_tool_call = _async_wrapper(node._awrap_tool_call)
        object.__setattr__(node, _INSTALLED, True)


def _tool_nodes(graph: AnyPregel) -> Iterator[ToolNode]:
    for node in graph.nodes.values():
        bound = node.bound
        if isinstance(bound, ToolNode):
            yield bound
        elif isinstance(bound, Pregel):  # a compiled subgraph added as a node
            yield from _tool_nodes(bound)


def _async_wrapper(own: Any) -> Callable[[Any, Execute], Awaitable[Any]]:
    async def keel_wrapper(request: Any, execute: Execute) -> Any:
        async def call_through() -> Any:  # what the node did before keel
            return await (own(request, execute) if own is not None else execute(request))

        run = _RUN.get()
        if run is None:
            return await call_through()
        call, action = _prepare(run.execution, request)
        return _answer(await run.execution.run_tool(invoke=call_through, **call), action, call)

    return keel_wrapper


def _sync_wrapper(own: Any) -> Callable[[Any, Callable[[Any], Any]], Any]:
    def keel_wrapper(request: Any, execute: Callable[[Any], Any]) -> Any:
        run = _RUN.get()
        if run is None:
            return own(request, execute)
        call, action = _prepare(run.execution, request)
        result = run.execution.run_tool_sync(invoke=lambda: own(request, execute), **call)
        return _answer(result, action, call)

    return keel_wrapper


def _prepare(ex: Execution, request: Any) -> tuple[dict[str, Any], str]:
    """The journal's view of a ToolNode call, and keel's decision on it."""
    tool_call = request.tool_call
    call = {"call_id": tool_call["id"], "tool_name": tool_call["name"],
            "args": dict(tool_call.get("args") or {}),
            "agent": agent_of(getattr(request.runtime, "config", None))}
    spec = tool_spec(request.tool) or tool_spec(getattr(request.tool, "func", None))
    call["unsafe"] = spec is not None and spec.unsafe
    return call, _gate(ex, call, spec)


def _gate(ex: Execution, call: dict[str, Any], spec: ToolSpec | None) -> str:
    """keel's decision on a call ("run", "approve", "reject"), noting in `call` how it is
    gated. A call that must wait pauses the graph here with LangGraph's own interrupt(); the
    decision will be keel's stored verdict, so the value it resumes with is not needed."""
    flag = "@keel.tool(approval_required=True)" if spec and spec.approval_required else None
    call["gated"] = ex.rules.may_gate(call["tool_name"], flagged=flag is not None)
    if not call["gated"]:
        return "run"
    call["flagged_by"] = flag
    action = ex.verdict(call["call_id"], call["tool_name"], call["args"], agent=call["agent"],
                        flagged_by=flag).action
    if action == "ask":
        interrupt({APPROVAL_KEY: call["call_id"], "tool_name": call["tool_name"],
                   "args": call["args"], "agent": call["agent"]})
    return action


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
        return convert_to_messages([result])[0]
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
