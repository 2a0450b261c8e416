"""keel's benchmark: `python -m bench [--quick]` from the repository root (`make bench`).

Prints one Markdown table. Every row is measured next to a baseline taken in the same run,
interleaved with it (alternating order) after a warm-up, so rows compare across machines:

1. Demo run, wrapped vs bare. The support-triage ticket through
   `examples.support_triage.agents.triage_agent` on its scripted model (triage -> billing ->
   get_invoice -> process_refund -> answer). Bare: `await agents.Runner.run(agent, ticket)`.
   Wrapped: `await runtime.run_async(agent, ticket)` on an `AgentRuntime` over a temporary
   SQLite file with an approval policy that allows every call (the gated refund runs at once).
   A second wrapped arm runs an ungated variant (no policy, `process_refund` as a plain
   `function_tool`). Goal: wrapped p50 <= 1.3x bare p50. Two derived rows ("bare + its store
   writes") add, to the bare p50, the p50 of the time each wrapped run spent in keel's store
   writes (its admission and journal commits, timed around each call inside the runs): the
   least a wrapped run could take with those writes. A third wrapped arm, where /dev/shm is
   a tmpfs, runs the first one's store there (info): keel's work without the disk flushes.
2. Journaling one step vs the store's single-commit floor. Journal: one durable
   `Execution.record()` of a model step (the payload and 2 events the OpenAI adapter writes,
   ~520 B of JSON; durable, as the commit before a tool call is). Floor: SQLite: a raw
   `sqlite3` connection on another file with keel's pragmas (WAL, synchronous=FULL) doing
   BEGIN IMMEDIATE; INSERT of the same payload; COMMIT. A second SQLite row records the step
   relaxed, against the same floor with synchronous=NORMAL (info). PostgreSQL (in a
   database created and dropped for the run; skipped, as are all PostgreSQL rows, if the
   server does not answer): a raw psycopg autocommit INSERT. Goals (research/durability.md
   section 9, G1): SQLite p50 <= 1 ms, p99 <= 5 ms, <= 4x floor; PostgreSQL p50 <= 2 ms,
   p99 <= 10 ms, <= 3x floor.
3. Write transactions per journaled step during one wrapped demo run, counted with
   `Store.count_commits()` and classified by the statements each transaction ran (and whether
   it was durable). The run's
   admission and completion transactions are per run, not per step, and are left out of the
   ratio (the all-in figure is in the row's note). Goal: <= 1 per step; an approved gated call
   adds its intent row by design, so the demo row allows 1 more per approved call.
4. Mock runs: `keel.testing.mock_run` of the demo's triage agent (handoff, two tool calls, the
   answer) against the same flow on the SDK's own `agents.testing.ScriptedModel` with
   `Runner.run_sync`, no keel. Goals: >= 200 mock runs/s (p50 <= 5 ms), ratio <= 1.5x.

Rows 5-8 measure keel's workers (`keel worker`, `AgentRuntime(workers=True)`); their agents are
module-level in bench/_agents.py so that worker processes import them. On PostgreSQL they
share one database (created and dropped; the claim harness gets another) and one fleet of 4
worker subprocesses, started once: `python -m keel.cli worker bench._agents:one_step_agent
bench._agents:approval_agent bench._agents:takeover_agent --db URL --concurrency 4 --lease 1`
(tracing off, this checkout's keel first on PYTHONPATH). A row that needs fewer workers
pauses the others with SIGSTOP while they are idle (they hold no run and claim nothing).

5. One-step runs per second. A one-step run is `one_step_agent` on a short input: its scripted
   model answers with text at once (no tool), so keel admits the run, journals one model step
   and completes it. SQLite, one process: sequential `await runtime.run_async(...)` on a
   SQLite file, alternating with bare `await agents.Runner.run(...)`; runs/s = runs / their
   summed wall time. Goal (G4): >= 500 runs/s. PostgreSQL, 1, 2 and 4 workers: per drain, all
   workers are paused, R runs are queued with `AgentRuntime(url, workers=True).start(...)`,
   the benchmark locks the queued rows (SELECT ... FOR UPDATE, transaction left open),
   continues N workers, gives them 0.5 s to go idle, then commits `pg_notify('keel_work')`
   with the release of the rows. Drain time: from that commit (the workers are ready) to the
   largest finished_at once all R runs are COMPLETED (the store is polled every 20 ms).
   Trials interleave N in rotating order after a warm-up drain by 4. Columns: drain time / R
   (ms per run), median and slowest drain; the rate is from the median drain. Baseline: the
   SQLite row's bare runs. Goals: >= 250 runs/s on the 2-vCPU box, and for 2 and 4 workers
   no drop: >= 0.9x 1 worker's rate (10% for noise).
6. Claim throughput against the raw SKIP LOCKED ceiling, same harness: P (2, 4) claimer
   processes per arm, started once, drain J rows inserted directly as queued runs, one row
   per claim, each completed before the next claim. keel: `claim_batch(limit=1)` (one
   statement, relaxed) then the durable `Store.write` a finished run commits (fenced, a done
   event, status COMPLETED). Raw: psycopg
   `SELECT id ... FOR UPDATE SKIP LOCKED LIMIT 1` + `UPDATE ... RETURNING` in one
   transaction, then a fenced autocommit UPDATE to COMPLETED, on `raw_executions (LIKE
   keel_executions INCLUDING ALL)`. Drain time: from "go" to the last completion; arms
   alternate. Goal (G4): keel's rate >= 70% of raw's.
7. Takeover after SIGKILL (bench/_takeover.py): two workers with --lease 1, the run's owner is
   killed inside a blocking tool, sample i of n (i + 0.5) / n of a poll after the tool
   started; from the kill to the idle worker's `resumed` event. Baseline: from the kill to
   the dead lease's expiry. Goal (G3 b): p50 <= lease + 1 poll (1 s + 1 s on PostgreSQL).
8. approve() -> tool start (bench/_approval.py): one idle worker, runs waiting on a
   `@keel.tool(approval_required=True)` tool; from `AgentHandle(id, runtime=...).approve()`
   returning to the time.time() the tool body writes to a file as it starts. PostgreSQL
   (NOTIFY wakes the worker): baseline a raw NOTIFY -> LISTEN wake-up of another process,
   interleaved; goal (G3 c) p50 <= 200 ms. SQLite (the worker polls every 0.1 s): baseline the
   PostgreSQL row; goal p50 <= 1 s.

p50/p99 are nearest-rank percentiles of wall-clock `time.perf_counter()` samples. Nothing is
tuned to the goals: a MISS is a finding. `--strict` exits 1 when any goal is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from ._report import Row, render
from ._workers import WorkerPlan

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Plan:
    demo_runs: int
    demo_warmup: int
    steps: int
    steps_warmup: int
    pg_steps: int
    pg_warmup: int
    mock_runs: int
    mock_warmup: int
    one_step_runs: int
    one_step_warmup: int
    workers: WorkerPlan


FULL = Plan(demo_runs=200, demo_warmup=20, steps=2000, steps_warmup=200, pg_steps=1500,
            pg_warmup=150, mock_runs=300, mock_warmup=30, one_step_runs=500,
            one_step_warmup=50, workers=WorkerPlan(
                drain_runs=500, drain_trials=3, drain_warmup=100, claim_rows=600,
                claim_trials=3, claim_warmup=100, approvals=30, approval_warmup=3,
                takeovers=5))
QUICK = Plan(demo_runs=40, demo_warmup=5, steps=1000, steps_warmup=50, pg_steps=300,
             pg_warmup=30, mock_runs=60, mock_warmup=10, one_step_runs=100,
             one_step_warmup=10, workers=WorkerPlan(
                 drain_runs=200, drain_trials=1, drain_warmup=40, claim_rows=300,
                 claim_trials=1, claim_warmup=30, approvals=8, approval_warmup=1,
                 takeovers=2))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, well under a minute")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KEEL_BENCH_POSTGRES_URL")
        or os.environ.get("KEEL_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL,
        help="an existing database to connect through; the benchmark creates and drops its own",
    )
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the SQLite files go (default: a temporary directory)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any goal is missed")
    return parser.parse_args(argv)


def _offline() -> None:
    """Scripted models only, no tracing back end: set before the SDK and the demo load."""
    os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    os.environ.pop("OPENAI_API_KEY", None)


_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    print(f"bench: [{time.perf_counter() - _STARTED:5.1f} s] {message}", file=sys.stderr,
          flush=True)


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (fsync costs nothing on tmpfs)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1]
                if str(path.resolve()).startswith(point) and len(point) > len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def _postgres_rows(url: str, plan: Plan, header: list[str]) -> list[Row]:
    from . import _journal
    from ._postgres import Unreachable, bench_database

    samples = _journal.Samples(plan.pg_steps, plan.pg_warmup)
    try:
        with bench_database(url) as database:
            header.append(f"PostgreSQL {database.server_version} (loopback)")
            _progress(f"journaling {samples.count} steps on PostgreSQL")
            return [_journal.postgres_row(database.url, database.conninfo, samples)]
    except Unreachable as exc:
        return [_skipped("journal 1 step, PostgreSQL", f"PostgreSQL skipped: {exc}")]


def _skipped(name: str, reason: str) -> Row:
    return Row(name=name, n=None, p50=None, p99=None, baseline="-", base_p50=None,
               base_p99=None, ratio=None, skipped=reason)


def _measure(args: argparse.Namespace, plan: Plan, directory: Path, header: list[str]) -> list[Row]:
    from . import _demo, _journal, _mock

    _progress(f"demo run x{plan.demo_runs} per arm (bare, wrapped, wrapped ungated, "
              "wrapped on tmpfs)")
    timings = _demo.measure_latency(
        directory / "demo", runs=plan.demo_runs, warmup=plan.demo_warmup
    )
    _progress(f"journaling {plan.steps} steps on SQLite, durable and relaxed")
    steps = _journal.Samples(plan.steps, plan.steps_warmup)
    sqlite = _journal.sqlite_timings(directory, steps)
    relaxed = _journal.sqlite_timings(directory, steps, durable=False)
    if args.no_postgres:
        postgres = [_skipped("journal 1 step, PostgreSQL", "--no-postgres")]
    else:
        postgres = _postgres_rows(args.postgres_url, plan, header)
    _progress("counting write transactions per step")
    commits = _demo.count_commits(directory / "commits")
    _progress(f"mock runs x{plan.mock_runs} per arm (keel.testing, the SDK's ScriptedModel)")
    mocks = _mock.measure(runs=plan.mock_runs, warmup=plan.mock_warmup)
    return [
        *_demo.latency_rows(timings),
        _demo.memory_row(timings),
        *_demo.bound_rows(timings, commits),
        _journal.sqlite_row(sqlite),
        _journal.sqlite_relaxed_row(relaxed),
        *postgres,
        *_demo.commit_rows(commits),
        *_mock.rows(mocks),
        *_worker_rows(args, plan, directory),
    ]


def _worker_rows(args: argparse.Namespace, plan: Plan, directory: Path) -> list[Row]:
    from . import _throughput, _workers

    _progress(f"one-step runs x{plan.one_step_runs} per arm on SQLite (keel, bare)")
    one_step = _throughput.measure_sqlite(
        directory, runs=plan.one_step_runs, warmup=plan.one_step_warmup)
    rows = [_throughput.sqlite_row(one_step)]
    approvals = None
    if args.no_postgres:
        rows.append(_workers.skipped("keel workers on PostgreSQL", "--no-postgres"))
    else:
        postgres, approvals = _workers.postgres_rows(
            args.postgres_url, plan.workers, directory, one_step[1], _progress)
        rows += postgres
    _progress(f"{plan.workers.approvals} approvals to an idle SQLite worker")
    rows.append(_workers.sqlite_approval_row(directory, plan.workers, approvals))
    return rows


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _header(plan_name: str, directory: Path) -> list[str]:
    return [
        f"keel benchmark ({plan_name}); Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {version('sqlalchemy')}, "
        f"openai-agents {version('openai-agents')}, {os.cpu_count()} CPUs",
        f"SQLite files in {directory} ({_filesystem(directory)})",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _offline()
    plan = QUICK if args.quick else FULL
    started, load = time.perf_counter(), _load()
    with tempfile.TemporaryDirectory(prefix="keel-bench-", dir=args.dir) as name:
        directory = Path(name)
        for sub in ("demo", "commits"):
            (directory / sub).mkdir()
        header = _header("quick" if args.quick else "full", directory)
        rows = _measure(args, plan, directory, header)
    header.append(
        f"wall time {time.perf_counter() - started:.1f} s; load average at start {load:.2f}, "
        f"at end {_load():.2f} (other processes on the box share its CPUs)"
    )
    print("\n".join(header), end="\n\n")
    print(render(rows))
    missed = any(row.result == "MISS" for row in rows)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
