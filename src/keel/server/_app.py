"""The REST API over one runtime's store, an SSE stream per execution, and the dashboard.

Every request that changes something needs `Authorization: Bearer <token>`, and records who
decided. Reads need it too when `guard_reads` is set, as `keel serve` sets it when it binds
beyond loopback; on loopback they are open to this machine's users, who can read the store
anyway. The dashboard's page and assets are always open: it asks for the token when a read
answers 401. Errors are JSON `{"error": message}` with the status code of what went wrong.

A decision, resolution or cancel made here lets this server's runtime carry the execution on
(`AgentRuntime.watch`), whichever process started it: the runtime that did may be gone. So
does one made elsewhere (`keel approve`, a script's `AgentHandle`), which the server sees in
the store: it carries on every run it finds QUEUED again after a decision.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._errors import (
    AlreadyDecidedError,
    ApprovalNotFoundError,
    ExecutionNotFoundError,
    IdempotencyConflictError,
    KeelError,
    NotInDoubtError,
    NotWaitingError,
)
from ..runtime._audit import decisions, export_records
from ..runtime._budget import Budget
from ..runtime._changes import CHANGES
from ..runtime._events import Status
from ..runtime._family import ancestors
from ..runtime._handle import AgentHandle
from ..runtime._json import jsonable, loads
from ..runtime._references import load_agent
from ..runtime._runtime import AgentRuntime
from ..runtime._schema import ExecutionRow

__all__ = ["create_app"]

log = logging.getLogger("keel.server")

_STATIC = Path(__file__).parent / "static"  # the dashboard ships inside the package
_STATUS_OF = {ExecutionNotFoundError: 404, ApprovalNotFoundError: 404, NotWaitingError: 409,
              AlreadyDecidedError: 409, NotInDoubtError: 409, IdempotencyConflictError: 409}

# The runtime's hints name Python calls; an HTTP client (the dashboard's user) reads the
# execution instead.
_HINTS = {"check AgentHandle.status() before deciding.":
          "reload the execution to see where it is now.",
          "Check AgentHandle.status() first.": "Reload the execution to see where it is now."}

_Limit = Annotated[int, Query(ge=1, le=10_000, description="at most this many, newest first")]
_Since = Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="seconds ago")]


class Decision(BaseModel):
    """A reviewer's decision; `reviewer` is recorded with it."""

    reviewer: str
    call_id: str | None = None
    reason: str | None = None


class Rejection(Decision):
    reason: str

    @field_validator("reason", mode="before")
    @classmethod
    def _given(cls, reason: Any) -> Any:
        if isinstance(reason, str):
            reason = reason.strip()  # blanks say nothing to the model either
        if not reason:  # the dashboard sends null for an empty box
            raise ValueError("a rejection needs a reason: the model hears it instead of the "
                             "tool's result")
        return reason


class Response(BaseModel):
    """A reviewer's answer to a framework's own pause (a LangGraph interrupt(), an ADK
    RequestInput): the paused code receives `value` as it is."""

    reviewer: str
    call_id: str | None = None
    value: Any

    @field_validator("value")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("an answer is a value, not null (approve to answer with none)")
        return value


class Resolution(BaseModel):
    """What became of an IN_DOUBT execution's cut-off call (see AgentHandle.resolve)."""

    reviewer: str
    action: Literal["record", "retry", "fail"]
    result: Any = None
    reason: str | None = None


class Start(BaseModel):
    """Start the agent at `agent` (`module:attribute`, importable by the server) on `input`,
    within `budget` (its limits take the place of the runtime's)."""

    # A misspelt limit is an error, not no limit; 1e400 is no limit either (it reads as inf).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    agent: str
    input: Any
    idempotency_key: str | None = None
    budget: Budget | None = None

    @field_validator("input")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("text, messages or a graph's state, not null")
        return value

    @field_validator("budget", mode="before")
    @classmethod
    def _no_booleans(cls, budget: Any) -> Any:
        # pydantic would read true as 1 before Budget, which refuses booleans, sees it.
        for name, value in budget.items() if isinstance(budget, dict) else ():
            if isinstance(value, bool):
                raise ValueError(f"{name} is a positive number or null, not {json.dumps(value)}")
        return budget


class Cancellation(BaseModel):
    reason: str | None = None


def create_app(runtime: AgentRuntime, *, token: str, guard_reads: bool = False) -> FastAPI:
    """The API over `runtime`'s store; `token` guards every request that changes something,
    and with `guard_reads` every read too (a server reachable beyond this machine). It carries
    on the runs decided anywhere, unless the runtime leaves them to workers (`workers=True`),
    as it does the runs started here."""
    stalled: dict[str, str] = {}  # pipeline or run -> why this server cannot resume it

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.workers:  # they claim every queued run, decided ones too
            yield
            return
        pickup = asyncio.create_task(_carry_on_decided(runtime, carry_on))
        yield
        pickup.cancel()
        with suppress(asyncio.CancelledError):
            await pickup

    app = FastAPI(title="keel", summary="Executions, events and approvals of keel runs.",
                  lifespan=lifespan)

    def authorized(authorization: str | None = Header(default=None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        # As bytes: compare_digest refuses str that is not ASCII, and a header is the bytes
        # sent read as Latin-1.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode("latin-1"),
                                                                  token.encode()):
            raise HTTPException(401, "Send Authorization: Bearer <token> (printed by keel serve).")

    def readable(authorization: str | None = Header(default=None)) -> None:
        if guard_reads:
            authorized(authorization)

    reads = APIRouter(dependencies=[Depends(readable)])

    def carry_on(*execution_ids: str) -> None:
        """After a decision, resolution or cancel: resume each one's family here once it is
        QUEUED (the pipeline at its top runs its stages), or say on its page why not."""
        for top in {_top(runtime, i) for i in execution_ids}:
            try:
                runtime.watch(top)
                stalled.pop(top, None)
            except KeelError as exc:
                stalled[top] = (f"This server cannot resume it: {exc} It stays QUEUED until "
                                f"a process that can load its agent resumes it (keel resume "
                                f"{top} there, or a keel worker serving the agent).")

    @app.exception_handler(KeelError)
    async def keel_error(request: Request, exc: KeelError) -> JSONResponse:
        message = str(exc)
        for python, http in _HINTS.items():
            message = message.replace(python, http)
        return JSONResponse({"error": message}, status_code=_STATUS_OF.get(type(exc), 400))

    # Starlette's, so that unknown paths (404) and methods (405) answer as keel's own do.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _described(exc.errors())}, status_code=422)

    @reads.get("/api/executions")
    def executions(status: str | None = None, agent: str | None = None,
                   since: _Since = None, stages: bool = True,
                   limit: _Limit = 50) -> list[dict[str, Any]]:
        """Executions, newest first; `since` is seconds ago; `stages=false` leaves out
        pipelines' stages (each pipeline lists its own)."""
        if status is not None and status.upper() not in Status.__members__:
            raise HTTPException(422, f"status is one of {', '.join(Status)}, not {status!r}.")
        rows = runtime.store.executions(
            status=status.upper() if status else None, agent=agent,
            since=time.time() - since if since else None, top_level=not stages, limit=limit)
        return [_summary(r) for r in rows]

    @reads.get("/api/executions/{execution_id}")
    def execution(execution_id: str) -> dict[str, Any]:
        """The execution's result, with the input it started from, its budget, its running
        time, the pipeline it is a stage of (`parent_id`), its own stages, and, while it is
        QUEUED, why this server cannot resume it (`stalled`), if it tried."""
        row = runtime.store.execution(execution_id)
        stages = runtime.store.executions(parent=execution_id, limit=10_000)
        queued = row.status == Status.QUEUED.value
        return {**runtime.result(execution_id).to_json(), "input": loads(row.input),
                "created_at": row.created_at, "finished_at": row.finished_at,
                "budget": loads(row.budget), "run_seconds": row.run_seconds,
                "parent_id": row.parent_id, "stages": [_summary(s) for s in reversed(stages)],
                "stalled": stalled.get(_top(runtime, execution_id)) if queued else None}

    @reads.get("/api/executions/{execution_id}/export")
    def export(execution_id: str) -> PlainTextResponse:
        """The audit record as JSON lines: the execution, its events, approvals and journal."""
        lines = (json.dumps(jsonable(r)) for r in export_records(runtime.store, execution_id))
        return PlainTextResponse("\n".join(lines) + "\n", media_type="application/x-ndjson")

    @reads.get("/api/decisions")
    def decided(since: _Since = None, reviewer: str | None = None,
                agent: str | None = None, limit: _Limit = 200) -> list[dict[str, Any]]:
        """Who approved or rejected what, and when, newest first; `since` is seconds ago."""
        return decisions(runtime.store, since=time.time() - since if since else None,
                         reviewer=reviewer, agent=agent, limit=limit)

    @reads.get("/api/executions/{execution_id}/events")
    def events(execution_id: str, after: int = 0) -> list[dict[str, Any]]:
        runtime.store.execution(execution_id)
        return [e.model_dump(mode="json") for e in runtime.store.events(execution_id, after)]

    @reads.get("/api/executions/{execution_id}/stream")
    def stream(execution_id: str, request: Request, after: int = 0) -> StreamingResponse:
        """Server-sent events: the execution's events after `Last-Event-ID` (or `after`), then
        new ones as they come, until it settles."""
        runtime.store.execution(execution_id)
        last = request.headers.get("last-event-id")
        start = int(last) if last and last.isdigit() else after
        return StreamingResponse(_sse(runtime, execution_id, start),
                                 media_type="text/event-stream")

    @reads.get("/api/approvals")
    def approvals() -> list[dict[str, Any]]:
        """The inbox: every call waiting for a decision, oldest first."""
        return [{"approval_id": a.id, "execution_id": a.execution_id, "call_id": a.call_id,
                 "tool_name": a.tool_name, "kind": a.kind, "agent": a.agent,
                 "args": loads(a.args), "rule": a.rule, "requested_at": a.requested_at}
                for a in runtime.store.pending_approvals()]

    # Routed before the changes: the first route of a path answers a method it does not take
    # (405), and GET is the method to name.
    app.include_router(reads)

    @app.post("/api/executions/{execution_id}/approve", dependencies=[Depends(authorized)])
    def approve(execution_id: str, decision: Decision) -> dict[str, Any]:
        decided = AgentHandle(execution_id, runtime=runtime).approve(
            decision.call_id, reviewer=decision.reviewer, reason=decision.reason)
        carry_on(execution_id)
        return {"approved": decided}

    @app.post("/api/executions/{execution_id}/reject", dependencies=[Depends(authorized)])
    def reject(execution_id: str, decision: Rejection) -> dict[str, Any]:
        decided = AgentHandle(execution_id, runtime=runtime).reject(
            decision.reason, call_id=decision.call_id, reviewer=decision.reviewer)
        carry_on(execution_id)
        return {"rejected": decided}

    @app.post("/api/executions/{execution_id}/respond", dependencies=[Depends(authorized)])
    def respond(execution_id: str, body: Response) -> dict[str, Any]:
        """Answer a pause that asks for a value; it counts as an approval."""
        decided = AgentHandle(execution_id, runtime=runtime).respond(
            body.value, call_id=body.call_id, reviewer=body.reviewer)
        carry_on(execution_id)
        return {"responded": decided}

    @app.post("/api/executions/{execution_id}/resolve", dependencies=[Depends(authorized)])
    def resolve(execution_id: str, body: Resolution) -> dict[str, Any]:
        resolved = AgentHandle(execution_id, runtime=runtime).resolve(
            body.action, result=body.result, reason=body.reason, reviewer=body.reviewer)
        carry_on(execution_id)
        return {"resolved": resolved, "action": body.action}

    @app.post("/api/executions/{execution_id}/cancel", dependencies=[Depends(authorized)])
    def cancel(execution_id: str, body: Cancellation | None = None) -> dict[str, Any]:
        """Cancel: at once if it is not running, at its next step if it is."""
        status = AgentHandle(execution_id, runtime=runtime).cancel(body.reason if body else None)
        carry_on(execution_id)  # a stage cancelled alone lets its pipeline go on
        return {"status": status.value}

    @app.post("/api/agents/{agent}/cancel", dependencies=[Depends(authorized)])
    def cancel_agent(agent: str, body: Cancellation | None = None) -> dict[str, Any]:
        """The kill switch: cancel every unfinished execution of the agent."""
        statuses = runtime.cancel_agent(agent, reason=body.reason if body else None)
        carry_on(*statuses)
        return {"cancelled": {i: s.value for i, s in statuses.items()}}

    @app.post("/api/executions", status_code=202, dependencies=[Depends(authorized)])
    def start(body: Start) -> dict[str, Any]:
        handle = runtime.start(load_agent(body.agent), body.input,
                               idempotency_key=body.idempotency_key, budget=body.budget)
        return {"execution_id": handle.execution_id}

    app.mount("/static", StaticFiles(directory=_STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(_STATIC / "index.html")

    return app


async def _carry_on_decided(runtime: AgentRuntime, carry_on: Callable[..., None]) -> None:
    """Carry on the runs decided, resolved or cancelled in other processes, as the server's
    own decisions are: each run found QUEUED that ran before (a fresh one, lease epoch 0, is a
    worker's to claim), once each time it is found so. Looking for QUEUED runs rather than
    watching WAITING ones also finds those decided a moment after they paused, or before the
    server started."""
    carried: set[str] = set()
    while True:
        try:
            decided = await asyncio.to_thread(_decided_runs, runtime)
            if decided - carried:
                await asyncio.to_thread(carry_on, *(decided - carried))
            carried = decided
        except KeelError as exc:  # the store is away for a while: look again later
            log.warning("keel serve could not look for decided runs: %s", exc)
        await asyncio.sleep(runtime.poll_interval)


def _decided_runs(runtime: AgentRuntime) -> set[str]:
    """The ids of the QUEUED runs that ran before: only those, since a fleet's queue of fresh
    runs may be long and this is asked every poll interval."""
    with runtime.store.reads() as read:
        return {row["id"] for row in read(_DECIDED, queued=Status.QUEUED.value)}


_DECIDED = "SELECT id FROM keel_executions WHERE status = :queued AND lease_epoch > 0"


def _described(errors: Any) -> str:
    """pydantic's errors as one line: each one's field (`budget.max_steps`, or where it was
    missing: `body`), and what is wrong with it. Positions in JSON text are left out."""
    return "; ".join(
        f"{'.'.join(p for p in e['loc'][1:] if isinstance(p, str)) or e['loc'][0]}: "
        f"{e['msg'].removeprefix('Value error, ')}" for e in errors)


def _summary(row: ExecutionRow) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "agent": row.agent_name,
            "framework": row.framework, "parent_id": row.parent_id,
            "created_at": row.created_at, "updated_at": row.updated_at,
            "finished_at": row.finished_at, "status_reason": loads(row.status_reason)}


def _top(runtime: AgentRuntime, execution_id: str) -> str:
    """The outermost pipeline the execution is a stage of, or the execution itself."""
    with runtime.store.reading() as conn:
        chain = ancestors(conn, execution_id)
    return chain[-1][0] if chain else execution_id


async def _sse(runtime: AgentRuntime, execution_id: str, after: int) -> AsyncIterator[str]:
    store = runtime.store
    while True:
        seen = CHANGES.version(execution_id)
        settled = Status(store.execution(execution_id).status).is_settled
        for event in store.events(execution_id, after):
            after = event.seq
            data = json.dumps(jsonable(event.model_dump(mode="json")))
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"
        if settled:
            return
        # Wake at once for changes made in this process; poll for other processes'.
        await asyncio.to_thread(CHANGES.wait, execution_id, seen, runtime.poll_interval)
