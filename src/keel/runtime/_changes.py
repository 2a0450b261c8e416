"""In-process change notification: wakes stream readers at once when an execution changes.

Readers in other processes see changes by polling the store; this only saves readers in the
writing process the poll interval.
"""

from __future__ import annotations

import threading

__all__ = ["CHANGES"]


class _Changes:
    """Wakes in-process stream readers when an execution changes (other processes poll)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[str, int] = {}

    def version(self, execution_id: str) -> int:
        with self._cond:
            return self._versions.get(execution_id, 0)

    def notify(self, execution_id: str) -> None:
        with self._cond:
            self._versions[execution_id] = self._versions.get(execution_id, 0) + 1
            self._cond.notify_all()

    def wait(self, execution_id: str, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._versions.get(execution_id, 0) != seen, timeout)
            return self._versions.get(execution_id, 0)


CHANGES = _Changes()
