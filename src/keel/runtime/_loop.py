"""keel's event loop: one per process, in a daemon thread, for every run started from sync code.

`run()`, `resume()`, `start()` and the background resumer of every AgentRuntime run their
executions here, so a process drives its agents from one loop, whatever thread calls keel. The
OpenAI Agents SDK shares one HTTP client across the process and pools its connections on the
loop that opened them; two loops (a fresh one per `run()`, another for `start()`) would hand
each other's connections around and fail. Async code uses `run_async`, on its own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .._errors import KeelError
from ._events import Status

__all__ = ["Tasks", "refuse_in_running_loop", "run_on_keel_loop", "submit_to_keel_loop"]

log = logging.getLogger("keel")
T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _keel_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            # A daemon: it never keeps the process alive; runtimes wait for their own work.
            threading.Thread(target=_run_forever, args=(_loop,), name="keel",
                             daemon=True).start()
        return _loop


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    """Run `loop` for good. asyncio re-raises a KeyboardInterrupt or SystemExit that a task
    raised (a tool's) out of run_forever, which would stop keel's loop, and with it every
    run of the process; the task holds the exception too, and whoever waits for the task
    receives it (`run()`'s caller, as from the SDK's own run_sync), so the loop goes on."""
    while True:
        try:
            loop.run_forever()
            return
        except (KeyboardInterrupt, SystemExit):
            continue


class _Submitted(concurrent.futures.Future[T]):
    """The outcome of a coroutine on keel's loop; `stop()` cancels its task there."""

    task: asyncio.Task[T] | None = None

    def stop(self) -> None:
        task = self.task
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)


def submit_to_keel_loop(coro: Coroutine[Any, Any, T]) -> _Submitted[T]:
    """Schedule `coro` on keel's loop in a copy of the caller's context variables."""
    loop = _keel_loop()
    future: _Submitted[T] = _Submitted()
    context = contextvars.copy_context()

    def finished(task: asyncio.Task[T]) -> None:
        if task.cancelled():
            future.cancel()
        elif (error := task.exception()) is not None:
            future.set_exception(error)
        else:
            future.set_result(task.result())

    def start() -> None:
        future.task = loop.create_task(coro, context=context)
        future.task.add_done_callback(finished)

    loop.call_soon_threadsafe(start)
    return future


def refuse_in_running_loop(name: str) -> None:
    """A sync entry point waits for keel's loop: from a running loop it would block it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise KeelError(f"{name}() cannot be called from a running event loop; "
                    f"use `await {name}_async(...)` instead.")


def run_on_keel_loop(name: str, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on keel's loop and wait for it (the sync entry points)."""
    try:
        refuse_in_running_loop(name)
    except KeelError:
        coro.close()
        raise
    future = submit_to_keel_loop(coro)
    try:
        return future.result()
    except KeyboardInterrupt:  # Ctrl-C stops the run, as it stops the SDK's run_sync
        future.stop()
        raise


class Tasks:
    """One runtime's work on keel's loop: started executions, and waiting ones it watches.
    Every `interval`, `statuses(ids)` reads how the watched ones stand (in one query), and
    each one found QUEUED is carried on (`carry_on(id)`) beside the others, whose turn does
    not wait for it; one found finished, or gone, is watched no more."""

    def __init__(self, statuses: Callable[[list[str]], dict[str, Status]],
                 carry_on: Callable[[str], Awaitable[Any]], interval: float) -> None:
        self._statuses = statuses
        self._carry_on = carry_on
        self._interval = interval
        self._lock = threading.Lock()
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._watched: set[str] = set()
        self._carrying: set[str] = set()  # watched ones being carried on now
        self._watching: concurrent.futures.Future[None] | None = None
        self._closed = False

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._closed:
                coro.close()
                raise KeelError("This AgentRuntime is closed; create a new one.")
            future = submit_to_keel_loop(coro)
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def watch(self, execution_id: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._watched.add(execution_id)
            if self._watching is None:
                self._watching = submit_to_keel_loop(self._watch_loop())

    def close(self) -> None:
        """Wait for what was started to finish or pause; stop watching."""
        with self._lock:
            self._closed = True
            running, watching = list(self._running), self._watching
        concurrent.futures.wait(running)
        if watching is not None:
            watching.result()

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("keel background execution failed", exc_info=future.exception())

    async def _watch_loop(self) -> None:
        while not self._closed:
            with self._lock:
                idle = [i for i in self._watched if i not in self._carrying]
            try:
                statuses = self._statuses(idle) if idle else {}
            except KeelError as exc:  # the store is away for a while: look again later
                log.warning("keel could not look at the executions it waits for: %s", exc)
                idle = []
            for execution_id in idle:
                status = statuses.get(execution_id)
                if status is None or status.is_terminal:
                    with self._lock:
                        self._watched.discard(execution_id)
                elif status is Status.QUEUED:
                    self._carrying.add(execution_id)
                    try:
                        self.submit(self._carried_on(execution_id))
                    except KeelError:  # closed meanwhile
                        self._carrying.discard(execution_id)
                        break
            await asyncio.sleep(self._interval)

    async def _carried_on(self, execution_id: str) -> None:
        """Carry the execution on; one that cannot be is logged, and watched no more."""
        try:
            await self._carry_on(execution_id)
        except Exception:
            log.exception("keel could not resume execution %s", execution_id)
            with self._lock:
                self._watched.discard(execution_id)
        finally:
            self._carrying.discard(execution_id)
