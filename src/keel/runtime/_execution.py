"""One claimed execution, as adapters see it: the journal, the approval rules, the lease.

Adapters call `model_step()`-style helpers through this object and never touch the store
directly. Every method that writes does so in one fenced transaction (`Store.write`).

Durability follows one rule: before anything leaves the process, everything the run journaled
is on disk. So a run's end, a pause, an intent and the commit a tool call follows are durable,
while the commits between them (tool results, handoffs, turns before the next model call) are
relaxed: they survive a crash of this process, and a power cut costs at most the steps since
the last durable commit, which then run again exactly as after a crash just before them (a
tool with the same idempotency key; an unsafe one parks IN_DOUBT).

Every write is redacted first when the run has a redactor (`_redact`), and carries the run's
running time so far; each model call and tool call first passes the run's budget (`_budget`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, NoReturn, Protocol

from .._errors import KeelError, ReplayedToolError, _Cancelled, _Stopped, _Suspended
from ._approvals import ApprovalRules, PolicyContext, Verdict, new_approval_row
from ._budget import Budget, Meter
from ._events import Event, Status
from ._faults import fault_point
from ._fenced import event_rows
from ._json import dumps, jsonable, loads
from ._redact import Redactor, redacted_approval, redacted_event, redacted_json
from ._schema import ApprovalRow, ExecutionRow, StepRow
from ._store import NewEvent, Store, Written, event_of
from ._supplied import current_supplier

__all__ = [
    "STOPPING", "ApprovalRequest", "CallContext", "Execution", "RunState", "ToolRun",
    "current_call",
]


@dataclass(frozen=True)
class CallContext:
    """What a running tool can learn about its call, through `keel.current_call()`."""

    execution_id: str
    call_id: str
    tool_name: str
    idempotency_key: str
    """Stable across retries and resumes: pass it to APIs that deduplicate effects."""
    attempt: int


_current_call: ContextVar[CallContext | None] = ContextVar("keel_current_call", default=None)
_calls_around: ContextVar[int] = ContextVar("keel_calls_around", default=0)
"""How many of the execution's tool calls the running code runs in (an agent tool's nested
run runs in one)."""


def current_call() -> CallContext | None:
    """The tool call keel is running in this task, or None outside a journaled tool."""
    return _current_call.get()


class RunState(Protocol):
    """State a tool can change besides its result, saved and restored as JSON data."""

    def save(self) -> Any: ...

    def restore(self, data: Any) -> None: ...


@dataclass(frozen=True)
class ApprovalRequest:
    """A gated call that must wait for a human."""

    call_id: str
    tool_name: str
    args: Any
    agent: str | None
    kind: Literal["tool", "handoff", "interrupt"] = "tool"
    rule: str | None = None
    """What asked, when no rule of keel's did (a framework's own pause)."""


class Execution:
    """A claimed execution: journal cache, approval state, fenced writes."""

    def __init__(
        self,
        store: Store,
        row: ExecutionRow,
        *,
        epoch: int,
        rules: ApprovalRules,
        lease_seconds: float,
        fresh: bool = False,
    ) -> None:
        """`fresh`: admitted just now by this process, so its journal is known to be empty."""
        self.id = row.id
        self.row = row
        self.fresh = fresh
        self.store = store
        self.epoch = epoch
        self.rules = rules
        self.lease_seconds = lease_seconds
        self.lease_expires_at = row.lease_expires_at or 0.0  # as far as this process knows
        self.cancel_requested = bool(row.cancel_requested)
        self._steps: dict[str, _Step] = {} if fresh else {
            key: _Step(s.status, s.attempt, s.payload, s.kind)
            for key, s in store.steps(row.id).items()
        }
        self.redactor = Redactor.combine(store.redactor, row.redaction)
        self.meter = Meter(Budget.from_json(row.budget), run_seconds=row.run_seconds or 0.0,
                           journal=[(s.kind, s.status, s.payload) for s in self._steps.values()])
        approvals = [] if fresh else store.approvals(row.id)
        self._decisions: dict[str, Verdict] = {a.call_id: _stored_verdict(a) for a in approvals}
        self._responses: dict[str, Any] = {
            a.call_id: loads(a.response) for a in approvals if a.response is not None}
        self._verdicts: dict[str, Verdict] = {}
        self._deferred: dict[str, list[Any]] = {"events": [], "steps": [], "approvals": []}
        self._stopped = False
        self._written = _Written(row) if fresh else None
        self._tools_running = 0
        self._tools_unwinding = 0  # running calls around stops: they end as those unwind
        self._tools_ended = threading.Condition()  # tools may run in threads
        self.pauses: tuple[type[BaseException], ...] = ()
        """What the framework raises in a tool to pause it, to run it again from its start
        on resume (LangGraph's interrupt()): set by the adapter."""

    # -- journal --------------------------------------------------------------------------

    def payloads(self, kind: str) -> list[Any]:
        """The payloads of the finished steps of `kind` in this execution's journal as this
        process knows it (a resumed execution's, read when it was claimed, and its own)."""
        return [loads(step.payload) for step in self._steps.values()
                if step.kind == kind and step.status == "done"]

    def recorded(self, step_key: str) -> Any | None:
        """The payload of a finished step, or None if the step has not completed."""
        step = self._steps.get(step_key)
        return loads(step.payload) if step is not None and step.status == "done" else None

    def record(
        self,
        step_key: str,
        *,
        kind: str,
        name: str,
        payload: Any,
        events: Sequence[NewEvent] = (),
        status: Literal["intent", "done", "failed", "retry"] = "done",
        attempt: int = 1,
        approvals: Sequence[dict[str, Any]] = (),
        defer: bool = False,
        durable: bool = False,
    ) -> None:
        """Journal a step with its events in one transaction, `durable` when something
        leaves the process next (a model turn's tool calls run).

        A `defer`red step commits with this execution's next write instead; use it only for
        steps whose loss in a crash costs a repeated model call and nothing else.
        """
        if kind == "model":
            fault_point("model:after_response")
            self.meter.answered(payload)
        if self.redactor is not None:  # kept redacted here too: a replay sees what is stored
            payload = self.redactor.redact_value(jsonable(payload))
        text = dumps(payload)
        step = {"step_key": step_key, "kind": kind, "name": name, "status": status,
                "attempt": attempt, "payload": text}
        self._steps[step_key] = _Step(status, attempt, text, kind)
        if defer:
            for part, rows in (("events", events), ("steps", [step]), ("approvals", approvals)):
                self._deferred[part].extend(rows)
        else:
            self._write(events=events, approvals=approvals, steps=[step], durable=durable)

    def recorded_calls(self) -> set[str]:
        """The call ids of the tool_call events this execution has committed (read from the
        store when it resumes; adapters use it not to announce a call twice)."""
        if self.fresh:
            return set()
        return {str(e.call_id) for e in self.store.events(self.id) if e.type == "tool_call"}

    def emit(self, events: Sequence[NewEvent]) -> None:
        """Commit events now (nothing, when there are none)."""
        if events:
            self._write(events=events)

    def flush(self) -> None:
        """Commit deferred steps now (relaxed)."""
        if self._deferred["steps"]:
            self._write()

    def sync(self) -> None:
        """Put what this run journaled on disk, before something leaves the process: the
        deferred steps commit durably, or, when a relaxed commit of this process may not be on
        disk yet, a durable write of the lease alone flushes it."""
        if self._deferred["steps"] or self.store.unsynced:
            self._write(durable=True)

    def before_model_call(self) -> None:
        """A step boundary: a model call is about to start. Stops the run here if it was
        cancelled or has no budget left for the call."""
        self.check_cancelled()
        self.meter.start("model")

    def finish(self, status: Status, events: Sequence[NewEvent], **columns: Any) -> None:
        """Commit the end of the run (with any deferred steps) and give up the lease."""
        self._write(events=events, status=status.value, finished_at=time.time(),
                    lease_owner=None, lease_expires_at=None, renew=False, durable=True,
                    **columns)

    def _write(self, *, events: Sequence[NewEvent] = (), steps: Sequence[dict[str, Any]] = (),
               approvals: Sequence[dict[str, Any]] = (), renew: bool = True,
               durable: bool = False, **columns: Any) -> None:
        """One fenced write of these changes after the deferred ones; `renew` the lease.
        Once the run has stopped to wait (or in doubt), nothing more is written: what is still
        unwinding (a framework finishing its other tasks) stops here too."""
        if self._stopped:
            raise _Suspended
        deferred, self._deferred = self._deferred, {"events": [], "steps": [], "approvals": []}
        events = [*deferred["events"], *events]
        steps = [*deferred["steps"], *steps]
        approvals = [*deferred["approvals"], *approvals]
        if self.redactor is not None:
            events, approvals = self._redacted(events, approvals, columns)
        columns["run_seconds"] = self.meter.seconds
        started = time.time()
        written = self.store.write(
            self.id, self.epoch, events=events, steps=steps, approvals=approvals,
            lease_seconds=self.lease_seconds if renew else None, durable=durable, **columns,
        )
        self.cancel_requested = written.cancel_requested
        if self._written is not None:
            self._written.add(written, events, steps, approvals, columns)
        if renew:  # the store dated it a moment later: this is on the safe side
            self.lease_expires_at = started + self.lease_seconds

    def _redacted(self, events: list[NewEvent], approvals: list[dict[str, Any]],
                  columns: dict[str, Any]) -> tuple[list[NewEvent], list[dict[str, Any]]]:
        """The rows of a write as they are stored: redacted (`columns` in place)."""
        redactor = self.redactor
        assert redactor is not None
        if "output" in columns:
            columns["output"] = redacted_json(redactor, columns["output"])
        if "error" in columns:
            columns["error"] = redactor.redact_value(columns["error"])
        return ([redacted_event(redactor, e) for e in events],
                [redacted_approval(redactor, a) for a in approvals])

    def renew_lease(self) -> None:
        """Extend the lease (a heartbeat); LeaseLostError if another process owns the run.
        It writes nothing else (but the running time): deferred steps wait for the run's own
        next write."""
        started = time.time()
        seconds = self.meter.seconds
        written = self.store.write(self.id, self.epoch, lease_seconds=self.lease_seconds,
                                   durable=False, run_seconds=seconds)
        if self._written is not None:
            self._written.add(written, [], [], [], {"run_seconds": seconds})
        self.lease_expires_at = started + self.lease_seconds

    def written(self) -> tuple[ExecutionRow, list[Event], list[ApprovalRow],
                               dict[str, StepRow]] | None:
        """A fresh execution's rows as this process wrote them, as `Store.snapshot()` reads
        them; None when another process wrote to it too (read the store then)."""
        return self._written.rows() if self._written is not None else None

    def confirm_lease(self) -> None:
        """Before a tool runs: renew a lease that may have run out (this process was paused,
        or its heartbeat is late), so that a process whose run another worker has taken over
        stops here with LeaseLostError instead of running the tool again. Heartbeats keep
        more than half a lease ahead, so a healthy run never writes here."""
        if time.time() > self.lease_expires_at - self.lease_seconds / 2:
            self.renew_lease()

    def check_cancelled(self) -> None:
        """Stop at a step boundary when someone asked to cancel this execution."""
        if self.cancel_requested:
            raise _Cancelled

    def cancel_reason(self) -> str | None:
        """Why someone asked to cancel this running execution, if they said."""
        return (loads(self.store.execution(self.id).status_reason) or {}).get("cancel_reason")

    # -- approvals ------------------------------------------------------------------------

    def verdict(
        self,
        call_id: str,
        tool_name: str,
        args: dict[str, Any] | None,
        *,
        agent: str | None,
        kind: Literal["tool", "handoff"] = "tool",
        flagged_by: str | None = None,
    ) -> Verdict:
        """The decision for a call: a stored one if any, else what the rules say now."""
        stored = self._decisions.get(call_id)
        if stored is not None:
            return stored
        if self.recorded(f"tool:{call_id}") is not None:
            # It ran, undecided: never asked about again (its replayed arguments may differ,
            # redacted, from those the rules saw).
            return Verdict("run")
        if call_id not in self._verdicts:
            context = PolicyContext(self.id, call_id, agent, kind)
            self._verdicts[call_id] = self.rules.evaluate(
                tool_name, args, context, flagged_by=flagged_by
            )
        return self._verdicts[call_id]

    def suspend(self, requests: Sequence[ApprovalRequest]) -> None:
        """Commit pending approval rows, `waiting` events and the WAITING status at once."""
        rows, events = [], []
        for request in requests:
            if request.call_id in self._decisions:
                continue
            if request.kind == "tool":  # nobody is asked about a call that could not run
                self.meter.check("tool", request.tool_name)
            verdict = self._verdicts.get(request.call_id) or Verdict(
                "ask", rule=request.rule or "the framework could not check the call's arguments")
            row = new_approval_row(
                self.id,
                call_id=request.call_id,
                tool_name=request.tool_name,
                kind=request.kind,
                agent=request.agent,
                args=request.args,
                verdict=Verdict("ask", rule=verdict.rule, reason=verdict.reason),
            )
            rows.append(row)
            events.append(
                NewEvent(
                    "waiting",
                    agent=request.agent,
                    data={
                        "approval_id": row["id"],
                        "tool_name": request.tool_name,
                        "call_id": request.call_id,
                        "args": request.args if isinstance(request.args, dict) else {},
                        "reason": verdict.rule,
                    },
                )
            )
        if not rows:  # the framework asks again about calls that were decided: never settles
            decided = ", ".join(repr(r.call_id) for r in requests)
            raise KeelError(
                f"The framework paused again for the decided call(s) {decided}; their "
                "arguments are probably not valid JSON. The run stops here instead of waiting "
                "forever; fix the tool's arguments (or the model) and start a new run."
            )
        self._write(events=events, approvals=rows, status=Status.WAITING.value,
                    lease_owner=None, lease_expires_at=None, renew=False, durable=True)
        self._stopped = True
        fault_point("approval:after_request")

    def park_in_doubt(self, run: ToolRun) -> NoReturn:
        """Stop the run IN_DOUBT: `run`, an unsafe call, started before a crash and left no
        result. Nothing runs it again until someone resolves it (`AgentHandle.resolve()`)."""
        reason = (f"{run.tool_name} has unsafe side effects and was cut off mid-call; it may "
                  "or may not have taken effect. Check, then record its result, retry it, or "
                  "fail the run.")
        self._write(events=[NewEvent("in_doubt", run.agent, {
            "tool_name": run.tool_name, "call_id": run.call_id, "reason": reason})],
            status=Status.IN_DOUBT.value, lease_owner=None, lease_expires_at=None, renew=False,
            durable=True)
        self._stopped = True
        raise _Suspended

    def release(self) -> None:
        """Give the execution back, QUEUED and without an owner, as it was claimed: for a
        resume with the agent its journal was written by."""
        self._write(status=Status.QUEUED.value, lease_owner=None, lease_expires_at=None,
                    renew=False, durable=True)
        self._stopped = True

    def pause(self, status: Literal[Status.WAITING, Status.IN_DOUBT]) -> None:
        """Stop the run WAITING or IN_DOUBT on a decision asked for elsewhere (by a pipeline's
        stage, which holds the pending call): commit the status and give up the lease. The
        caller then unwinds with _Suspended."""
        self._write(status=status.value, lease_owner=None, lease_expires_at=None, renew=False,
                    durable=True)
        self._stopped = True

    # -- tools ----------------------------------------------------------------------------

    async def run_tool(
        self, *, invoke: Callable[[], Awaitable[Any]], **call: Any
    ) -> Any:
        """Run a tool call exactly as the journal allows: replay, reject, or run and record.
        `call`: the arguments of `start_tool()`."""
        try:
            run = self.start_tool(**call)
        except STOPPING as stop:
            await self.tools_settled()
            self.unwind(stop)
        if run.done:
            return run.result
        with run.running():  # what the tool raises is its own failure; journaling's is not
            found, supplied = run.supplied()
            output = supplied if found else await invoke()
        return run.finish(output)

    def run_tool_sync(self, *, invoke: Callable[[], Any], **call: Any) -> Any:
        """`run_tool()` for a tool called from synchronous code."""
        try:
            run = self.start_tool(**call)
        except STOPPING as stop:
            self._wait_for_tools()
            self.unwind(stop)
        if run.done:
            return run.result
        with run.running():
            found, supplied = run.supplied()
            output = supplied if found else invoke()
        return run.finish(output)

    async def tools_settled(self) -> None:
        """Wait until the tool calls this run has running end. A run that stops at a tool
        call (its budget, a policy, a cancellation, a call in doubt) lets the calls already
        running beside it finish and journal their results first, instead of having its
        framework cut them off. Then `unwind()`."""
        if self._tools_running:
            await asyncio.to_thread(self._wait_for_tools)

    def unwind(self, stop: BaseException) -> NoReturn:
        """Stop the run as `start_tool()`'s `stop` says, once the calls beside it settled."""
        if isinstance(stop, _InDoubt):
            self.park_in_doubt(stop.run)
        raise stop

    def _wait_for_tools(self) -> None:
        """Wait until no other tool call runs. A stop inside calls (in an agent tool's nested
        run) cannot wait for the calls around it, which end as it unwinds, nor for the calls
        around another such stop: those are counted as unwinding."""
        around = _calls_around.get()
        with self._tools_ended:
            self._tools_unwinding += around
            try:
                self._tools_ended.wait_for(
                    lambda: self._tools_running <= self._tools_unwinding)
            finally:
                self._tools_unwinding -= around

    def _tool_running(self, change: int) -> None:
        with self._tools_ended:
            self._tools_running += change
            self._tools_ended.notify_all()

    def start_tool(
        self,
        *,
        call_id: str,
        tool_name: str,
        agent: str | None,
        args: Any,
        flagged_by: str | None = None,
        gated: bool = False,
        unsafe: bool = False,
        state: RunState | None = None,
        announce: bool = False,
    ) -> ToolRun:
        """Decide a tool call from the journal and the rules.

        `ToolRun.done` is set, with the answer in `ToolRun.result`, when the call must not run:
        its result is journaled (replay) or it was rejected. Otherwise the caller runs it
        inside `running()` and hands its output to `finish()`. A gated call that was approved
        writes an intent row first, so the approval is committed before the intent; so does an
        `unsafe` one, and if a resume finds its intent without a result, the execution parks
        IN_DOUBT instead of running it again (it raises `_InDoubt`, one of `STOPPING`: the
        caller lets the calls running beside it settle, then `unwind()`s). An ungated
        idempotent call writes only its result. `state` journals what the tool may change besides
        its result (the run's context), so that replaying the call restores it. `announce`
        adds the `tool_call` event, for calls no model response announced.
        """
        if self._stopped:  # the run waits or is in doubt: nothing more starts
            raise _Suspended
        key = f"tool:{call_id}"
        run = ToolRun(self, key, call_id, tool_name, agent, args, state, announce, unsafe)
        done = self.recorded(key)
        if done is not None:
            if state is not None and "state" in done:
                state.restore(done["state"])
            return run.answered(done["result"])
        previous = self._steps.get(key)
        if unsafe and previous is not None:
            if previous.status == "failed":  # it raised when it ran: it raises the same now
                raise ReplayedToolError(loads(previous.payload)["error"])
            if previous.status == "intent":  # it started, and nobody knows how far it got
                raise _InDoubt(run)
        verdict = (
            self.verdict(call_id, tool_name, args if isinstance(args, dict) else None,
                         agent=agent, flagged_by=flagged_by)
            if gated or call_id in self._decisions or call_id in self._verdicts
            else Verdict("run")
        )
        approvals = self.policy_rows(call_id, tool_name, agent, args, verdict)
        if verdict.action == "reject":
            result = rejection_message(tool_name, verdict.reason)
            self.record(
                key, kind="tool", name=tool_name,
                payload={"args": args, "result": result, "rejected": True},
                events=[*run.announcement(), _tool_result(agent, tool_name, call_id, result)],
                approvals=approvals,
            )
            if verdict.stop:
                raise _Stopped(f"{verdict.rule} denied {tool_name} and stopped the run: "
                               f"{verdict.reason}")
            return run.answered(result)
        if verdict.action == "ask":  # fail closed: a gated call never runs undecided
            raise KeelError(
                f"The gated call {call_id!r} to {tool_name} was invoked before a decision was "
                "recorded. This is a keel bug; please report it with the execution id."
            )
        self.meter.start("tool", tool_name, again=previous is not None)
        run.attempt = previous.attempt + 1 if previous is not None else 1
        fault_point("tool:before_intent")
        if verdict.action == "approve" or unsafe:
            self.record(
                key, kind="tool", name=tool_name, status="intent", attempt=run.attempt,
                payload={"args": args, "unsafe": True} if unsafe else {"args": args},
                approvals=approvals, durable=True,
            )
        self.check_cancelled()
        self.sync()  # the turn that asked for this call is on disk before the call runs
        fault_point("tool:after_intent")
        self.confirm_lease()
        return run

    def decision(self, call_id: str) -> Verdict | None:
        """The stored decision on a call (approve or reject), or None while it is pending."""
        verdict = self._decisions.get(call_id)
        return verdict if verdict is not None and verdict.action != "ask" else None

    def response(self, call_id: str) -> Any:
        """The value a reviewer answered a pause with (`AgentHandle.respond`), or None."""
        return self._responses.get(call_id)

    def policy_rows(
        self, call_id: str, tool_name: str, agent: str | None, args: Any, verdict: Verdict,
        kind: Literal["tool", "handoff"] = "tool",
    ) -> list[dict[str, Any]]:
        """The row of a decision the policy made just now, to commit with the step it governs
        (none for stored or pending decisions)."""
        if call_id in self._decisions or verdict.action not in ("approve", "reject"):
            return []
        row = new_approval_row(
            self.id, call_id=call_id, tool_name=tool_name, kind=kind, agent=agent,
            args=args, verdict=verdict,
        )
        self._decisions[call_id] = verdict
        return [row]


class _InDoubt(BaseException):
    """`start_tool()` found `run`, an unsafe call, cut off by a crash: the run parks IN_DOUBT."""

    def __init__(self, run: ToolRun) -> None:
        self.run = run


STOPPING = (_Stopped, _Cancelled, _InDoubt)
"""What `start_tool()` raises to stop the run at a call; see `Execution.unwind()`."""


class ToolRun:
    """One tool call between keel's decision on it and its journaled result."""

    def __init__(self, execution: Execution, key: str, call_id: str, tool_name: str,
                 agent: str | None, args: Any, state: RunState | None,
                 announce: bool, unsafe: bool = False) -> None:
        self.execution, self.key, self.call_id = execution, key, call_id
        self.tool_name, self.agent, self.args = tool_name, agent, args
        self.state, self.announce, self.unsafe = state, announce, unsafe
        self.attempt = 1
        self.done = False
        self.result: Any = None

    def answered(self, result: Any) -> ToolRun:
        self.done, self.result = True, result
        return self

    def announcement(self) -> list[NewEvent]:
        if not self.announce:
            return []
        args = self.args if isinstance(self.args, dict) else {"_raw": jsonable(self.args)}
        return [NewEvent("tool_call", self.agent, {
            "tool_name": self.tool_name, "call_id": self.call_id, "args": jsonable(args)})]

    @contextmanager
    def running(self) -> Iterator[None]:
        """The tool runs inside: `keel.current_call()` describes it. An unsafe tool that
        raises has finished (it is not in doubt): the error is journaled, to be raised again
        on replay instead of running the tool. One its framework paused is not in doubt
        either: it runs again from its start on resume, as the framework intends."""
        ex = self.execution
        token = _current_call.set(CallContext(
            ex.id, self.call_id, self.tool_name, f"{ex.id}:{self.call_id}", self.attempt))
        around = _calls_around.set(_calls_around.get() + 1)
        ex._tool_running(+1)
        try:
            yield
        except Exception as exc:
            if self.unsafe:
                paused = isinstance(exc, ex.pauses)
                ex.record(self.key, kind="tool", name=self.tool_name,
                          status="retry" if paused else "failed", attempt=self.attempt,
                          payload={"args": self.args, "unsafe": True} if paused else
                          {"args": self.args, "error": str(exc)})
            raise
        finally:
            ex._tool_running(-1)
            _calls_around.reset(around)
            _current_call.reset(token)

    def supplied(self) -> tuple[bool, Any]:
        """(True, result) when a mock run's script answers instead of the tool."""
        supplier = current_supplier()
        return supplier.tool_result(self.call_id) if supplier else (False, None)

    def finish(self, output: Any, events: Sequence[NewEvent] | None = None) -> Any:
        """Journal the tool's output with its events: its `tool_result`, or `events` instead
        (a call that is no tool to the user: ADK's transfer is a handoff); returns it."""
        fault_point("tool:after_effect")
        stored = jsonable(output)
        payload = {"args": self.args, "result": stored}
        if self.state is not None:
            payload["state"] = self.state.save()
        if events is None:
            events = [_tool_result(self.agent, self.tool_name, self.call_id, stored)]
        self.execution.record(
            self.key, kind="tool", name=self.tool_name, payload=payload, attempt=self.attempt,
            events=[*self.announcement(), *events],
        )
        fault_point("tool:after_commit")
        return output


class _Written:
    """Everything written to a fresh execution, kept as this process wrote it, so that its
    result needs no read. Incomplete once the event numbers show another writer's events."""

    def __init__(self, row: ExecutionRow) -> None:
        self.id = row.id
        self.columns = {name: getattr(row, name) for name in ExecutionRow.model_fields}
        self.last_seq = row.last_seq or 0
        self.events: list[dict[str, Any]] = []
        self.approvals: list[dict[str, Any]] = []
        self.steps: dict[str, dict[str, Any]] = {}
        self.complete = True

    def add(self, written: Written, events: Sequence[NewEvent],
            steps: Sequence[dict[str, Any]], approvals: Sequence[dict[str, Any]],
            columns: dict[str, Any]) -> None:
        self.complete &= written.last_seq - len(events) == self.last_seq
        self.last_seq = written.last_seq
        self.events += event_rows(self.id, written.last_seq, events, written.at)
        self.approvals += approvals
        for step in steps:
            self.steps[step["step_key"]] = {
                "started_at": written.at, **self.steps.get(step["step_key"], {}), **step}
        self.columns.update(columns, last_seq=written.last_seq)

    def rows(self) -> tuple[ExecutionRow, list[Event], list[ApprovalRow],
                            dict[str, StepRow]] | None:
        if not self.complete:
            return None
        approvals = sorted(self.approvals, key=lambda a: (a["requested_at"], a["call_id"]))
        return (ExecutionRow.model_construct(**self.columns),
                [event_of(dict(row)) for row in self.events],
                [ApprovalRow.model_construct(**a) for a in approvals],
                {key: StepRow.model_construct(execution_id=self.id, **step)
                 for key, step in self.steps.items()})


class _Step(NamedTuple):
    status: str
    attempt: int
    payload: str | None
    kind: str


def _stored_verdict(row: ApprovalRow) -> Verdict:
    action = {"approved": "approve", "rejected": "reject"}.get(row.status, "ask")
    return Verdict(action, rule=row.rule, reason=row.reason)  # type: ignore[arg-type]


def rejection_message(tool_name: str, reason: str | None) -> str:
    """What the model receives instead of the result of a rejected call."""
    because = f": {reason}" if reason else "."
    return f"The call to {tool_name} was rejected by the reviewer and did not run{because}"


def _tool_result(agent: str | None, tool_name: str, call_id: str, result: Any) -> NewEvent:
    return NewEvent(
        "tool_result",
        agent=agent,
        data={"tool_name": tool_name, "call_id": call_id, "result": result},
    )
