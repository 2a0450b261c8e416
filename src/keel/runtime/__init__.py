"""The executor, journal, store, events and approvals (framework-neutral)."""

from ._approvals import Allow, ApprovalPolicy, Ask, Deny, PolicyContext
from ._budget import Budget, BudgetExceeded
from ._events import Event, EventType, Status
from ._execution import CallContext, current_call
from ._handle import AgentHandle, EventStream
from ._redact import Redactor
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
    "Budget",
    "BudgetExceeded",
    "CallContext",
    "Deny",
    "Event",
    "EventStream",
    "EventType",
    "PendingApproval",
    "PolicyContext",
    "Redactor",
    "Rule",
    "Status",
    "TokenUsage",
    "ToolCall",
    "Worker",
    "current_call",
]
