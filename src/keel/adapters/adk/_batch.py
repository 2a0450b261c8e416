"""The function calls of one model response, which must wait for decisions together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ...runtime._execution import ApprovalRequest

__all__ = ["Batch"]


class Batch:
    """The function calls of one model response, which ADK runs at once, each in a task of
    its own. A call that must wait for a decision waits until each of the others has finished
    or waits too (has settled), so that one pause asks about all of them and a call that
    needs no decision runs once, journaled, instead of being cancelled by the pause.

    The response of an agent that a tool call runs (an AgentTool's) is a batch `within` that
    call's: what its calls wait for, the calls beside that call wait for with them."""

    def __init__(self, call_ids: list[str], within: tuple[Batch, str] | None = None) -> None:
        self.call_ids = call_ids
        self.within = within  # the batch and the call in which this batch's agent runs
        self.settled = asyncio.Event()
        self._unsettled = set(call_ids)
        self._asking: list[tuple[int, ApprovalRequest]] = []

    def settle(self, call_id: str,
               asking: Sequence[ApprovalRequest] = ()) -> list[ApprovalRequest] | None:
        """The call has finished, or waits for the decisions `asking`. Once the last call has
        settled, returns what the batch waits for, in the order of its calls."""
        if call_id not in self._unsettled:
            return None
        self._unsettled.discard(call_id)
        position = self.call_ids.index(call_id)
        self._asking += [(position, request) for request in asking]
        if self._unsettled:
            return None
        self.settled.set()
        return [request for _, request in sorted(self._asking, key=lambda pair: pair[0])]

    def outermost(self) -> Batch:
        """The batch of the run's own agent that this one is (or is within)."""
        batch = self
        while batch.within is not None:
            batch = batch.within[0]
        return batch
