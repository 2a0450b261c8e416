"""keel's errors. Every message says what to do next.

    KeelError
     ├── UnsupportedAgentError      runtime.run() got an object no adapter recognises
     ├── PipelineError              a pipeline was put together wrongly (an empty sequence, ...)
     ├── StageFailedError           a pipeline's stage failed (the pipeline fails with it)
     ├── MissingExtraError          the framework's extra is not installed
     ├── StoreError                 the database cannot be used
     │    ├── StoreUnavailableError the connection failed or was lost; runs wait for it
     │    └── SchemaTooNewError     written by a newer keel; left untouched
     ├── ExecutionNotFoundError     no execution with that id
     ├── IdempotencyConflictError   an idempotency key given again for another agent
     ├── AgentNotFoundError         resume() cannot find the agent the execution recorded
     ├── ReplayMismatchError        the journal does not match what the agent does now
     ├── ReplayedToolError          an unsafe tool raised when it ran; replay raises it again
     ├── NotInDoubtError            resolve() on an execution that is not IN_DOUBT
     ├── LeaseLostError             another process owns the execution now
     └── ApprovalError
          ├── NotWaitingError       the execution is not waiting for a decision
          ├── AlreadyDecidedError   that call was decided already (or concurrently)
          └── ApprovalNotFoundError no pending call with that id

Suspension for approval and cancellation are not errors: they derive from BaseException
(see `_Suspended`, `_Cancelled`) so that a user's `except Exception` cannot swallow them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentNotFoundError",
    "AlreadyDecidedError",
    "ApprovalError",
    "ApprovalNotFoundError",
    "ExecutionNotFoundError",
    "IdempotencyConflictError",
    "KeelError",
    "LeaseLostError",
    "MissingExtraError",
    "NotWaitingError",
    "PipelineError",
    "ReplayMismatchError",
    "ReplayedToolError",
    "NotInDoubtError",
    "SchemaTooNewError",
    "StageFailedError",
    "StoreError",
    "StoreUnavailableError",
    "UnsupportedAgentError",
]


class KeelError(Exception):
    """Root of every error keel raises."""


class UnsupportedAgentError(KeelError, TypeError):
    """The object passed to the runtime is not an agent of a supported framework."""


class PipelineError(KeelError, ValueError):
    """A pipeline (`keel.sequence`, `keel.parallel`, `>>`) was put together wrongly, or a stage's
    input does not fit what the stage declares it takes."""


class StageFailedError(KeelError):
    """A stage of a pipeline failed; the pipeline fails with it (the stage's own execution
    holds its error and events)."""


class MissingExtraError(KeelError, ImportError):
    """A framework adapter needs an extra that is not installed."""


class StoreError(KeelError):
    """The database cannot be opened or used."""


class StoreUnavailableError(StoreError):
    """The database could not be reached, or the connection broke mid-transaction.

    An execution that meets it stays RUNNING: once its lease expires, a worker or
    `runtime.resume()` carries it on from its last committed step.
    """


class SchemaTooNewError(StoreError):
    """The database was written by a newer version of keel."""


class ExecutionNotFoundError(KeelError, LookupError):
    """No execution with the given id exists in this store."""


class AgentNotFoundError(KeelError, LookupError):
    """An execution's agent could not be found again for resume."""


class IdempotencyConflictError(KeelError, ValueError):
    """An idempotency key names an execution of another agent."""


class ReplayMismatchError(KeelError):
    """On resume, the agent asked for a step the journal recorded differently."""


class ReplayedToolError(KeelError):
    """On resume: an unsafe tool raised this error when it ran, so keel raises it again
    instead of running the tool a second time (its message is the original one)."""


class NotInDoubtError(KeelError):
    """`resolve()` was called on an execution that is not IN_DOUBT."""


class LeaseLostError(KeelError):
    """Another process took over the execution; this one must stop writing."""


class ApprovalError(KeelError):
    """A decision on a gated call cannot be applied."""


class NotWaitingError(ApprovalError):
    """The execution has no pending approval."""


class AlreadyDecidedError(ApprovalError):
    """The call was approved or rejected already."""


class ApprovalNotFoundError(ApprovalError, LookupError):
    """No pending approval matches the given call id."""


class _Suspended(BaseException):
    """Unwinds a run that must wait for a decision (not an error)."""


class _Stopped(BaseException):
    """Unwinds a run that a policy or a budget stopped (`Deny(reason, stop=True)`): it fails
    with the message, whatever the framework does with a tool's errors."""

    status_reason: dict[str, Any] | None = None
    """Why, as data for the execution row and the `error` event (a budget sets it)."""


class _Cancelled(BaseException):
    """Unwinds a run whose cancellation was requested (not an error)."""
