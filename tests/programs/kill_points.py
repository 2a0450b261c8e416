"""Kill points, the tool ledger and the tool bodies, shared by the crash programs (crash_agents,
crash_graph, crash_adk): each framework's tools wrap `invoice` and `refund`.

    KEEL_TEST_KILL_AT   where the process SIGKILLs itself (the programs name their points)
    KEEL_TEST_HANG_AT   the same, but the process blocks there so that the parent kills it
    KEEL_TEST_TOOL_LEDGER  file that every tool run appends one fsynced JSON line to
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from examples.support_triage import backend

import keel

__all__ = ["checkpoint", "invoice", "record_tool_run", "refund"]


def checkpoint(point: str) -> None:
    """Die (or block until killed) if this process was told to at `point`."""
    if os.environ.get("KEEL_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("KEEL_TEST_HANG_AT") == point:
        time.sleep(120)  # the parent kills us long before this ends
        raise RuntimeError(f"nobody killed the process hanging at {point}")


def record_tool_run(tool: str) -> None:
    """Append one fsynced line per tool run, so that runs in killed processes are counted too."""
    path = os.environ.get("KEEL_TEST_TOOL_LEDGER")
    if not path:
        return
    call = keel.current_call()
    line = {
        "tool": tool,
        "pid": os.getpid(),
        "call_id": call.call_id if call else None,
        "idempotency_key": call.idempotency_key if call else None,
        "attempt": call.attempt if call else None,
    }
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())


def invoice(invoice_id: str) -> dict[str, Any]:
    """The example backend's invoice lookup, recorded, then a kill point."""
    record_tool_run("get_invoice")
    checkpoint("tool:get_invoice:after_effect")
    return backend.INVOICES.get(invoice_id, {"error": f"no invoice {invoice_id}"})


def refund(invoice_id: str, reason: str) -> dict[str, Any]:
    """The example backend's refund (fsynced to SUPPORT_LEDGER), recorded, then a kill point."""
    call = keel.current_call()
    result = backend.refund(invoice_id, reason, call.idempotency_key if call else None)
    record_tool_run("process_refund")
    checkpoint("tool:process_refund:after_effect")
    return result
