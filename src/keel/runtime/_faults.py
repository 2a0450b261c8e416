"""Named fault points, for the crash-injection suite (tests/chaos): `fault_point(name)` marks a
place in keel's write path where a process may be made to fail.

A process is told where with `$KEEL_FAULT_AT=name` (or `name#n` for the n-th time it passes
there) and how with `$KEEL_FAULT`:

    kill        SIGKILL itself (the default): a crash
    stop        SIGSTOP itself, for the test to SIGCONT later: a worker paused past its lease
    disconnect  the server drops its PostgreSQL connections ($KEEL_DATABASE_URL): a connection loss

`$KEEL_FAULT_TRACE=FILE` joins the processes that share FILE (a trial's workers and approvers)
into one group: each appends every point it passes to FILE (`name pid time` lines), and `name#n`
counts the passes of the whole group, so that exactly one of them fails, at the n-th pass
overall, whichever process that is; it appends `! name pid time fault` first. With only the
trace set, a crash-free run records which points it passes and how often.

The variables are read when a process first passes a fault point (a forked child reads them
again), so outside the suite a fault point costs two attribute lookups.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

__all__ = ["POINTS", "application_name", "fault_point"]

POINTS = (
    "tool:before_intent",      # a tool call was decided; its intent row is not written yet
    "tool:after_intent",       # the intent row committed; the tool has not started
    "tool:after_effect",       # the tool returned; its result is not committed
    "tool:after_commit",       # the result committed; the run has not gone on
    "model:after_response",    # the model answered; its turn is not journaled yet
    "approval:after_request",  # the pending approval and WAITING committed
    "approval:after_decision",  # a decision committed; the run has not resumed
    "claim:taken",             # a claim committed (its lease is held); the run has not started
    "lease:renew",             # a heartbeat is about to renew a lease
)


@dataclass
class _Plan:
    at: str          # the point to fail at ("" for none)
    nth: int         # at its n-th pass
    fault: str
    trace: str       # the group's trace file ("" for none)
    remaining: int   # passes of `at` left before failing, without a trace
    idle: bool       # neither: every fault point returns at once


_plan: _Plan | None = None


def _read_plan() -> _Plan:
    global _plan
    at, _, nth = os.environ.get("KEEL_FAULT_AT", "").partition("#")
    count = int(nth or 1)
    trace = os.environ.get("KEEL_FAULT_TRACE", "")
    _plan = _Plan(at, count, os.environ.get("KEEL_FAULT", "kill"), trace, count,
                  idle=not at and not trace)
    return _plan


def _forget_plan() -> None:
    global _plan
    _plan = None


# A process forked from one that has passed a fault point reads its own environment.
os.register_at_fork(after_in_child=_forget_plan)


def fault_point(name: str) -> None:
    """Fail here if this process (or, with a trace, its group) was told to."""
    plan = _plan or _read_plan()
    if plan.idle:
        return
    if plan.trace:
        if not _traced_pass(plan, name):
            return
    elif name != plan.at:
        return
    else:
        plan.remaining -= 1
        if plan.remaining:
            return
    _fail(plan.fault, name)


def _traced_pass(plan: _Plan, name: str) -> bool:
    """Append this pass to the group's trace; True when it is the group's n-th pass at the
    fault's point. The file lock makes counting and appending one step for the group; it is
    released before the process fails (a stopped process must not hold it)."""
    with open(plan.trace, "a+") as trace:  # appends go to the end wherever it has read
        fcntl.flock(trace, fcntl.LOCK_EX)
        fire = False
        if name == plan.at:  # passes only add up, so only one pass is the n-th
            trace.seek(0)
            passes = sum(1 for line in trace if line.split(" ", 1)[0] == name)
            fire = passes + 1 == plan.nth
        now = time.time()
        if fire:
            trace.write(f"! {name} {os.getpid()} {now:.6f} {plan.fault}\n")
        trace.write(f"{name} {os.getpid()} {now:.6f}\n")
        trace.flush()
    return fire


def _fail(fault: str, name: str) -> None:
    print(f"keel fault: {fault} at {name}", file=sys.stderr, flush=True)
    if fault == "stop":  # sent to this thread, so that it stops here and not a bit later
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
    elif fault == "disconnect":
        _terminate_own_connections()
    else:
        os.kill(os.getpid(), signal.SIGKILL)


def _terminate_own_connections() -> None:
    """Have PostgreSQL drop every connection of this process (keel names them by pid)."""
    import psycopg

    url = os.environ["KEEL_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = %s", (application_name(),))


def application_name() -> str:
    """How keel names this process's PostgreSQL connections."""
    return f"keel:{os.getpid()}"
