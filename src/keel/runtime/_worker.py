"""Workers: processes that run the executions other processes admit.

A worker serves a set of agents. It claims their queued executions (new ones, and waiting ones
whose approvals were decided) and the running ones whose owner stopped heartbeating, oldest
first, and drives up to `concurrency` of them at a time on keel's event loop. On PostgreSQL
it sleeps on LISTEN keel_work between claims; on SQLite it polls. Expired leases are found
by the same poll, so a crashed worker's runs are taken over within its lease plus one poll.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import KeelError, StoreUnavailableError
from ._events import Status
from ._leases import claim_batch, claimable_refs
from ._loop import submit_to_keel_loop
from ._options import RunOptions
from ._references import find_reference
from ._runtime import TAKEN_OVER
from ._schema import ExecutionRow
from ._store import NewEvent

if TYPE_CHECKING:
    from ._runtime import AgentRuntime

__all__ = ["Worker"]

log = logging.getLogger("keel")


class Worker:
    """Claims and runs the executions of `agents` from `runtime`'s store.

        Worker(AgentRuntime(), [triage_agent], concurrency=8).run()   # until Ctrl-C

    The runtime's approval rules apply to every run the worker drives.
    """

    def __init__(
        self,
        runtime: AgentRuntime,
        agents: Sequence[Any],
        *,
        concurrency: int = 4,
        poll_interval: float | None = None,
    ) -> None:
        """
        Args:
            agents: the agents whose executions this worker takes (as the processes that
                admit them have them: the same module-level objects).
            concurrency: how many executions run at once.
            poll_interval: how often to look for work without being woken; default the
                runtime's on SQLite, 1 s on PostgreSQL (whose NOTIFY wakes workers at once).
        """
        if not agents:
            raise KeelError("A worker needs at least one agent to serve.")
        if concurrency < 1:
            raise KeelError(f"concurrency must be at least 1, not {concurrency}.")
        self.runtime = runtime
        self.agents = list(agents)
        self.concurrency = concurrency
        self.poll_interval = poll_interval or (
            runtime.poll_interval if runtime.store.is_sqlite else 1.0)
        self._served: dict[str, Any] = {}  # agent reference -> agent
        self._unserved: set[str] = set()
        for agent in self.agents:
            reference = find_reference(agent)
            if reference is None:
                raise KeelError(f"{agent!r} has no module-level name, so no execution can "
                                "name it: define it at the top level of a module.")
            self._served[reference] = agent
        self._stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        """Work until `stop()` or Ctrl-C, then let the running executions finish or pause (a
        second Ctrl-C leaves them to be taken over once their leases expire)."""
        working = submit_to_keel_loop(self.run_async())
        try:
            _wait(working)
        except KeyboardInterrupt:
            self.stop()
            _wait(working)

    def stop(self) -> None:
        """Stop claiming; `run()` returns once the executions it drives have finished or
        paused. Safe from any thread or a signal handler."""
        self._stopping.set()
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run_async(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        stop_listening = self.runtime.store.listen(self.wake)
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                free = self.concurrency - len(running)
                claimed = self._claim(free) if free else []
                for row in claimed:
                    task = asyncio.create_task(self._drive(row))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: self.wake())
                if free and len(claimed) == free:
                    continue  # there may be more
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass
            if running:
                await asyncio.wait(running)
        finally:
            if stop_listening is not None:
                await asyncio.to_thread(stop_listening)

    def wake(self) -> None:
        """Look for work now (a notification came, or a slot became free)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _claim(self, limit: int) -> list[ExecutionRow]:
        lease = self.runtime.lease_seconds
        try:
            claimed = claim_batch(self.runtime.store, self._served, limit=limit,
                                  lease_seconds=lease)
            if len(claimed) < limit and self._learn_references():
                claimed += claim_batch(self.runtime.store, self._served,
                                       limit=limit - len(claimed), lease_seconds=lease)
        except StoreUnavailableError as exc:
            log.warning("keel worker: the store is unavailable (%s); trying again", exc)
            return []
        return claimed

    def _learn_references(self) -> bool:
        """Whether executions wait under another name of a served agent (a package that
        re-exports it, say); the agent's own module must be loaded here already, so that
        nothing in the store makes a worker import code."""
        learned = False
        for reference in claimable_refs(self.runtime.store) - self._served.keys() \
                - self._unserved:
            location, _, qualname = reference.rpartition(":")
            target: Any = sys.modules.get(location)
            for part in qualname.split("."):
                target = getattr(target, part, None)
            agent = next((a for a in self.agents if a is target), None)
            if agent is None:
                self._unserved.add(reference)
            else:
                self._served[reference] = agent
                learned = True
        return learned

    async def _drive(self, row: ExecutionRow) -> None:
        try:
            try:
                options = RunOptions.for_resume(row.options, None, RunOptions())
            except KeelError as exc:  # it would fail the same way in every worker
                self.runtime.store.write(
                    row.id, row.lease_epoch, events=[NewEvent("error", data={"content": str(
                        exc)})], status=Status.FAILED.value, error=str(exc),
                    finished_at=time.time(), lease_owner=None, lease_expires_at=None)
                return
            log.info("running %s (%s)", row.id, row.agent_name)
            # The first claim of a queued run (epoch 1) starts it: its journal is empty.
            output = await self.runtime.drive(row, self._served[str(row.agent_ref)], options,
                                              fresh=row.lease_epoch == 1)
            if output is TAKEN_OVER:
                log.warning("%s was taken over by another process (this one lost its lease); "
                            "it stopped driving it", row.id)
            elif log.isEnabledFor(logging.INFO):
                log.info("%s is %s", row.id, self.runtime.store.execution(row.id).status)
        except StoreUnavailableError as exc:
            log.warning("keel worker: lost the store during execution %s (%s); it is taken "
                        "over once its lease expires", row.id, exc)
        except Exception:
            log.exception("keel worker: execution %s stopped", row.id)


def _wait(working: concurrent.futures.Future[None]) -> None:
    """`working.result()`, in short waits: Python runs signal handlers (SIGTERM's `stop()`,
    Ctrl-C) in the main thread only, and a signal the kernel hands to another thread (it may,
    when the main thread is busy, say just woken by SIGCONT) reaches a main thread blocked in
    one long wait only when that wait ends."""
    while True:
        try:
            return working.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            continue
