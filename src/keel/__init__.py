"""keel: a durable runtime for the agents you already have.

    from keel import AgentRuntime
    with AgentRuntime() as runtime:
        result = runtime.run(agent, "I was charged twice")

`import keel` imports no agent framework; each adapter imports its framework when an agent of
that framework is run.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from . import _errors as errors
from ._errors import (
    AgentNotFoundError,
    AlreadyDecidedError,
    ApprovalError,
    ApprovalNotFoundError,
    ExecutionNotFoundError,
    IdempotencyConflictError,
    KeelError,
    LeaseLostError,
    MissingExtraError,
    NotInDoubtError,
    NotWaitingError,
    PipelineError,
    ReplayedToolError,
    ReplayMismatchError,
    SchemaTooNewError,
    StageFailedError,
    StoreError,
    StoreUnavailableError,
    UnsupportedAgentError,
)
from ._tool import tool
from .pipelines import Parallel, Pipeline, agent, parallel, sequence
from .runtime import (
    AgentHandle,
    AgentResult,
    AgentRuntime,
    Allow,
    ApprovalPolicy,
    Ask,
    Budget,
    BudgetExceeded,
    CallContext,
    Deny,
    Event,
    EventStream,
    EventType,
    PendingApproval,
    PolicyContext,
    Redactor,
    Rule,
    Status,
    TokenUsage,
    ToolCall,
    Worker,
    current_call,
)
from .runtime._loop import refuse_in_running_loop

__version__ = "0.1.0"

__all__ = [
    "AgentHandle",
    "AgentNotFoundError",
    "AgentResult",
    "AgentRuntime",
    "Allow",
    "AlreadyDecidedError",
    "ApprovalError",
    "ApprovalNotFoundError",
    "ApprovalPolicy",
    "Ask",
    "Budget",
    "BudgetExceeded",
    "CallContext",
    "Deny",
    "Event",
    "EventStream",
    "EventType",
    "ExecutionNotFoundError",
    "IdempotencyConflictError",
    "KeelError",
    "LeaseLostError",
    "MissingExtraError",
    "NotInDoubtError",
    "NotWaitingError",
    "Parallel",
    "PendingApproval",
    "Pipeline",
    "PipelineError",
    "PolicyContext",
    "Redactor",
    "ReplayMismatchError",
    "ReplayedToolError",
    "Rule",
    "SchemaTooNewError",
    "StageFailedError",
    "Status",
    "StoreError",
    "StoreUnavailableError",
    "TokenUsage",
    "ToolCall",
    "UnsupportedAgentError",
    "Worker",
    "agent",
    "current_call",
    "errors",
    "parallel",
    "run",
    "run_async",
    "sequence",
    "start",
    "stream",
    "tool",
]

_default: AgentRuntime | None = None
_default_lock = threading.Lock()


def _default_runtime() -> AgentRuntime:
    """The runtime behind keel.run / start / stream / run_async (closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = AgentRuntime()
            atexit.register(_default.close)
        return _default


def run(agent: Any, input: Any, **options: Any) -> AgentResult:
    """`AgentRuntime.run` on the default runtime."""
    refuse_in_running_loop("keel.run")  # before the default runtime makes its store
    return _default_runtime().run(agent, input, **options)


async def run_async(agent: Any, input: Any, **options: Any) -> AgentResult:
    """`AgentRuntime.run_async` on the default runtime."""
    return await _default_runtime().run_async(agent, input, **options)


def start(agent: Any, input: Any, **options: Any) -> AgentHandle:
    """`AgentRuntime.start` on the default runtime."""
    return _default_runtime().start(agent, input, **options)


def stream(agent: Any, input: Any, **options: Any) -> EventStream:
    """`AgentRuntime.stream` on the default runtime."""
    return _default_runtime().stream(agent, input, **options)
