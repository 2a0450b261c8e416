"""AgentRuntime: admits executions, runs them through an adapter, and resumes them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from .._errors import (
    IdempotencyConflictError,
    KeelError,
    LeaseLostError,
    ReplayMismatchError,
    StoreUnavailableError,
    _Cancelled,
    _Stopped,
    _Suspended,
)
from ._approvals import ApprovalRules, Policy
from ._budget import Budget
from ._changes import CHANGES
from ._events import Status
from ._execution import Execution
from ._faults import fault_point
from ._json import dumps, input_json, jsonable, loads
from ._leases import claim, lease_owner
from ._loop import Tasks, run_on_keel_loop
from ._options import FrameworkOptions, RunOptions, redacted_options
from ._redact import RedactOption, redactor_of
from ._references import find_reference, load_agent, type_reference
from ._result import AgentResult, build_result
from ._schema import ExecutionRow
from ._store import NewEvent, Store, default_database_url

if TYPE_CHECKING:
    from ..adapters import Adapter, Outcome
    from ._handle import AgentHandle, EventStream

__all__ = ["AgentRuntime", "driving_runtime"]

TAKEN_OVER: Any = object()
"""What `drive()` returns when another process took the execution over."""

_driving: ContextVar[AgentRuntime | None] = ContextVar("keel_driving_runtime", default=None)


def driving_runtime() -> AgentRuntime:
    """The runtime driving the current execution (a pipeline drives its stages on it)."""
    runtime = _driving.get()
    if runtime is None:
        raise KeelError("No execution is being driven here; run pipelines with an "
                        "AgentRuntime (runtime.run(pipeline, input)).")
    return runtime


_STORED: Any = object()
"""Run on the input as stored (redacted, if the run redacts), not the caller's own."""


@dataclass(frozen=True)
class _Launch:
    """What this process knows about an execution it admitted: the live agent and options."""

    agent: Any
    options: RunOptions


class AgentRuntime:
    """Runs agents of any supported framework durably, on one store.

    Use it as a context manager (sync or async); on exit it waits for executions it started
    in the background to finish or pause, then closes the store.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        require_approval: Sequence[str] = (),
        approval_policy: Policy | None = None,
        auto_resume: bool = True,
        workers: bool = False,
        lease_seconds: float = 10.0,
        poll_interval: float = 0.1,
        budget: Budget | None = None,
        redact: RedactOption = None,
    ) -> None:
        """
        Args:
            database_url: SQLAlchemy URL of the store; default `$KEEL_DATABASE_URL`, else
                SQLite at `.keel/keel.db`.
            require_approval: tool (or `transfer_to_*` handoff) names or globs, or one of
                them, whose calls wait for a human, for agents you do not want to modify.
            approval_policy: `(tool_name, args, ctx) -> Allow() | Deny(reason) | Ask() | None`,
                or a list of `Rule(tool_glob, when=..., then=..., otherwise=...)`;
                consulted for every call first; None defers to the other rules.
            auto_resume: resume executions this runtime admitted as soon as their approvals
                are decided (by any process), in a background thread.
            workers: hand executions to `keel worker` processes instead of running them
                here: `run()`, `start()` and `stream()` queue them and follow them in the
                store (a web process, say, in front of a worker fleet).
            lease_seconds: how long another process waits before taking over an execution
                whose owner stopped heartbeating (a dead owner on this host is seen at once).
            poll_interval: how often streams and the background thread look at the store for
                changes made by other processes.
            budget: every run's default limits (`Budget(max_steps=..., max_seconds=...,
                max_tool_calls=..., max_tokens=...)`); a run's own `budget=` takes
                precedence field by field.
            redact: redact secrets and personal data before anything is stored: True (the
                built-in kinds), a `Redactor`, or a hook `(text) -> text` (with them).
        """
        # Checked first: a misconfigured runtime fails before it opens the store.
        self.rules = ApprovalRules(require_approval, approval_policy)
        self.budget = Budget().override(budget)
        for name, seconds in (("lease_seconds", lease_seconds), ("poll_interval", poll_interval)):
            if not isinstance(seconds, int | float) or seconds <= 0:
                raise ValueError(f"AgentRuntime({name}={seconds!r}): a time in seconds, more "
                                 "than 0.")
        redactor = redactor_of(redact)
        self.database_url = database_url or default_database_url()
        self.store = Store(self.database_url, redactor=redactor)
        self.auto_resume = auto_resume and not workers
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self._launches: dict[str, _Launch] = {}
        self._background = Tasks(self._statuses, self.resume_async, poll_interval)
        self._closed = False

    # -- context management ---------------------------------------------------------------

    def __enter__(self) -> AgentRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> AgentRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Wait for background executions to finish or pause, then release the store."""
        if self._closed:
            return
        self._closed = True
        self._background.close()
        self.store.close()

    # -- running --------------------------------------------------------------------------
    # `options` are the framework's own (`FrameworkOptions`): they pass through to it.

    def run(
        self, agent: Any, input: Any, *, idempotency_key: str | None = None,
        budget: Budget | None = None, **options: Unpack[FrameworkOptions],
    ) -> AgentResult:
        """Run `agent` on `input` to completion or to its first pause; returns the result.
        `budget`: this run's limits, over the runtime's default field by field."""
        return run_on_keel_loop("runtime.run", self.run_async(
            agent, input, idempotency_key=idempotency_key, budget=budget, **options))

    async def run_async(
        self, agent: Any, input: Any, *, idempotency_key: str | None = None,
        budget: Budget | None = None, **options: Unpack[FrameworkOptions],
    ) -> AgentResult:
        """`run()` for async code; the agent runs in the caller's event loop."""
        self._check_open()
        given = RunOptions.given("run", options)
        input = input_json(input)
        execution_id, row = self._admit(agent, input, given, idempotency_key,
                                        returns=self.workers, budget=budget)
        if self.workers:
            return await asyncio.to_thread(self._follow, execution_id)
        if row is None:  # an execution with this idempotency key exists: carry it on
            return await self._resume(execution_id, agent, given)
        return await self._execute(row, agent, given, fresh=True, input=input)

    def start(
        self, agent: Any, input: Any, *, idempotency_key: str | None = None,
        budget: Budget | None = None, **options: Unpack[FrameworkOptions],
    ) -> AgentHandle:
        """Admit the run and return its handle at once; it runs in a background thread (or
        in a worker, with `workers=True`)."""
        from ._handle import AgentHandle

        self._check_open()
        given = RunOptions.given("start", options)
        input = input_json(input)
        execution_id, row = self._admit(agent, input, given, idempotency_key, returns=True,
                                        budget=budget)
        if self.workers:
            pass  # a worker claims it
        elif row is not None:
            self._background.submit(self._execute(row, agent, given, fresh=True, input=input))
        else:  # an execution with this idempotency key exists: carry it on if it stopped
            self._background.submit(self._resume(execution_id, agent, given))
        return AgentHandle(execution_id, runtime=self)

    def stream(
        self, agent: Any, input: Any, *, idempotency_key: str | None = None,
        budget: Budget | None = None, **options: Unpack[FrameworkOptions],
    ) -> EventStream:
        """Start the run and yield its events live, until it finishes or waits."""
        return self.start(agent, input, idempotency_key=idempotency_key, budget=budget,
                          **options).stream()

    def resume(
        self, execution_id: str, agent: Any = None, *, budget: Budget | None = None,
        **options: Unpack[FrameworkOptions],
    ) -> AgentResult:
        """Continue a decided or crashed execution here; returns its result.

        Journaled model turns and tool calls are answered from the journal. If another live
        process owns the execution, this follows it to its next pause instead. The agent is
        found by the reference recorded at admission unless given; options given now take the
        place of the recorded ones, and a `budget`'s limits those the execution has (it keeps
        what it used so far).
        """
        return run_on_keel_loop("runtime.resume",
                                self.resume_async(execution_id, agent, budget=budget, **options))

    async def resume_async(
        self, execution_id: str, agent: Any = None, *, budget: Budget | None = None,
        **options: Unpack[FrameworkOptions],
    ) -> AgentResult:
        return await self._resume(execution_id, agent, RunOptions.given("resume", options),
                                  budget)

    async def _resume(self, execution_id: str, agent: Any, given: RunOptions,
                      budget: Budget | None = None) -> AgentResult:
        self._check_open()
        row = self.store.execution(execution_id)
        if Status(row.status).is_settled:
            return self.result(execution_id)
        from ..adapters import adapter_named

        adapter_named(row.framework)  # a missing extra is named before anything else
        launch = self._launches.get(execution_id)
        agent_given = agent is not None
        if agent is None:
            agent = launch.agent if launch else load_agent(_require_ref(row), recorded=True)
        options = RunOptions.for_resume(row.options, launch.options if launch else None, given)
        claimed = claim(self.store, execution_id, lease_seconds=self.lease_seconds)
        if claimed is None:
            return await asyncio.to_thread(self._follow, execution_id)
        if budget is not None:
            claimed = self._rebudget(claimed, budget)
        return await self._execute(claimed, agent, options, agent_given=agent_given)

    def _rebudget(self, row: ExecutionRow, budget: Budget) -> ExecutionRow:
        """Give a claimed execution `budget`'s limits in place of its own, for good."""
        limits = Budget.from_json(row.budget).override(budget).to_json()
        self.store.write(row.id, row.lease_epoch, budget=limits, durable=False)
        return ExecutionRow.model_construct(**{
            **{name: getattr(row, name) for name in ExecutionRow.model_fields},
            "budget": limits})

    # -- results and handles --------------------------------------------------------------

    def result(self, execution_id: str) -> AgentResult:
        """The current result of an execution, loaded from the store."""
        return build_result(*self.store.snapshot(execution_id))

    def delete(self, execution_id: str) -> None:
        """Remove a settled execution and everything recorded about it from the store (a
        pipeline's stages with it)."""
        row = self.store.execution(execution_id)
        if row.parent_id:
            raise KeelError(
                f"Execution {execution_id!r} is a stage of the pipeline {row.parent_id!r}, "
                "which needs it to resume: delete the pipeline, and its stages go with it."
            )
        status = Status(row.status)
        if not status.is_settled:
            raise KeelError(
                f"Execution {execution_id!r} is {status.value}; cancel it (or let it finish) "
                "before deleting it."
            )
        self.store.delete(execution_id)
        self._launches.pop(execution_id, None)

    def cancel_agent(self, agent_name: str, *, reason: str | None = None) -> dict[str, Status]:
        """The kill switch: cancel every unfinished execution of the agent `agent_name`,
        here and in every other process on this store (running ones stop at their next
        step). Returns each execution's status after the request."""
        from ._handle import cancel_agent

        return cancel_agent(self, agent_name, reason=reason)

    def handle(self, execution_id: str) -> AgentHandle:
        from ._handle import AgentHandle

        return AgentHandle(execution_id, runtime=self)

    def watch(self, execution_id: str) -> None:
        """Resume the execution here, in the background, once it is QUEUED (decided or
        resolved, in any process), as `auto_resume` does for the runs this runtime drove: a
        server calls it for the runs it decides, whoever started them. Watch a pipeline, not
        its stage (the pipeline runs its stages). The agent is loaded by its recorded
        reference now, so AgentNotFoundError (or MissingExtraError) says at once that this
        process cannot resume it. Nothing happens once it finished, or without auto_resume
        (with workers=True, a worker resumes it)."""
        row = self.store.execution(execution_id)
        if not self.auto_resume or self._closed or Status(row.status).is_terminal:
            return
        from ..adapters import adapter_named

        adapter_named(row.framework)
        if execution_id not in self._launches:
            load_agent(_require_ref(row), recorded=True)
        self._background.watch(execution_id)

    # -- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        """Refuse a run on a closed runtime before anything is stored (its store is gone)."""
        if self._closed:
            raise KeelError("This AgentRuntime is closed; create a new one.")

    def _admit(
        self, agent: Any, input: Any, options: RunOptions, idempotency_key: str | None, *,
        returns: bool, budget: Budget | None = None,
    ) -> tuple[str, Any]:
        """Insert the execution, with its budget and redaction and as redaction leaves its
        input (JSON data already: `input_json`) and options; durable when its id `returns` to
        the caller (or another process) before this call runs it, else its run's first durable
        write flushes it."""
        from ..adapters import adapter_for

        adapter = adapter_for(agent)
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or
                                            not idempotency_key):
            raise ValueError(f"An idempotency key is a non-empty string, not "
                             f"{idempotency_key!r}.")
        agent_name = adapter.agent_name(agent)
        if idempotency_key is not None:
            existing = self.store.find_by_idempotency_key(idempotency_key)
            if existing is not None:
                _check_same_agent(self.store.execution(existing), idempotency_key,
                                  adapter.framework, agent_name)
                return existing, None
        now = time.time()
        execution_id = uuid.uuid4().hex
        output_type = adapter.output_type(agent)
        stored_options = options.to_json()
        agent_ref = find_reference(agent)
        if self.workers:
            _check_travels(agent, agent_ref, options, stored_options)
        redactor = self.store.redactor
        if redactor is not None:
            input, stored_options = redactor.redact_value(input), \
                redacted_options(stored_options, redactor)
        values: dict[str, Any] = {
            "id": execution_id,
            "framework": adapter.framework,
            "agent_name": agent_name,
            "agent_ref": agent_ref,
            "input": dumps(input),
            "options": dumps(stored_options),
            "status": Status.RUNNING.value,
            "output_type": _type_reference(output_type),
            "idempotency_key": idempotency_key,
            "conversation": options.conversation,
            "budget": self.budget.override(budget).to_json(),
            "redaction": redactor.spec() if redactor is not None else None,
            "lease_owner": lease_owner(),
            "lease_epoch": 1,
            "lease_expires_at": now + self.lease_seconds,
            "created_at": now,
            "updated_at": now,
        }
        if self.workers:  # nobody owns it until a worker claims it
            values.update(status=Status.QUEUED.value, lease_owner=None, lease_epoch=0,
                          lease_expires_at=None)
        if not self.store.insert_execution(values, durable=returns):  # the key was just taken
            return self._admit(agent, input, options, idempotency_key, returns=returns,
                               budget=budget)
        if not self.workers:
            self._launches[execution_id] = _Launch(agent, options)
        return execution_id, ExecutionRow.model_construct(**values)  # as inserted: no read-back

    async def _execute(
        self, row: Any, agent: Any, options: RunOptions, *, fresh: bool = False,
        input: Any = _STORED, agent_given: bool = False,
    ) -> AgentResult:
        """Drive a claimed execution to its end or its next pause; returns its result. A
        fresh run starts on the caller's `input`, a resumed one on the stored input. An
        `agent_given` by the caller that does not match the journal (ReplayMismatchError)
        leaves the execution as it was, for a resume with the agent it ran with."""
        launched = self._launches.get(row.id)
        self._launches[row.id] = _Launch(agent, options)
        ex = self._claimed(row, fresh)
        try:
            output = await self._drive(ex, agent, options, input, keep_on_mismatch=agent_given)
        except ReplayMismatchError:
            if launched is None:
                self._launches.pop(row.id, None)
            else:
                self._launches[row.id] = launched
            raise
        if output is TAKEN_OVER:
            self._launches.pop(row.id, None)
            return await asyncio.to_thread(self._follow, row.id)
        written = ex.written()  # a fresh run's rows, as this process wrote them
        result = build_result(*written) if written else self.result(row.id)
        if result.status is Status.COMPLETED:
            result.output = output  # the live object, not its JSON copy
        if result.status.is_terminal:
            self._launches.pop(row.id, None)
        elif self.auto_resume and not self._closed:
            self._background.watch(row.id)
        return result

    async def drive(
        self, row: Any, agent: Any, options: RunOptions, *, fresh: bool = False
    ) -> Any:
        """Run a claimed execution through its adapter and commit how it ended; returns the
        live output (None unless it completed), or `TAKEN_OVER` when another process owns
        it now. A lost store connection propagates (StoreUnavailableError): the execution
        stays RUNNING, and is carried on once its lease expires."""
        return await self._drive(self._claimed(row, fresh), agent, options)

    def _claimed(self, row: Any, fresh: bool) -> Execution:
        return Execution(self.store, row, epoch=row.lease_epoch, rules=self.rules,
                         lease_seconds=self.lease_seconds, fresh=fresh)

    async def _drive(self, ex: Execution, agent: Any, options: RunOptions,
                     input: Any = _STORED, *, keep_on_mismatch: bool = False) -> Any:
        from ..adapters import adapter_named

        row = ex.row
        adapter: Adapter = adapter_named(row.framework)
        heartbeat = asyncio.create_task(self._heartbeat(ex))
        # The caller's input, already JSON data (`input_json`), as the stored one would be
        # were it not redacted.
        input = loads(row.input) if input is _STORED else input
        driving = _driving.set(self)
        try:
            outcome = await _ungrouped(adapter.execute(ex, agent, input, options))
            if outcome.status == "completed":
                ex.finish(Status.COMPLETED, events=[
                    *outcome.events, NewEvent("done", outcome.agent, {"output": jsonable(
                        outcome.output)})
                ], output=dumps(outcome.output), output_type=_type_reference(
                    outcome.output_type))
                return outcome.output
        except _Suspended:
            pass  # the adapter committed the WAITING (or IN_DOUBT) state
        except _Cancelled:
            ex.finish(Status.CANCELLED, events=[NewEvent("cancelled", data={
                "reason": ex.cancel_reason()})])
        except _Stopped as stopped:
            reason = stopped.status_reason
            ex.finish(Status.FAILED, events=[NewEvent("error", data={
                "content": str(stopped), **(reason or {})})], error=str(stopped),
                status_reason=dumps(reason) if reason else None)
        except LeaseLostError:
            return TAKEN_OVER
        except StoreUnavailableError:
            raise
        except Exception as exc:
            lost = _behind(exc.__cause__, (LeaseLostError, StoreUnavailableError))
            if isinstance(lost, LeaseLostError):
                return TAKEN_OVER
            if lost is not None:
                raise lost from exc
            mismatch = _behind(exc, (ReplayMismatchError,))
            if mismatch is not None and keep_on_mismatch:  # the caller's mistake: not the run's
                ex.release()
                raise mismatch from None
            message = f"{type(exc).__name__}: {exc}"
            ex.finish(Status.FAILED, events=[NewEvent("error", data={"content": message})],
                      error=message)
        finally:
            heartbeat.cancel()
            _driving.reset(driving)
        return None

    async def _heartbeat(self, ex: Execution) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            fault_point("lease:renew")
            try:
                ex.renew_lease()
            except LeaseLostError:
                return
            except StoreUnavailableError:
                continue  # the next beat tries again; the lease may lapse meanwhile

    def _statuses(self, execution_ids: list[str]) -> dict[str, Status]:
        """Background hook: how the watched executions stand."""
        return {i: Status(status) for i, status in self.store.statuses(execution_ids).items()}

    def _follow(self, execution_id: str, timeout: float | None = None) -> AgentResult:
        """Wait (in this thread) until the execution settles; returns its result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = CHANGES.version(execution_id)
            row = self.store.execution(execution_id)
            if Status(row.status).is_settled:
                return self.result(execution_id)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Execution {execution_id!r} is still {row.status} after {timeout} s."
                )
            CHANGES.wait(execution_id, seen, self.poll_interval)


_UNWINDING = (LeaseLostError, StoreUnavailableError, _Stopped, _Cancelled, _Suspended)
"""What stops a run without being its error, most telling first."""


async def _ungrouped(outcome: Awaitable[Outcome]) -> Outcome:
    """`outcome`, with keel's own unwinding taken out of the exception group a framework that
    runs branches in a TaskGroup (ADK's ParallelAgent) raises: when one branch waits for a
    decision, the branches beside it stop too, and the run waits, rather than failing."""
    try:
        return await outcome
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        for kind in _UNWINDING:
            for leaf in leaves:
                if isinstance(leaf, kind):
                    raise leaf from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _behind(exc: BaseException | None,
            kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """`exc`, or the error behind it (`__cause__`), that is one of `kinds`: frameworks wrap
    what keel raises in their hooks in errors of their own (the OpenAI Agents SDK's "Error
    running tool", ADK's "Error in plugin"). A lost lease or store so wrapped: the run did
    not fail, this process lost it."""
    while exc is not None:
        if isinstance(exc, kinds):
            return exc
        exc = exc.__cause__
    return None


def _type_reference(cls: type | None) -> str | None:
    return type_reference(cls) if cls is not None else None


def _check_same_agent(row: ExecutionRow, key: str, framework: str, agent_name: str) -> None:
    """A key given again asks for its run again (a retried webhook gets the run it started);
    given for another agent, it must not carry that run on with the wrong agent."""
    if (row.framework, row.agent_name) != (framework, agent_name):
        raise IdempotencyConflictError(
            f"The idempotency key {key!r} belongs to execution {row.id!r} of agent "
            f"{row.agent_name!r}, and was given again for agent {agent_name!r}. Give each "
            "run its own key.")


def _check_travels(agent: Any, agent_ref: str | None, options: RunOptions,
                   stored: dict[str, Any]) -> None:
    """A run handed to workers carries only its agent's reference and JSON options."""
    if agent_ref is None:
        raise KeelError(
            f"Workers find an agent by its module-level name, and {agent!r} has none: define "
            "it at the top level of an importable module (the workers import it too).")
    if options.run_config is not None or "context_not_kept" in stored:
        what = "a run_config" if options.run_config is not None else \
            f"a context of type {stored.get('context_not_kept')}"
        raise KeelError(
            f"This run has {what}, which cannot travel to a worker (only JSON data and "
            "pydantic models are stored). Configure it in the agent's module, or run it in "
            "this process with AgentRuntime(workers=False).")


def _require_ref(row: Any) -> str:
    if not row.agent_ref:
        from .._errors import AgentNotFoundError

        if row.parent_id:
            raise AgentNotFoundError(
                f"Execution {row.id!r} is a stage of the pipeline execution "
                f"{row.parent_id!r}, which runs it: resume that one, "
                f"runtime.resume({row.parent_id!r}).")
        raise AgentNotFoundError(
            f"Execution {row.id!r} recorded no reference to its agent {row.agent_name!r} (it "
            "was not a module-level name when the run started). Pass it: "
            "runtime.resume(execution_id, agent=...)."
        )
    return str(row.agent_ref)
