"""The function calls of one model response, which must wait for decisions together."""

from __future__ import annotations

import asyncio

from ...runtime._execution import ApprovalRequest

__all__ = ["Batch"]


class Batch:
    """The function calls of one model response, which ADK runs at once, each in a task of
    its own. A call that must wait for a decision waits until each of the others has finished
    or waits too (has settled), so that one pause asks about all of them and a call that
    needs no decision runs once, journaled, instead of being cancelled by the pause."""

    def __init__(self, call_ids: list[str]) -> None:
        self.call_ids = call_ids
        self.asking: list[ApprovalRequest] = []
        self.settled = asyncio.Event()
        self._unsettled = set(call_ids)

    def settle(self, call_id: str) -> None:
        self._unsettled.discard(call_id)
        if not self._unsettled:
            self.settled.set()
