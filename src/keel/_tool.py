"""`@keel.tool`: mark a function or a framework tool as gated by approval.

A LangChain tool (what LangGraph's `ToolNode` runs) is returned as it is, with keel's marker.
Otherwise, with the OpenAI Agents SDK imported, the result is a `FunctionTool` that can go
straight into `Agent(tools=[...])` and can still be called like the function. Without it, the
function is returned unchanged with keel's marker, and each adapter reads the marker when it
runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

__all__ = ["ToolSpec", "tool", "tool_spec"]

@dataclass(frozen=True)
class ToolSpec:
    """What keel knows about a tool beyond what its framework knows."""

    func: Callable[..., Any] | None
    approval_required: bool = False


# The result is the framework's tool type when its framework is loaded (a FunctionTool for
# the OpenAI Agents SDK), so it is typed Any: it goes into Agent(tools=[...]) and is callable.
@overload
def tool(obj: Callable[..., Any], /) -> Any: ...
@overload
def tool(*, approval_required: bool = False) -> Callable[[Any], Any]: ...
def tool(obj: Any = None, /, *, approval_required: bool = False) -> Any:
    """Mark a tool: `@tool` or `@tool(approval_required=True)`, on a function or a tool object.

    A tool with `approval_required=True` pauses the run before each call until someone approves
    or rejects it (`AgentHandle(execution_id).approve()`); a rejected call does not run and the
    model receives the reviewer's reason instead of its result.
    """

    def mark(target: Any) -> Any:
        spec = ToolSpec(func=_function_of(target), approval_required=approval_required)
        if _is_langchain_tool(target):  # a pydantic model: set the marker past validation
            object.__setattr__(target, "__keel_tool__", spec)
            return target
        if "agents" in sys.modules:
            from .adapters.openai import as_function_tool

            return as_function_tool(target, spec)
        target.__keel_tool__ = spec
        return target

    return mark if obj is None else mark(obj)


def tool_spec(obj: Any) -> ToolSpec | None:
    spec = getattr(obj, "keel_spec", None) or getattr(obj, "__keel_tool__", None)
    return spec if isinstance(spec, ToolSpec) else None


def _function_of(target: Any) -> Callable[..., Any] | None:
    existing = tool_spec(target)
    if existing is not None:
        return existing.func
    if _is_langchain_tool(target):
        return getattr(target, "func", None)
    return target if callable(target) and not hasattr(target, "on_invoke_tool") else None


def _is_langchain_tool(target: Any) -> bool:
    if "langchain_core" not in sys.modules:
        return False
    from langchain_core.tools import BaseTool

    return isinstance(target, BaseTool)
