"""keel's marks on the order desk's tools: the gate on the charge, and the unsafe class."""

from __future__ import annotations

from typing import Any

import keel

__all__ = ["gated", "unsafe"]


def gated(tool: Any) -> Any:
    """A human approves each call before it runs."""
    return keel.tool(approval_required=True)(tool)


def unsafe(tool: Any) -> Any:
    """An effect nothing deduplicates: a call cut off mid-call parks the run IN_DOUBT."""
    return keel.tool(side_effects="unsafe")(tool)
