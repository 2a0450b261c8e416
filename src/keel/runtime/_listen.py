"""PostgreSQL wake-ups for workers: LISTEN keel_work on a connection of its own, in a thread.

Admissions of queued executions and approval decisions `NOTIFY keel_work` in the transaction
that makes the work claimable, so a worker hears of it as it commits instead of at its next
poll. Notifications are only hints: workers still poll (for expired leases, and because a
notification sent while the listener was reconnecting is lost).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import URL

from ._faults import application_name

__all__ = ["Listener"]

log = logging.getLogger("keel")


class Listener:
    """Calls `wake()` for every notification on keel_work, until `stop()`."""

    def __init__(self, url: URL, wake: Callable[[], None]) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake = wake
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="keel-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _listen(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True,
                                     application_name=application_name()) as connection:
                    connection.execute("LISTEN keel_work")
                    self._wake()  # whatever was notified while we were not listening
                    while not self._stopped.is_set():
                        for _ in connection.notifies(timeout=0.5):
                            self._wake()
            except psycopg.Error as exc:
                log.warning("keel: lost the PostgreSQL listener connection (%s); "
                            "reconnecting", exc)
                self._stopped.wait(1.0)
