"""Approval rules, policy verdicts, and decisions on gated calls.

A call is gated by, in this order: the runtime's `approval_policy` (a callable returning
`Allow()`, `Deny(reason)`, `Ask()` or None to defer, or a list of `Rule`s, see _rules.py), the
tool's own flag (`@keel.tool(approval_required=True)` or the framework's native flag), and the
runtime's `require_approval` globs. A policy that raises, returns something else, or cannot see the
arguments fails closed: the call waits for a human.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from sqlalchemy import select, update

from .._errors import (
    AlreadyDecidedError,
    ApprovalNotFoundError,
    NotWaitingError,
)
from ._changes import CHANGES
from ._events import Status
from ._family import PIPELINE, ancestors, descendants, lock_family, wake_ancestors
from ._faults import fault_point
from ._json import dumps, jsonable
from ._rules import Rule, RuleList
from ._store import APPROVALS, NewEvent, Store

__all__ = [
    "Allow",
    "ApprovalPolicy",
    "ApprovalRules",
    "Ask",
    "Deny",
    "Policy",
    "PolicyContext",
    "Verdict",
    "decide",
]


@dataclass(frozen=True)
class Allow:
    """Run the call without asking anyone."""


@dataclass(frozen=True)
class Deny:
    """Do not run the call; the model receives `reason` as the tool result (or, with
    `stop=True`, the run stops there: FAILED, with `reason`)."""

    reason: str
    stop: bool = False


@dataclass(frozen=True)
class Ask:
    """Pause the run until a human approves or rejects the call."""

    reason: str | None = None


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may want to know about a call besides its tool name and arguments."""

    execution_id: str
    call_id: str
    agent: str | None
    kind: Literal["tool", "handoff"]


ApprovalPolicy = Callable[[str, dict[str, Any], PolicyContext], "Allow | Deny | Ask | None"]


@dataclass(frozen=True)
class Verdict:
    """What the rules decided for one call, and which rule decided it."""

    action: Literal["run", "ask", "approve", "reject"]
    rule: str | None = None
    reason: str | None = None
    stop: bool = False
    """A rejection that fails the run instead of telling the model."""


RUN = Verdict("run")

Policy = ApprovalPolicy | RuleList | Sequence[Rule]
"""What `approval_policy=` takes: a callable, or a list of rules."""


@dataclass(frozen=True)
class ApprovalRules:
    require_approval: Sequence[str] = ()
    policy: Policy | None = None

    def __post_init__(self) -> None:
        # A misread setting would let gated calls run unasked, so anything unexpected is an
        # error; a single name is taken as one (iterated, it would be single letters).
        names = self.require_approval
        names = (names,) if isinstance(names, str) else tuple(names)
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"require_approval takes tool names or globs (strings), not "
                                f"{name!r}.")
        object.__setattr__(self, "require_approval", names)
        if isinstance(self.policy, list | tuple):  # a rule list
            object.__setattr__(self, "policy", RuleList(self.policy))
        elif self.policy is not None and not callable(self.policy):
            raise TypeError(
                f"approval_policy takes a function (tool_name, args, ctx) -> Allow() | Deny() | "
                f"Ask() | None, or a list of Rule(...), not {self.policy!r}."
            )

    def may_gate(self, name: str, *, flagged: bool) -> bool:
        """Whether any rule could gate calls of this tool (cheap; no arguments needed)."""
        return flagged or self.policy is not None or self._glob(name) is not None

    def evaluate(
        self,
        name: str,
        args: dict[str, Any] | None,
        context: PolicyContext,
        *,
        flagged_by: str | None = None,
    ) -> Verdict:
        """Decide one call. `args` is None when the arguments could not be parsed."""
        if isinstance(self.policy, RuleList):
            verdict_of_rules = self.policy.evaluate(name, args, context)
            if verdict_of_rules is not None:
                return verdict_of_rules
        elif callable(self.policy):
            if args is None:
                return Verdict("ask", rule="approval_policy: arguments could not be parsed")
            try:
                verdict = self.policy(name, args, context)
            except Exception as exc:  # fail closed
                return Verdict("ask", rule=f"approval_policy raised {exc!r}")
            if isinstance(verdict, Allow):
                return Verdict("approve", rule="approval_policy")
            if isinstance(verdict, Deny):
                return Verdict("reject", rule="approval_policy", reason=verdict.reason,
                               stop=verdict.stop)
            if isinstance(verdict, Ask):
                return Verdict("ask", rule="approval_policy", reason=verdict.reason)
            if verdict is not None:
                return Verdict("ask", rule=f"approval_policy returned {verdict!r}")
        if flagged_by is not None:
            return Verdict("ask", rule=flagged_by)
        pattern = self._glob(name)
        if pattern is not None:
            return Verdict("ask", rule=f"require_approval {pattern!r}")
        return RUN

    def _glob(self, name: str) -> str | None:
        return next((p for p in self.require_approval if fnmatchcase(name, p)), None)


def new_approval_row(
    execution_id: str,
    *,
    call_id: str,
    tool_name: str,
    kind: str,
    agent: str | None,
    args: Any,
    verdict: Verdict,
) -> dict[str, Any]:
    """An approval row: pending for `ask`, already decided for a policy's verdict."""
    now = time.time()
    decided = verdict.action in ("approve", "reject")
    return {
        "id": uuid.uuid4().hex,
        "execution_id": execution_id,
        "call_id": call_id,
        "tool_name": tool_name,
        "kind": kind,
        "agent": agent,
        "args": dumps(args),
        "status": {"approve": "approved", "reject": "rejected"}.get(verdict.action, "pending"),
        "rule": verdict.rule,
        "requested_at": now,
        "decided_at": now if decided else None,
        "reviewer": verdict.rule if decided else None,
        "reason": verdict.reason,
    }


def decide(
    store: Store,
    execution_id: str,
    *,
    approve: bool,
    call_id: str | None = None,
    reviewer: str | None = None,
    reason: str | None = None,
    response: Any = None,
) -> list[str]:
    """Approve or reject pending calls of a waiting execution; returns the decided call ids.

    `response` (with an approval) is the value the framework's pause is answered with. On a
    pipeline, the pending calls are those of its stages that wait; each decision is recorded
    on the stage and, as an event, on every pipeline above it.

    Runs in one write transaction, so of two concurrent decisions exactly one wins. When no
    call is left pending the execution becomes QUEUED, ready to resume (and so do the
    pipelines above it that wait for nothing else).
    """
    status = "approved" if approve else "rejected"
    with store.transaction() as conn:
        execution_status, framework = lock_family(store, conn, execution_id)
        if framework == PIPELINE:  # its stages hold the calls
            waiting = [i for i, _ in descendants(conn, execution_id, [Status.WAITING.value])]
        else:
            waiting = [execution_id] if execution_status == Status.WAITING.value else []
        redactor = store.redactor_for(conn, execution_id)
        if redactor is not None:  # what the reviewer wrote is stored as the run stores data
            reason = redactor.redact_value(reason)
            response = redactor.redact_value(jsonable(response))
        rows = conn.execute(
            select(APPROVALS).where(APPROVALS.c.execution_id.in_([execution_id, *waiting]))
            .order_by(APPROVALS.c.requested_at, APPROVALS.c.call_id)
        ).all()
        pending = [r for r in rows if r.status == "pending" and r.execution_id in waiting]
        targets = [r for r in pending if call_id is None or r.call_id == call_id]
        if not targets:
            _explain_nothing_to_decide(execution_id, execution_status, rows, call_id)
        conn.execute(
            update(APPROVALS)
            .where(APPROVALS.c.id.in_([r.id for r in targets]), APPROVALS.c.status == "pending")
            .values(status=status, decided_at=time.time(), reviewer=reviewer, reason=reason,
                    response=None if response is None else dumps(response))
        )
        events: dict[str, list[NewEvent]] = {}  # per execution: the stage and those above it
        for r in targets:
            event = NewEvent(status, agent=r.agent, data={
                "approval_id": r.id, "tool_name": r.tool_name, "call_id": r.call_id,
                "reviewer": reviewer, "reason": reason})
            for member in [r.execution_id, *(i for i, _ in ancestors(conn, r.execution_id))]:
                events.setdefault(member, []).append(event)
        decided = {r.id for r in targets}
        ready = {r.execution_id for r in targets} - {
            r.execution_id for r in pending if r.id not in decided}
        for member, appended in events.items():
            store.append_events(
                conn, member, appended, **({"status": Status.QUEUED.value} if member in ready
                                           else {}))
        woken = []
        for member in ready:
            store.notify_work(conn, member)
            woken += wake_ancestors(store, conn, member)
    fault_point("approval:after_decision")
    for member in {*events, *woken}:
        CHANGES.notify(member)
    return [r.call_id for r in targets]


def _explain_nothing_to_decide(
    execution_id: str, status: str, rows: Sequence[Any], call_id: str | None
) -> None:
    decided = [r for r in rows
               if r.status in ("approved", "rejected") and call_id in (None, r.call_id)]
    if decided:
        last = decided[-1]
        by = f" by {last.reviewer}" if last.reviewer else ""
        raise AlreadyDecidedError(
            f"The call {last.call_id!r} ({last.tool_name}) of execution {execution_id!r} was "
            f"already {last.status}{by}. A decision cannot be changed; check "
            "AgentHandle.status() before deciding."
        )
    if call_id is not None and status == Status.WAITING.value:
        waiting = ", ".join(repr(r.call_id) for r in rows if r.status == "pending")
        raise ApprovalNotFoundError(
            f"Execution {execution_id!r} has no pending call {call_id!r}; pending: {waiting}."
        )
    raise NotWaitingError(
        f"Execution {execution_id!r} is {status}, not waiting for an approval, so there is "
        "nothing to approve or reject."
    )
