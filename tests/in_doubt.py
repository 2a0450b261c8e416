"""An IN_DOUBT execution made in this process, for the operator tools' tests (API, CLI,
dashboard). The process "dies" inside an unsafe refund: the tool raises `Interrupted`, a
BaseException that nothing catches, after its effect; the run is left RUNNING like a crashed
one. Once its short lease expires, a resume finds the intent without a result.
(tests/test_in_doubt.py does the same with real processes and SIGKILL.)
"""

from __future__ import annotations

import threading
from typing import Any

from agents import Agent, function_tool

import keel
from keel import AgentRuntime, Status
from scripted import ScriptedModel, call, say

__all__ = ["REFUNDS", "in_doubt_execution"]

REFUNDS: list[str] = []
LEASE = 0.3


class Interrupted(BaseException):
    """Stands for the process dying mid-call."""


_dying = threading.Event()  # the tool runs in the SDK's worker thread


@keel.tool(side_effects="unsafe")
@function_tool
def wire_refund(invoice_id: str) -> str:
    """Wire a refund to the customer's bank (no idempotency key upstream)."""
    REFUNDS.append(invoice_id)
    if _dying.is_set():
        raise Interrupted
    return f"wired {invoice_id}"


def _script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "wire_refund" not in outputs:
        return [call("wire_refund", "w1", invoice_id="INV-8821")]
    return [say(f"Refund: {outputs['wire_refund']}")]


refunder = Agent(name="refunder", instructions="refunder: refund", tools=[wire_refund],
                 model=ScriptedModel(_script))


def in_doubt_execution(url: str, *, redact: bool = False) -> str:
    """An execution of `refunder` that is IN_DOUBT about its wire_refund call."""
    REFUNDS.clear()
    with AgentRuntime(url, lease_seconds=LEASE, redact=redact) as crashed:
        _dying.set()
        try:
            crashed.run(refunder, "refund INV-8821")
        except Interrupted:
            pass
        finally:
            _dying.clear()
        [row] = crashed.store.executions()
    threading.Event().wait(LEASE * 2)  # the dead owner's lease runs out
    with AgentRuntime(url, auto_resume=False) as later:
        assert later.resume(row.id).status is Status.IN_DOUBT
    assert REFUNDS == ["INV-8821"]
    return row.id
