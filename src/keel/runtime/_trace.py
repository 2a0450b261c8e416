"""A run's events as readable lines: failing expectations show them, and `keel show`."""

from __future__ import annotations

from typing import Any

from ._events import Event
from ._result import AgentResult

__all__ = ["describe", "short", "trace"]

_LIMIT = 100


def trace(result: AgentResult) -> str:
    lines = [f"Execution {result.execution_id}: {result.status.value}"
             + (f" ({result.error})" if result.error else "")]
    lines += [f"  {event.seq:>3}  {event.agent or '-':<20}  {describe(event)}"
              for event in result.events]
    if not result.events:
        lines.append("  (no events)")
    return "\n".join(lines)


def describe(event: Event) -> str:
    """One event as `type detail`, e.g. `tool_call get_invoice {'invoice_id': 'INV-1'}`."""
    match event.type:
        case "tool_call" | "waiting":
            detail = f"{event.tool_name} {short(event.args)}"
        case "tool_result":
            detail = f"{event.tool_name} -> {short(event.result)}"
        case "handoff":
            detail = f"-> {event.target}"
        case "approved" | "rejected":
            detail = event.tool_name + (f" ({event.reason})" if event.reason else "")
        case "guardrail_pass" | "guardrail_fail":
            detail = event.guardrail_name
        case "done":
            detail = short(event.output)
        case "thinking" | "message" | "error":
            detail = short(event.content)
        case _:
            detail = short(getattr(event, "reason", None) or "")
    return f"{event.type} {detail}".rstrip()


def short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= _LIMIT else text[: _LIMIT - 1] + "…"
