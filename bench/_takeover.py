"""Takeover: a worker is SIGKILLed while it drives a run; how soon does an idle one claim it?

Two `keel worker ... bench._agents:takeover_agent --lease 1` processes work on PostgreSQL
(the fleet's others are paused). Per sample, the benchmark queues one run; whichever worker
claims it blocks inside the `hang` tool (asynchronously: its heartbeat keeps renewing the
lease every lease/3). Once the tool has started, the benchmark SIGKILLs the run's owner
(found by the pid in the row's lease_owner) and notes `time.time()`. Takeover time: from the
kill to the `resumed` event that the other, idle, worker's claim writes (its `ts`). Baseline,
per sample: from the kill to the dead lease's `lease_expires_at` (read after the kill), the
part of the wait that is the lease; the rest is the poll and the claim. A crash comes at no
particular moment, so sample i of n is killed (i + 0.5) / n of a poll interval after the tool
started: killed at once, the idle worker's poll would keep the phase of the queueing's
NOTIFY (which woke it), and every sample would sit at the lease + poll bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keel
from keel.runtime._events import Status

from ._agents import takeover_agent
from ._fleet import Fleet, wait_until
from ._report import Check, Row, Timing

__all__ = ["LEASE", "POLL", "Takeover", "measure", "row"]

LEASE = 1.0  # s, the workers' --lease
POLL = 1.0  # s, a worker's poll on PostgreSQL (Worker's default there)


@dataclass(frozen=True)
class Takeover:
    seconds: float
    """From the SIGKILL to the other worker's `resumed` event."""
    expiry: float
    """From the SIGKILL to the killed worker's lease_expires_at."""


def _sample(runtime: keel.AgentRuntime, workers: Fleet, directory: Path, label: str,
            delay: float) -> Takeover:
    execution_id = runtime.start(takeover_agent, label).execution_id
    wait_until(lambda: (directory / f"hang-{label}").exists(), "a worker hangs in the tool")
    time.sleep(delay)
    owner = runtime.store.execution(execution_id).lease_owner or ""
    pid = int(owner.split(":")[1])
    victim = next(p for p in workers.procs if p.pid == pid)
    victim.kill()
    killed = time.time()
    victim.wait()
    expires = runtime.store.execution(execution_id).lease_expires_at or killed
    wait_until(lambda: runtime.store.execution(execution_id).status == Status.COMPLETED.value,
               "the other worker completes the run", interval=0.05)
    events = runtime.result(execution_id).events
    resumed = [e.ts for e in events if e.type == "resumed"]
    if len(resumed) != 1:
        raise RuntimeError(f"bench: expected one takeover of {execution_id}, saw {resumed}")
    return Takeover(resumed[0] - killed, expires - killed)


def measure(workers: Fleet, runtime: keel.AgentRuntime, directory: Path, *,
            samples: int) -> list[Takeover]:
    """`runtime` queues the runs (workers=True); `workers` serve takeover_agent with
    --lease LEASE. Each sample lets exactly two live workers work (starting one if fewer
    are alive) and kills one of them."""
    taken: list[Takeover] = []
    for i in range(samples):
        if len(workers.live) < 2:
            workers.start(2 - len(workers.live))
        workers.use(2)
        delay = (i + 0.5) / samples * POLL
        taken.append(_sample(runtime, workers, directory, f"t{i}", delay))
    return taken


def row(taken: list[Takeover]) -> Row:
    measured = Timing([t.seconds for t in taken])
    expiry = Timing([t.expiry for t in taken])
    limit = (LEASE + POLL) * 1000.0
    return Row(
        name="takeover after SIGKILL of a worker, PostgreSQL", n=measured.n, p50=measured.p50,
        p99=measured.p99, baseline="lease expiry (expires_at - kill)", base_p50=expiry.p50,
        base_p99=expiry.p99, ratio=measured.p50 / expiry.p50,
        checks=[Check(f"p50 <= lease + 1 poll ({limit:g} ms)", measured.p50, limit)],
        note=f"--lease {LEASE:g} s (heartbeat every lease/3), poll {POLL:g} s, 2 workers: the "
        "owner, SIGKILLed inside a blocking tool at spread moments (0.5/n, 1.5/n, ... of a "
        "poll after the tool started), and one idle. Measured from the kill to the idle "
        "worker's `resumed` event (its claim); samples: "
        f"{', '.join(f'{t.seconds * 1000:.0f}' for t in taken)} ms. The lease had "
        f"{', '.join(f'{t.expiry * 1000:.0f}' for t in taken)} ms left at the kill.",
    )
