"""`keel worker` subprocesses for the worker rows: started, readied, paused, killed, stopped.

Each worker is `python -m keel.cli worker bench._agents:A bench._agents:B ... --db URL
--concurrency K [--lease S]`, run from the repository root with the benchmark's own keel and
bench packages first on PYTHONPATH, tracing off, and its log (keel's INFO lines) in a file of
its own. Starting one costs seconds of CPU (it imports the agents SDK), so the PostgreSQL rows
share one fleet and choose how many of its workers take part by pausing the others
(SIGSTOP): a paused worker is idle, holds no run, and claims nothing until it is continued.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ._child import ROOT, child_env

__all__ = ["Fleet", "fleet", "listeners", "wait_until"]

READY_TIMEOUT = 120.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT,
               interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting until {what}")
        time.sleep(interval)


def listeners(conninfo: str) -> Callable[[], int]:
    """How many sessions of this database are LISTENing on keel_work (ready workers)."""
    import psycopg

    def count() -> int:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query = 'LISTEN keel_work'").fetchone()
        return int(row[0]) if row else 0

    return count


class Fleet:
    """Worker processes serving `agents` (names in bench._agents) from the store at `url`."""

    def __init__(self, directory: Path, url: str, agents: Sequence[str], *, concurrency: int,
                 lease: float | None = None, listening: Callable[[], int] | None = None) -> None:
        self.directory, self.url, self.agents = directory, url, list(agents)
        self.concurrency, self.lease, self.listening = concurrency, lease, listening
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self._started = 0

    def start(self, count: int) -> list[subprocess.Popen[bytes]]:
        """Start `count` workers at once; returns once each says it serves and (PostgreSQL)
        every live worker's listener connection is LISTENing."""
        command = [sys.executable, "-m", "keel.cli", "worker",
                   *(f"bench._agents:{agent}" for agent in self.agents),
                   "--db", self.url, "--concurrency", str(self.concurrency)]
        if self.lease is not None:
            command += ["--lease", f"{self.lease:g}"]
        started = []
        for _ in range(count):
            log = self.directory / f"worker-{self._started}.log"
            self._started += 1
            with log.open("wb") as out:
                proc = subprocess.Popen(command, cwd=ROOT, env=child_env(self.directory),
                                        stdout=out, stderr=subprocess.STDOUT)
            self.logs[proc.pid] = log
            started.append(proc)
        self.procs += started
        wait_until(lambda: all(self._serving(p) for p in started), f"{count} workers serve")
        listening = self.listening
        if listening is not None:
            live = len(self.live)
            wait_until(lambda: listening() >= live, f"{live} workers LISTEN", interval=0.05)
        return started

    def _serving(self, proc: subprocess.Popen[bytes]) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"bench: worker {proc.pid} exited {proc.returncode}:\n"
                               f"{self.logs[proc.pid].read_text()[-2000:]}")
        return b"serving" in self.logs[proc.pid].read_bytes()

    @property
    def live(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in self.procs if proc.poll() is None]

    def pause(self, procs: Sequence[subprocess.Popen[bytes]] | None = None) -> None:
        """SIGSTOP these workers (default: all live ones); call only while they are idle."""
        for proc in self.live if procs is None else procs:
            os.kill(proc.pid, signal.SIGSTOP)

    def resume(self, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            os.kill(proc.pid, signal.SIGCONT)

    def use(self, count: int) -> list[subprocess.Popen[bytes]]:
        """Let the first `count` live workers work and pause the others; returns the first."""
        live = self.live
        if len(live) < count:
            raise RuntimeError(f"bench: {count} workers wanted, {len(live)} alive")
        self.pause(live[count:])
        self.resume(live[:count])
        return live[:count]

    def runs(self, proc: subprocess.Popen[bytes]) -> int:
        """How many runs this worker has started driving (its "running ID" log lines)."""
        return sum(1 for line in self.logs[proc.pid].read_bytes().splitlines()
                   if line.startswith(b"keel worker: running "))

    def close(self) -> None:
        """SIGTERM every worker still alive (they finish what they drive), then wait."""
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def fleet(directory: Path, url: str, agents: Sequence[str], *, concurrency: int,
          lease: float | None = None,
          listening: Callable[[], int] | None = None) -> Iterator[Fleet]:
    workers = Fleet(directory, url, agents, concurrency=concurrency, lease=lease,
                    listening=listening)
    try:
        yield workers
    finally:
        workers.close()
