"""Claim throughput: keel's claim path against the raw SKIP LOCKED ceiling, same harness.

P claimer processes drain a table of J queued rows, one row per claim (a busy worker claims
for each slot that frees), each completing its row before claiming the next:

- keel: `claim_batch(store, {ref}, limit=1)` (one statement: SELECT ... FOR UPDATE SKIP LOCKED
  and UPDATE ... RETURNING in CTEs, committed without waiting for the disk, as keel's claims
  are), then the completion a finished run commits (`Store.write`: fenced by the lease epoch,
  a `done` event, status COMPLETED, lease cleared; durable).
- raw: psycopg on `raw_executions` (`CREATE TABLE ... (LIKE keel_executions INCLUDING ALL)`,
  so the same columns and indexes): one transaction of SELECT id ... WHERE status = 'QUEUED'
  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED and UPDATE ... RETURNING, then one
  autocommit UPDATE to COMPLETED fenced by the epoch (no event row).

Claimers are `python -m bench._claims ARM URL`, started once per arm: each connects and
prints "ready", then per "go" line drains the table and prints "done COUNT LAST" (LAST:
time.time() of its last completion). A drain's time runs from the parent's "go" to the last
completion of any of its claimers; its table is filled before and emptied after.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass

from ._child import ROOT, child_env
from ._postgres import BenchDatabase
from ._report import Check, Row, Timing

__all__ = ["PROCESS_COUNTS", "Drain", "measure", "rows"]

PROCESS_COUNTS = (2, 4)
GOAL = 0.7  # keel >= 70% of the raw ceiling, research/durability.md section 9, G4
AGENT_REF = "bench._agents:one_step_agent"
ARMS = ("keel", "raw")
_TABLES = {"keel": "keel_executions", "raw": "raw_executions"}


@dataclass(frozen=True)
class Drain:
    rows: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


def _fill(conninfo: str, arm: str, count: int) -> None:
    """`count` queued rows, oldest first, as `AgentRuntime(workers=True)` admits them."""
    import psycopg

    now = time.time()
    rows = [(uuid.uuid4().hex, "openai", "one_step", AGENT_REF, '"q"', "{}", "QUEUED", 0,
             now + i * 1e-6, now + i * 1e-6) for i in range(count)]
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {_TABLES[arm]} (id, framework, agent_name, agent_ref, input, options, "
            "status, lease_epoch, created_at, updated_at) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)


class _Claimers:
    """`max(PROCESS_COUNTS)` claimer processes per arm, started once; a drain uses the
    first P of an arm's."""

    def __init__(self, database: BenchDatabase) -> None:
        self.database = database
        targets = {"keel": database.url, "raw": database.conninfo}
        self.children = {arm: [subprocess.Popen(
            [sys.executable, "-m", "bench._claims", arm, targets[arm]], cwd=ROOT,
            env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(max(PROCESS_COUNTS))] for arm in ARMS}
        for child in self._all():
            if self._line(child) != "ready":
                raise RuntimeError("bench: a claimer did not start")

    def _all(self) -> list[subprocess.Popen[str]]:
        return [child for children in self.children.values() for child in children]

    @staticmethod
    def _line(child: subprocess.Popen[str]) -> str:
        assert child.stdout is not None
        return child.stdout.readline().strip()

    @staticmethod
    def _say(child: subprocess.Popen[str], line: str) -> None:
        assert child.stdin is not None
        child.stdin.write(line + "\n")
        child.stdin.flush()

    def drain(self, arm: str, processes: int, count: int) -> Drain:
        """Fill the arm's table, say go to `processes` claimers, wait until each is done."""
        import psycopg

        conninfo = self.database.conninfo
        _fill(conninfo, arm, count)
        children = self.children[arm][:processes]
        started = time.time()
        for child in children:
            self._say(child, "go")
        done, last = 0, started
        for child in children:
            _, claimed, finished = self._line(child).split()
            done, last = done + int(claimed), max(last, float(finished))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(f"SELECT count(*) FROM {_TABLES[arm]} "
                               "WHERE status = 'COMPLETED'").fetchone()
            conn.execute("TRUNCATE keel_executions, keel_events, keel_steps, keel_approvals, "
                         "raw_executions")
        completed = row[0] if row else 0
        if done != count or completed != count:
            raise RuntimeError(f"bench: {arm} claimed {done}, completed {completed} of {count}")
        return Drain(count, last - started)

    def close(self) -> None:
        for child in self._all():
            if child.poll() is None:
                self._say(child, "quit")
        for child in self._all():
            child.wait(30)


def measure(database: BenchDatabase, *, rows: int, trials: int,
            warmup: int) -> dict[int, dict[str, list[Drain]]]:
    """For each process count: a warm-up drain per arm, then `trials` drains per arm,
    alternating which arm goes first."""
    import psycopg

    from keel.runtime._store import Store

    Store(database.url).close()  # keel's schema
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_executions (LIKE keel_executions INCLUDING ALL)")
    claimers = _Claimers(database)
    try:
        drains: dict[int, dict[str, list[Drain]]] = {}
        for processes in PROCESS_COUNTS:
            drains[processes] = {arm: [] for arm in ARMS}
            for arm in ARMS:
                claimers.drain(arm, processes, warmup)
            for trial in range(trials):
                for arm in (ARMS if trial % 2 == 0 else ARMS[::-1]):
                    drains[processes][arm].append(claimers.drain(arm, processes, rows))
        return drains
    finally:
        claimers.close()


def rows(drains: dict[int, dict[str, list[Drain]]]) -> list[Row]:
    result = []
    for processes, arms in drains.items():
        keel, raw = (Timing([d.seconds / d.rows for d in arms[arm]]) for arm in ARMS)
        keel_rate, raw_rate = (statistics.median(d.per_second for d in arms[arm])
                               for arm in ARMS)
        result.append(Row(
            name=f"claim + complete, {processes} processes, PostgreSQL: keel "
            f"{keel_rate:.0f}/s, raw {raw_rate:.0f}/s", n=sum(d.rows for d in arms["keel"]),
            p50=keel.p50, p99=keel.p99, baseline="raw SKIP LOCKED claim + complete",
            base_p50=raw.p50, base_p99=raw.p99, ratio=keel.p50 / raw.p50,
            checks=[Check(f"keel >= {GOAL:.0%} of raw ({keel_rate / raw_rate:.0%})",
                          keel_rate / raw_rate, GOAL, at_least=True)],
            note=f"{len(arms['keel'])} drains per arm of {arms['keel'][0].rows} queued rows "
            f"by {processes} claimer processes, one row per claim; p50/p99 columns: drain "
            "time / rows, median and slowest drain; rates from the median drain. keel: "
            "claim_batch(limit=1) + Store.write of the completion (with its done event); "
            "raw: psycopg SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1 + UPDATE, then a fenced "
            "UPDATE to COMPLETED, on a copy of keel's table.",
        ))
    return result


# -- the claimer process --------------------------------------------------------------------


def _keel_claimer(url: str) -> Generator[tuple[int, float], None, None]:
    from keel.runtime._leases import claim_batch
    from keel.runtime._store import NewEvent, Store

    store = Store(url)
    claim_batch(store, {"bench:nothing"}, limit=1, lease_seconds=30.0)  # connect, warm
    try:
        while True:
            count, last = 0, time.time()
            while claimed := claim_batch(store, {AGENT_REF}, limit=1, lease_seconds=30.0):
                for row in claimed:
                    store.write(row.id, row.lease_epoch, events=[NewEvent("done", data={
                        "output": "ok"})], status="COMPLETED", output='"ok"',
                                finished_at=time.time(), lease_owner=None,
                                lease_expires_at=None)
                    count, last = count + 1, time.time()
            yield count, last
    finally:
        store.close()


def _raw_claimer(conninfo: str) -> Generator[tuple[int, float], None, None]:
    import psycopg

    owner = f"raw:{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT 1")
        while True:
            count, last = 0, time.time()
            while True:
                now = time.time()
                with conn.transaction():
                    ids = [r[0] for r in conn.execute(
                        "SELECT id FROM raw_executions WHERE status = 'QUEUED' AND "
                        "agent_ref = %s ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                        (AGENT_REF,))]
                    taken = conn.execute(
                        "UPDATE raw_executions SET status = 'RUNNING', lease_owner = %s, "
                        "lease_epoch = lease_epoch + 1, lease_expires_at = %s, "
                        "updated_at = %s WHERE id = ANY(%s) RETURNING id, lease_epoch",
                        (owner, now + 30.0, now, ids)).fetchall() if ids else []
                if not taken:
                    break
                for execution_id, epoch in taken:
                    now = time.time()
                    conn.execute(
                        "UPDATE raw_executions SET status = 'COMPLETED', output = '\"ok\"', "
                        "finished_at = %s, updated_at = %s, lease_owner = NULL, "
                        "lease_expires_at = NULL WHERE id = %s AND lease_epoch = %s",
                        (now, now, execution_id, epoch))
                    count, last = count + 1, time.time()
            yield count, last


def _serve(arm: str, target: str) -> None:
    """Print "ready"; then per "go" line drain the table and print "done COUNT LAST"."""
    drains = (_keel_claimer if arm == "keel" else _raw_claimer)(target)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        claimed, last = next(drains)
        print(f"done {claimed} {last!r}", flush=True)
    drains.close()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
