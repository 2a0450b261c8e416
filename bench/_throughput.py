"""One-step runs per second: one process on SQLite, and `keel worker` processes on PostgreSQL.

A one-step run is `bench._agents.one_step_agent` on its input: one model turn that answers
with text at once (no tool), so keel admits the run, journals one model step and completes it.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import agents

import keel

from ._agents import ANSWER, one_step_agent
from ._fleet import Fleet, wait_until
from ._postgres import BenchDatabase, empty_keel_tables
from ._report import Check, Row, Timing

__all__ = ["Drain", "measure_sqlite", "measure_workers", "sqlite_row", "worker_rows"]

SQLITE_GOAL = 500.0  # runs/s, research/durability.md section 9, G4
WORKERS_GOAL = 250.0  # runs/s on the 2-vCPU box, G4
NO_DROP = 0.9  # "no drop as workers are added": at least 90% of 1 worker's rate (noise)
WORKER_COUNTS = (1, 2, 4)
SETTLE = 0.5  # s for resumed workers to read the enqueue's notifications and go idle
TERMINAL = "('COMPLETED', 'FAILED', 'CANCELLED')"


# -- SQLite, one process --------------------------------------------------------------------


def measure_sqlite(directory: Path, *, runs: int, warmup: int) -> tuple[Timing, Timing]:
    """(keel, bare) per-run timings: `runtime.run_async` and `Runner.run` in turn, one loop."""

    async def alternate(runtime: keel.AgentRuntime) -> tuple[Timing, Timing]:
        timed: tuple[list[float], list[float]] = ([], [])
        for i in range(warmup + runs):
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                if which == 0:
                    result = await runtime.run_async(one_step_agent, f"s{i}")
                    output = result.output
                else:
                    output = (await agents.Runner.run(one_step_agent, f"s{i}")).final_output
                elapsed = time.perf_counter() - start
                if output != ANSWER:
                    raise RuntimeError(f"a one-step run answered {output!r}")
                if i >= warmup:
                    timed[which].append(elapsed)
        return Timing(timed[0]), Timing(timed[1])

    with keel.AgentRuntime(f"sqlite:///{directory / 'one-step.db'}") as runtime:
        gc.collect()
        return asyncio.run(alternate(runtime))


def _per_second(timing: Timing) -> float:
    return len(timing.samples) / sum(timing.samples)


def sqlite_row(timings: tuple[Timing, Timing]) -> Row:
    wrapped, bare = timings
    rate = _per_second(wrapped)
    return Row(
        name=f"one-step runs, 1 process, SQLite: {rate:.0f} runs/s", n=wrapped.n,
        p50=wrapped.p50, p99=wrapped.p99, baseline="bare Runner.run", base_p50=bare.p50,
        base_p99=bare.p99, ratio=wrapped.p50 / bare.p50,
        checks=[Check(f">= {SQLITE_GOAL:g} runs/s", rate, SQLITE_GOAL, at_least=True)],
        note=f"Sequential `await runtime.run_async(one_step_agent, ...)` on a SQLite file "
        f"(WAL, synchronous=FULL), alternating with bare `Runner.run`; runs/s = runs / their "
        f"summed wall time (the bare arm: {_per_second(bare):.0f} runs/s). A one-step run is "
        "one model turn answering text at once: admission, one model step and the "
        "completion, in 2 commits.",
    )


# -- PostgreSQL, worker processes -----------------------------------------------------------


@dataclass(frozen=True)
class Drain:
    """One drain of a queue of `runs` one-step runs by `workers` worker processes."""

    workers: int
    runs: int
    seconds: float
    split: tuple[int, ...]

    @property
    def per_second(self) -> float:
        return self.runs / self.seconds


def _drain(workers: Fleet, active: int, database: BenchDatabase,
           runtime: keel.AgentRuntime, runs: int) -> Drain:
    """Enqueue with every worker paused, hold the rows (FOR UPDATE), let `active` workers go
    idle, then release the rows and NOTIFY in one commit; drained when the last run is
    COMPLETED (its finished_at)."""
    import psycopg

    workers.pause()
    for i in range(runs):
        runtime.start(one_step_agent, f"q{i}")
    with psycopg.connect(database.conninfo) as gate, \
            psycopg.connect(database.conninfo, autocommit=True) as poll:
        held = gate.execute("SELECT id FROM keel_executions WHERE status = 'QUEUED' "
                            "FOR UPDATE").fetchall()
        if len(held) != runs:
            raise RuntimeError(f"bench: {len(held)} queued runs, expected {runs}")
        procs = workers.use(active)
        before = [workers.runs(p) for p in procs]
        time.sleep(SETTLE)
        released = time.time()
        gate.execute("SELECT pg_notify('keel_work', 'bench')")
        gate.commit()

        def settled() -> bool:
            row = poll.execute(f"SELECT count(*) FROM keel_executions WHERE status IN "
                               f"{TERMINAL}").fetchone()
            return row is not None and row[0] == runs

        wait_until(settled, f"{active} workers drain {runs} runs", timeout=600.0,
                   interval=0.02)
        done, last = poll.execute("SELECT count(*) FILTER (WHERE status = 'COMPLETED'), "
                                  "max(finished_at) FROM keel_executions").fetchone() or (0, 0)
    if done != runs:
        raise RuntimeError(f"bench: only {done} of {runs} one-step runs COMPLETED")
    workers.use(len(workers.live))  # a worker paused mid-transaction would block TRUNCATE
    empty_keel_tables(database.conninfo)
    split = tuple(workers.runs(p) - b for p, b in zip(procs, before, strict=True))
    return Drain(active, runs, float(last) - released, split)


def measure_workers(workers: Fleet, database: BenchDatabase, *, runs: int, trials: int,
                    warmup: int) -> dict[int, list[Drain]]:
    """Drains by 1, 2 and 4 of the fleet's workers (the others paused), interleaved: trial t
    runs the counts in rotated order. A warm-up drain by all 4 comes first."""
    drains: dict[int, list[Drain]] = {count: [] for count in WORKER_COUNTS}
    with keel.AgentRuntime(database.url, workers=True) as runtime:
        _drain(workers, max(WORKER_COUNTS), database, runtime, warmup)
        for trial in range(trials):
            shift = trial % len(WORKER_COUNTS)
            for count in WORKER_COUNTS[shift:] + WORKER_COUNTS[:shift]:
                drains[count].append(_drain(workers, count, database, runtime, runs))
    return drains


def worker_rows(drains: dict[int, list[Drain]], bare: Timing, concurrency: int) -> list[Row]:
    """One row per worker count: ms per run (drain time / runs), median and worst trial."""
    one = statistics.median(d.per_second for d in drains[1])
    rows = []
    for count, measured in drains.items():
        per_run = Timing([d.seconds / d.runs for d in measured])
        rate = statistics.median(d.per_second for d in measured)
        checks = [Check(f">= {WORKERS_GOAL:g} runs/s", rate, WORKERS_GOAL, at_least=True)]
        if count > 1:
            checks.append(Check(f">= {NO_DROP:g}x 1 worker's {one:.0f} runs/s", rate,
                                NO_DROP * one, at_least=True))
        splits = [sum(column) for column in zip(*(d.split for d in measured), strict=True)]
        rows.append(Row(
            name=f"one-step runs, {count} keel worker{'s' if count > 1 else ''}, PostgreSQL: "
            f"{rate:.0f} runs/s", n=sum(d.runs for d in measured), p50=per_run.p50,
            p99=per_run.p99, baseline="bare Runner.run, 1 process", base_p50=bare.p50,
            base_p99=bare.p99, ratio=per_run.p50 / bare.p50, checks=checks,
            note=f"{len(measured)} drains of {measured[0].runs} queued one-step runs by "
            f"{count} worker processes (--concurrency {concurrency}); p50/p99 columns: "
            "drain time / runs, median and slowest drain; runs/s from the median drain "
            f"({', '.join(f'{d.per_second:.0f}' for d in measured)}/s). Runs each worker "
            f"drove: {', '.join(map(str, splits))}. Baseline: the SQLite row's bare runs.",
        ))
    return rows
