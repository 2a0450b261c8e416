"""`@keel.tool`: mark a function or a framework tool as gated by approval.

A LangChain tool (what LangGraph's `ToolNode` runs) or an ADK tool is returned as it is, with
keel's marker (a LangChain tool's functions go through `call_tool`, below).
Otherwise, with the OpenAI Agents SDK imported, the result is a `FunctionTool` that can go
straight into `Agent(tools=[...])` and can still be called like the function. Without it, the
result is the function, wrapped. Each adapter reads the marker when it runs.

Called directly from the code of a run (a LangGraph node calling the function, say), the tool
goes through the adapter that runs it (`calling()`): journaled and gated like a tool the model
called. Anywhere else it is a plain call.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

__all__ = ["DirectCalls", "SideEffects", "ToolSpec", "call_tool", "calling", "tool", "tool_spec"]

SideEffects = Literal["idempotent", "unsafe"]


@dataclass(frozen=True)
class ToolSpec:
    """What keel knows about a tool beyond what its framework knows."""

    func: Callable[..., Any] | None
    approval_required: bool = False
    side_effects: SideEffects = "idempotent"

    @property
    def unsafe(self) -> bool:
        return self.side_effects == "unsafe"


# The result is the framework's tool type when its framework is loaded (a FunctionTool for
# the OpenAI Agents SDK), so it is typed Any: it goes into Agent(tools=[...]) and is callable.
@overload
def tool(obj: Callable[..., Any], /) -> Any: ...
@overload
def tool(
    *, approval_required: bool = False, side_effects: SideEffects = "idempotent"
) -> Callable[[Any], Any]: ...
def tool(
    obj: Any = None, /, *, approval_required: bool = False,
    side_effects: SideEffects = "idempotent",
) -> Any:
    """Mark a tool: `@tool`, `@tool(approval_required=True)`, `@tool(side_effects="unsafe")`,
    on a function or a tool object.

    A tool with `approval_required=True` pauses the run before each call until someone approves
    or rejects it (`AgentHandle(execution_id).approve()`); a rejected call does not run and the
    model receives the reviewer's reason instead of its result.

    `side_effects` says what keel may do with a call that a crash cut off (its result was not
    journaled):
        "idempotent" (the default): run it again on resume, with the same
            `keel.current_call().idempotency_key`; pass the key to APIs that deduplicate.
        "unsafe": never run it again by itself. keel journals the call's intent before it
            starts; a resumed run that finds an intent without a result stops IN_DOUBT, and a
            human decides (`AgentHandle.resolve()`, `keel resolve`, the dashboard).
    """
    if side_effects not in ("idempotent", "unsafe"):
        raise ValueError(f"side_effects must be 'idempotent' or 'unsafe', not {side_effects!r}.")

    def mark(target: Any) -> Any:
        spec = ToolSpec(func=_function_of(target), approval_required=approval_required,
                        side_effects=side_effects)
        if _is_framework_tool(target):  # a pydantic model: set the marker past validation
            object.__setattr__(target, "__keel_tool__", spec)
            if _is_langchain_tool(target):
                _route_langchain_tool(target, spec)
            return target
        if "agents" in sys.modules:
            from .adapters.openai import as_function_tool

            return as_function_tool(target, spec)
        return _wrapped(target, spec)

    return mark if obj is None else mark(obj)


LANGCHAIN_MARK = "keel_tool"
"""The key of keel's mark in a marked LangChain tool's `metadata`, which LangChain hands to
callbacks: {"routed": whether the tool's calls go through `call_tool` (a tool class with no
function of its own cannot be routed), "approval_required": ...}."""


def _route_langchain_tool(target: Any, spec: ToolSpec) -> None:
    """Send the functions of a LangChain tool (`func`, `coroutine`) through `call_tool`, so
    that a node's code calling `tool.invoke(...)` is journaled and gated as a call of a plain
    keel tool is; and mark its metadata, so that keel's callbacks know how it is called."""
    routed = False
    for field in ("func", "coroutine"):
        func = getattr(target, field, None)
        if callable(func):
            func = getattr(tool_spec(func), "func", None) or func  # marked before: the user's
            object.__setattr__(target, field, _wrapped(func, dataclasses.replace(spec, func=func),
                                                       target.name))
            routed = True
    mark = {"routed": routed, "approval_required": spec.approval_required}
    object.__setattr__(target, "metadata", {**(target.metadata or {}), LANGCHAIN_MARK: mark})


def _wrapped(func: Callable[..., Any], spec: ToolSpec,
             name: str | None = None) -> Callable[..., Any]:
    """`func`, marked, with its calls going through `call_tool` as the tool `name`."""
    name = name or func.__name__
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await call_tool(spec, name, args, kwargs)

        wrapper: Any = call_async
    else:
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            return call_tool(spec, name, args, kwargs)

        wrapper = call
    wrapper.__keel_tool__ = spec
    return wrapper  # type: ignore[no-any-return]


class DirectCalls(Protocol):
    """How the running adapter journals a tool called from the run's own code."""

    def call(self, spec: ToolSpec, name: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any: ...


_direct: ContextVar[DirectCalls | None] = ContextVar("keel_direct_calls", default=None)


@contextmanager
def calling(calls: DirectCalls) -> Iterator[None]:
    """Adapters: route direct calls of keel tools made inside to `calls`."""
    token = _direct.set(calls)
    try:
        yield
    finally:
        _direct.reset(token)


def call_tool(spec: ToolSpec, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a keel tool: through the running adapter inside a run (unless a journaled call
    is already running: a tool that calls a tool), else directly. For a coroutine function the
    result is awaitable either way."""
    from .runtime._execution import current_call

    if spec.func is None:
        raise TypeError(f"The tool {name!r} wraps no Python function to call.")
    calls = _direct.get()
    if calls is None or current_call() is not None:
        return spec.func(*args, **kwargs)
    return calls.call(spec, name, args, kwargs)


def tool_spec(obj: Any) -> ToolSpec | None:
    spec = getattr(obj, "keel_spec", None) or getattr(obj, "__keel_tool__", None)
    return spec if isinstance(spec, ToolSpec) else None


def _function_of(target: Any) -> Callable[..., Any] | None:
    existing = tool_spec(target)
    if existing is not None:
        return existing.func
    if _is_framework_tool(target):
        return getattr(target, "func", None)
    return target if callable(target) and not hasattr(target, "on_invoke_tool") else None


def _is_framework_tool(target: Any) -> bool:
    """A LangChain tool (LangGraph) or an ADK tool: marked in place, as it is."""
    if _is_langchain_tool(target):
        return True
    if "google.adk" in sys.modules:
        from google.adk.tools.base_tool import BaseTool as AdkTool

        return isinstance(target, AdkTool)
    return False


def _is_langchain_tool(target: Any) -> bool:
    if "langchain_core" not in sys.modules:
        return False
    from langchain_core.tools import BaseTool

    return isinstance(target, BaseTool)
