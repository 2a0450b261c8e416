"""Tool calls in `ToolNode`s: journaled, gated by keel's rules, replayed after a crash.

keel installs one async wrapper in every ToolNode of a graph it runs, subgraphs included, the
first time it sees the graph (`ToolNode` has no public hook for a wrapper added after it was
built). Outside a keel run the wrapper hands the call to the node's own wrapper, or runs it,
so the graph behaves as before everywhere else.
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

__all__ = ["APPROVAL_KEY", "AnyPregel", "agent_of", "instrument", "running"]

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
                "agent": agent_of(config), "announce": True}
        gated = self._gate(spec, call)
        ex = self.execution
        if inspect.iscoroutinefunction(func):
            return ex.run_tool(invoke=lambda: func(*args, **kwargs), gated=gated, **call)
        return ex.run_tool_sync(invoke=lambda: func(*args, **kwargs), gated=gated, **call)

    def _gate(self, spec: ToolSpec, call: dict[str, Any]) -> bool:
        """Whether keel's rules gate the call; pauses the node (interrupt) while it waits."""
        ex, name, call_id = self.execution, call["tool_name"], call["call_id"]
        flag = "@keel.tool(approval_required=True)" if spec.approval_required else None
        if not ex.rules.may_gate(name, flagged=flag is not None):
            return False
        call["flagged_by"] = flag
        verdict = ex.verdict(call_id, name, call["args"], agent=call["agent"], flagged_by=flag)
        if verdict.action == "ask":
            interrupt({APPROVAL_KEY: call_id, "tool_name": name, "args": call["args"],
                       "agent": call["agent"]})
        return True


def instrument(graph: AnyPregel) -> None:
    """Install keel's wrapper in every ToolNode reachable from `graph` (once per node)."""
    for node in _tool_nodes(graph):
        if not getattr(node, _INSTALLED, False):
            node._awrap_tool_call = _wrapper(node._awrap_tool_call, node._wrap_tool_call)
            object.__setattr__(node, _INSTALLED, True)


def _tool_nodes(graph: AnyPregel) -> Iterator[ToolNode]:
    for node in graph.nodes.values():
        bound = node.bound
        if isinstance(bound, ToolNode):
            yield bound
        elif isinstance(bound, Pregel):  # a compiled subgraph added as a node
            yield from _tool_nodes(bound)




def _wrapper(own_async: Any, own_sync: Any) -> Callable[[Any, Execute], Awaitable[Any]]:
    async def call_through(request: Any, execute: Execute) -> Any:
        """What the node did before keel: its own wrapper, or the tool."""
        if own_async is not None:
            return await own_async(request, execute)
        if own_sync is not None:  # the node had a sync wrapper only; keel runs async
            raise TypeError(
                "This ToolNode has a sync wrap_tool_call and no awrap_tool_call; keel runs "
                "graphs asynchronously. Give the ToolNode an awrap_tool_call as well."
            )
        return await execute(request)

    async def keel_wrapper(request: Any, execute: Execute) -> Any:
        run = _RUN.get()
        if run is None:
            return await call_through(request, execute)
        return await _journaled(run.execution, request, lambda: call_through(request, execute))

    return keel_wrapper


async def _journaled(ex: Execution, request: Any, invoke: Callable[[], Awaitable[Any]]) -> Any:
    call = request.tool_call
    call_id, name, args = call["id"], call["name"], dict(call.get("args") or {})
    agent = agent_of(getattr(request.runtime, "config", None))
    spec = tool_spec(request.tool) or tool_spec(getattr(request.tool, "func", None))
    flag = "@keel.tool(approval_required=True)" if spec and spec.approval_required else None
    gated = ex.rules.may_gate(name, flagged=flag is not None)
    action = ex.verdict(call_id, name, args, agent=agent, flagged_by=flag).action \
        if gated else "run"
    if action == "ask":
        # LangGraph's own pause: the graph stops here and keel records the approval. The
        # decision is keel's (the stored verdict), so the value resumed with is not needed.
        interrupt({APPROVAL_KEY: call_id, "tool_name": name, "args": args, "agent": agent})
    result = await ex.run_tool(call_id=call_id, tool_name=name, agent=agent, args=args,
                               invoke=invoke, flagged_by=flag, gated=gated)
    if action == "reject":  # the model is told the reviewer's reason instead
        return ToolMessage(content=result, tool_call_id=call_id, name=name, status="error")
    return _revive(result, call_id, name)


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
