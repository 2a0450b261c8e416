"""Named fault points, for the crash-injection suite (tests/chaos): `fault_point(name)` marks a
place in keel's write path where a process may be made to fail.

A process is told where with `$KEEL_FAULT_AT=name` (or `name#n` for the n-th time it passes
there) and how with `$KEEL_FAULT`:

    kill        SIGKILL itself (the default): a crash
    stop        SIGSTOP itself, for the test to SIGCONT later: a worker paused past its lease
    disconnect  the server drops its PostgreSQL connections ($KEEL_DATABASE_URL): a connection loss

Outside the suite the variables are unset and a fault point costs one comparison.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["POINTS", "fault_point"]

POINTS = (
    "tool:before_intent",      # a tool call was decided; its intent row is not written yet
    "tool:after_intent",       # the intent row committed; the tool has not started
    "tool:after_effect",       # the tool returned; its result is not committed
    "tool:after_commit",       # the result committed; the run has not gone on
    "model:after_response",    # the model answered; its turn is not journaled yet
    "approval:after_request",  # the pending approval and WAITING committed
    "approval:after_decision",  # a decision committed; the run has not resumed
    "claim:inside",            # inside a worker's claim transaction, before its commit
    "lease:renew",             # a heartbeat is about to renew a lease
)

_at, _, _nth = os.environ.get("KEEL_FAULT_AT", "").partition("#")
_remaining = int(_nth or 1)


def fault_point(name: str) -> None:
    """Fail here if this process was told to."""
    global _remaining
    if name != _at:
        return
    _remaining -= 1
    if _remaining:
        return
    fault = os.environ.get("KEEL_FAULT", "kill")
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
