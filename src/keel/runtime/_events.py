"""The event model: one closed union of frozen pydantic models, discriminated by `type`.

Events are persisted with a per-execution sequence number; the live stream and the replay from
the store are both built from stored rows, so they yield equal objects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ._budget import BudgetExceeded

__all__ = [
    "ApprovedEvent",
    "CancelledEvent",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "EventType",
    "GuardrailFailEvent",
    "GuardrailPassEvent",
    "HandoffEvent",
    "InDoubtEvent",
    "MessageEvent",
    "RejectedEvent",
    "ResumedEvent",
    "Status",
    "ThinkingEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "WaitingEvent",
]


class Status(StrEnum):
    """Where an execution stands. The execution table is the only source of truth for it."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    IN_DOUBT = "IN_DOUBT"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    @property
    def is_settled(self) -> bool:
        """Nothing will happen without a decision: finished, waiting or in doubt."""
        return self.is_terminal or self in (Status.WAITING, Status.IN_DOUBT)


class EventType(StrEnum):
    THINKING = "thinking"
    MESSAGE = "message"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    HANDOFF = "handoff"
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"
    RESUMED = "resumed"
    GUARDRAIL_PASS = "guardrail_pass"
    GUARDRAIL_FAIL = "guardrail_fail"
    IN_DOUBT = "in_doubt"
    CANCELLED = "cancelled"
    ERROR = "error"
    DONE = "done"


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    execution_id: str
    seq: int
    ts: float
    """Seconds since the epoch, when the event was committed."""
    agent: str | None = None
    """The agent (or graph node) the event belongs to."""


class ThinkingEvent(_EventBase):
    type: Literal["thinking"] = "thinking"
    content: str


class MessageEvent(_EventBase):
    type: Literal["message"] = "message"
    content: str


class ToolCallEvent(_EventBase):
    type: Literal["tool_call"] = "tool_call"
    tool_name: str
    call_id: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolResultEvent(_EventBase):
    type: Literal["tool_result"] = "tool_result"
    tool_name: str
    call_id: str
    result: Any = None


class HandoffEvent(_EventBase):
    type: Literal["handoff"] = "handoff"
    target: str
    call_id: str | None = None


class WaitingEvent(_EventBase):
    type: Literal["waiting"] = "waiting"
    approval_id: str
    tool_name: str
    call_id: str
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    """The rule that asked for the approval."""


class _DecisionEvent(_EventBase):
    approval_id: str
    tool_name: str
    call_id: str
    reviewer: str | None = None
    reason: str | None = None


class ApprovedEvent(_DecisionEvent):
    type: Literal["approved"] = "approved"


class RejectedEvent(_DecisionEvent):
    type: Literal["rejected"] = "rejected"


class ResumedEvent(_EventBase):
    type: Literal["resumed"] = "resumed"
    reason: str | None = None


class GuardrailPassEvent(_EventBase):
    type: Literal["guardrail_pass"] = "guardrail_pass"
    guardrail_name: str
    content: str | None = None


class GuardrailFailEvent(_EventBase):
    type: Literal["guardrail_fail"] = "guardrail_fail"
    guardrail_name: str
    content: str | None = None


class InDoubtEvent(_EventBase):
    type: Literal["in_doubt"] = "in_doubt"
    tool_name: str
    call_id: str
    reason: str | None = None


class CancelledEvent(_EventBase):
    type: Literal["cancelled"] = "cancelled"
    reason: str | None = None


class ErrorEvent(_EventBase):
    type: Literal["error"] = "error"
    content: str
    budget_exceeded: BudgetExceeded | None = None
    """Set when a budget stopped the run."""


class DoneEvent(_EventBase):
    type: Literal["done"] = "done"
    output: Any = None


Event = Annotated[
    ThinkingEvent
    | MessageEvent
    | ToolCallEvent
    | ToolResultEvent
    | HandoffEvent
    | WaitingEvent
    | ApprovedEvent
    | RejectedEvent
    | ResumedEvent
    | GuardrailPassEvent
    | GuardrailFailEvent
    | InDoubtEvent
    | CancelledEvent
    | ErrorEvent
    | DoneEvent,
    Field(discriminator="type"),
]
"""Any keel event; `event.type` tells which."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

TERMINAL_EVENTS = frozenset({"done", "error", "cancelled", "in_doubt"})
"""Event types after which an execution does not go on by itself."""
