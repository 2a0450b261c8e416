"""Approval to tool start: how soon an idle worker runs a call once it is approved.

Runs of `bench._agents.approval_agent` are queued; one worker drives each to WAITING (its
`stamp` tool is `@keel.tool(approval_required=True)`). Then, one run at a time, the benchmark
calls `AgentHandle(id, runtime=...).approve()` and notes `time.time()` as it returns; the
sample is the `time.time()` the tool body wrote as it started minus that. The benchmark waits
for the run to complete before the next approval, so the worker is idle each time.

PostgreSQL (the decision's commit NOTIFYs keel_work, and the worker's listener wakes it):
baseline, interleaved, is a raw NOTIFY's wake-up of another process (`python -m
bench._child listen CONNINFO`, psycopg LISTEN): from just before `SELECT pg_notify(...)` in
autocommit to the listener's `time.time()` on receiving it. SQLite (the worker polls every
`runtime.poll_interval`, 0.1 s): its baseline is the PostgreSQL row.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keel
from keel.runtime._events import Status

from ._agents import approval_agent, stamps
from ._child import ROOT, child_env
from ._fleet import wait_until
from ._report import Check, Row, Timing, timing_row

__all__ = ["PG_GOAL_MS", "SQLITE_GOAL_MS", "measure", "postgres_row", "raw_notify", "sqlite_row"]

PG_GOAL_MS = 200.0  # research/durability.md section 9, G3 (c)
SQLITE_GOAL_MS = 1000.0
SQLITE_NAME = "approve() -> tool start, SQLite worker"
Probe = Callable[[int], float]
"""Takes one baseline sample (its index) and returns it in seconds."""


def _approve(runtime: keel.AgentRuntime, directory: Path, execution_id: str,
             label: str) -> float:
    keel.AgentHandle(execution_id, runtime=runtime).approve()
    approved = time.time()
    wait_until(lambda: label in stamps(directory), f"{label}'s tool starts", interval=0.002)
    started = stamps(directory)[label]
    wait_until(lambda: runtime.store.execution(execution_id).status == Status.COMPLETED.value,
               f"{label} completes", interval=0.005)
    return started - approved


def measure(runtime: keel.AgentRuntime, directory: Path, *, samples: int, warmup: int,
            baseline: Probe | None = None, tag: str = "pg") -> tuple[Timing, Timing | None]:
    """Queue warmup + samples runs for the worker(s) serving approval_agent, wait until all
    wait for approval, then approve them one by one (alternating with `baseline` samples)."""
    labels = [f"{tag}{i}" for i in range(warmup + samples)]
    ids = [runtime.start(approval_agent, label).execution_id for label in labels]
    wait_until(lambda: all(runtime.store.execution(i).status == Status.WAITING.value
                           for i in ids), "every approval run waits", interval=0.05)
    measured: list[float] = []
    base: list[float] = []
    for i, (label, execution_id) in enumerate(zip(labels, ids, strict=True)):
        if i % 2 == 0:
            measured.append(_approve(runtime, directory, execution_id, label))
        if baseline is not None:
            base.append(baseline(i))
        if i % 2 == 1:
            measured.append(_approve(runtime, directory, execution_id, label))
        if i < warmup:
            measured.clear()
            base.clear()
    return Timing(measured), Timing(base) if baseline is not None else None


@contextmanager
def raw_notify(conninfo: str) -> Iterator[Probe]:
    """The baseline: a NOTIFY received by a raw psycopg LISTENer in another process."""
    import psycopg

    child = subprocess.Popen([sys.executable, "-m", "bench._child", "listen", conninfo], cwd=ROOT,
                             env=child_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        out = child.stdout
        if out.readline().strip() != "ready":
            raise RuntimeError("bench: the raw LISTEN process did not start")
        with psycopg.connect(conninfo, autocommit=True) as conn:

            def probe(i: int) -> float:
                sent = time.time()
                conn.execute("SELECT pg_notify('bench_wake', %s)", (str(i),))
                payload, received = out.readline().split()
                if payload != str(i):
                    raise RuntimeError(f"bench: the listener heard {payload}, not {i}")
                return float(received) - sent

            yield probe
    finally:
        child.terminate()
        child.wait()


def postgres_row(timings: tuple[Timing, Timing | None]) -> Row:
    measured, base = timings
    assert base is not None
    return timing_row(
        "approve() -> tool start, PostgreSQL worker", measured,
        "raw NOTIFY -> LISTEN wake-up", base,
        [Check(f"p50 <= {PG_GOAL_MS:g} ms", measured.p50, PG_GOAL_MS)],
        note="One idle `keel worker` (LISTEN keel_work); from approve() returning in the "
        "benchmark to the tool body's time.time() in the worker (the decision's commit "
        "NOTIFYs, the worker claims the run, replays its journaled model step and calls "
        "the tool). Baseline: a raw pg_notify() to a psycopg LISTENer in another process.",
    )


def sqlite_row(measured: Timing, postgres: Timing | None) -> Row:
    checks = [Check(f"p50 <= {SQLITE_GOAL_MS:g} ms", measured.p50, SQLITE_GOAL_MS)]
    note = ("One idle `keel worker --db sqlite:///...`, polling every 0.1 s (the runtime's "
            "poll_interval; no NOTIFY on SQLite); measured as the PostgreSQL row.")
    if postgres is None:
        return Row(name=SQLITE_NAME, n=measured.n, p50=measured.p50, p99=measured.p99,
                   baseline="-", base_p50=None, base_p99=None, ratio=None, checks=checks,
                   note=note + " No PostgreSQL row to compare with.")
    return timing_row(SQLITE_NAME, measured, "the PostgreSQL row's samples", postgres, checks,
                      note=note)
