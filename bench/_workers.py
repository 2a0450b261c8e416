"""The worker rows, in order: one-step runs per second (SQLite, one process; PostgreSQL, 1, 2
and 4 workers), claim throughput, takeover, approval to tool start (PostgreSQL, SQLite).

The PostgreSQL worker measurements share one database and one fleet of `keel worker` processes
(each serves one_step_agent, approval_agent and takeover_agent, --lease 1), started once; the
claim harness gets a database of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keel

from . import _approval, _claims, _takeover, _throughput
from ._fleet import fleet, listeners
from ._postgres import Unreachable, bench_database, empty_keel_tables
from ._report import Row, Timing

__all__ = ["WorkerPlan", "postgres_rows", "skipped", "sqlite_approval_row"]

CONCURRENCY = 4  # `keel worker`'s default --concurrency
AGENTS = ("one_step_agent", "approval_agent", "takeover_agent")


@dataclass(frozen=True)
class WorkerPlan:
    drain_runs: int
    drain_trials: int
    drain_warmup: int
    claim_rows: int
    claim_trials: int
    claim_warmup: int
    approvals: int
    approval_warmup: int
    takeovers: int


def postgres_rows(url: str, plan: WorkerPlan, directory: Path, bare: Timing,
                  progress: Callable[[str], None]) -> tuple[list[Row], Timing | None]:
    """The PostgreSQL rows, and the approval samples (the SQLite row's baseline)."""
    try:
        with bench_database(url) as database:
            keel.AgentRuntime(database.url).close()  # the schema, before the workers start
            with fleet(directory, database.url, AGENTS, concurrency=CONCURRENCY,
                       lease=_takeover.LEASE, listening=listeners(database.conninfo)
                       ) as workers, keel.AgentRuntime(database.url, workers=True) as runtime:
                progress(f"starting {max(_throughput.WORKER_COUNTS)} keel workers")
                workers.start(max(_throughput.WORKER_COUNTS))
                progress(f"{plan.drain_trials} drains of {plan.drain_runs} one-step runs by "
                         f"each of {_throughput.WORKER_COUNTS} workers")
                drains = _throughput.measure_workers(
                    workers, database, runs=plan.drain_runs, trials=plan.drain_trials,
                    warmup=plan.drain_warmup)
                progress(f"{plan.approvals} approvals to an idle PostgreSQL worker")
                workers.use(1)
                with _approval.raw_notify(database.conninfo) as probe:
                    approvals = _approval.measure(
                        runtime, directory, samples=plan.approvals,
                        warmup=plan.approval_warmup, baseline=probe)
                progress(f"{plan.takeovers} takeovers of a SIGKILLed worker's run")
                workers.use(len(workers.live))
                empty_keel_tables(database.conninfo)
                taken = _takeover.measure(workers, runtime, directory, samples=plan.takeovers)
        with bench_database(url) as database:
            progress(f"claim throughput, keel and raw, {_claims.PROCESS_COUNTS} processes")
            claims = _claims.measure(database, rows=plan.claim_rows, trials=plan.claim_trials,
                                     warmup=plan.claim_warmup)
    except Unreachable as exc:
        return [skipped("keel workers on PostgreSQL", f"PostgreSQL skipped: {exc}")], None
    return [
        *_throughput.worker_rows(drains, bare, CONCURRENCY),
        *_claims.rows(claims),
        _takeover.row(taken),
        _approval.postgres_row(approvals),
    ], approvals[0]


def skipped(name: str, reason: str) -> Row:
    return Row(name=name, n=None, p50=None, p99=None, baseline="-", base_p50=None,
               base_p99=None, ratio=None, skipped=reason)


def sqlite_approval_row(directory: Path, plan: WorkerPlan, postgres: Timing | None) -> Row:
    """One idle worker on a SQLite file, approvals as on PostgreSQL (no baseline probe)."""
    url = f"sqlite:///{directory / 'approvals.db'}"
    with keel.AgentRuntime(url, workers=True) as runtime, \
            fleet(directory, url, ["approval_agent"], concurrency=CONCURRENCY) as workers:
        workers.start(1)
        measured, _ = _approval.measure(runtime, directory, samples=plan.approvals,
                                        warmup=plan.approval_warmup, tag="sqlite")
    return _approval.sqlite_row(measured, postgres)
