"""The executor, journal, store, events and approvals (framework-neutral)."""

from ._approvals import Allow, ApprovalPolicy, Ask, Deny, PolicyContext
from ._events import Event, EventType, Status
from ._execution import CallContext, current_call
from ._handle import AgentHandle, EventStream
from ._result import AgentResult, PendingApproval, TokenUsage, ToolCall
from ._rules import Rule
from ._runtime import AgentRuntime
from ._worker import Worker

__all__ = [
    "AgentHandle",
    "AgentResult",
    "AgentRuntime",
    "Allow",
    "ApprovalPolicy",
    "Ask",
    "CallContext",
    "Deny",
    "Event",
    "EventStream",
    "EventType",
    "PendingApproval",
    "PolicyContext",
    "Rule",
    "Status",
    "TokenUsage",
    "ToolCall",
    "Worker",
    "current_call",
]
