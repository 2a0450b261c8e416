"""A background event loop in a daemon thread: runs started executions, watches waiting ones."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["BackgroundLoop"]

log = logging.getLogger("keel")


class BackgroundLoop:
    """Started on first use. `watch(id)` polls `on_watch(id)` until it returns True."""

    def __init__(self, on_watch: Callable[[str], Awaitable[bool]], interval: float) -> None:
        self._on_watch = on_watch
        self._interval = interval
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[concurrent.futures.Future[Any]] = set()
        self._watched: set[str] = set()
        self._watching: concurrent.futures.Future[None] | None = None
        self._stopping = False

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        with self._lock:
            self._tasks.add(future)
        future.add_done_callback(self._forget)
        return future

    def watch(self, execution_id: str) -> None:
        loop = self._ensure_loop()
        with self._lock:
            self._watched.add(execution_id)
            if self._watching is None:
                self._watching = asyncio.run_coroutine_threadsafe(self._watch_loop(), loop)

    def close(self) -> None:
        """Finish what was submitted, stop watching, stop the thread."""
        with self._lock:
            loop, thread, self._stopping = self._loop, self._thread, True
            tasks = list(self._tasks)
        if loop is None or thread is None:
            return
        concurrent.futures.wait(tasks)
        if self._watching is not None:
            self._watching.result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._stopping:
                raise RuntimeError("This AgentRuntime is closed; create a new one.")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="keel-background", daemon=True
                )
                self._thread.start()
            return self._loop

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._tasks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("keel background execution failed", exc_info=future.exception())

    async def _watch_loop(self) -> None:
        while not self._stopping:
            with self._lock:
                watched = list(self._watched)
            for execution_id in watched:
                if self._stopping:
                    break
                try:
                    done = await self._on_watch(execution_id)
                except Exception:
                    log.exception("keel could not resume execution %s", execution_id)
                    done = True
                if done:
                    with self._lock:
                        self._watched.discard(execution_id)
            await asyncio.sleep(self._interval)
        with self._lock:
            self._watching = None
