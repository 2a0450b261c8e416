"""Mock runs per second: keel.testing.mock_run against the SDK's own scripted model.

Both arms run the demo's triage agent through the same flow (handoff to billing, get_account
and get_invoice in one turn, the final answer), from sync code as a test would. keel: one
`mock_run(...)` (an in-memory store, the execution deleted afterwards). Bare:
`Runner.run_sync(...)` with a fresh `agents.testing.ScriptedModel` of the same three turns as
`RunConfig.model`, no keel.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agents import RunConfig, Runner
from agents.testing import ScriptedModel, assistant_message, function_call
from examples.support_triage.agents import triage_agent

from keel.testing import MockEvent, mock_run

from ._report import Check, Row, Timing, timing_row

__all__ = ["measure", "rows"]

PROMPT = "I was charged twice for invoice INV-8821 on account cust_123."
ANSWER = "Invoice INV-8821 was charged twice; I have asked billing to refund one charge."
RUNS_PER_SECOND_GOAL = 200.0
RATIO_GOAL = 1.5

EVENTS = [
    MockEvent.handoff("billing_specialist"),
    MockEvent.tool_call("get_account", {"customer_id": "cust_123"}),
    MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
    MockEvent.done(ANSWER),
]


def _keel() -> str:
    return str(mock_run(triage_agent, PROMPT, events=EVENTS).output)


def _bare() -> str:
    model = ScriptedModel([
        [function_call("transfer_to_billing_specialist", {}, call_id="c1")],
        [function_call("get_account", {"customer_id": "cust_123"}, call_id="c2"),
         function_call("get_invoice", {"invoice_id": "INV-8821"}, call_id="c3")],
        [assistant_message(ANSWER)],
    ])
    result = Runner.run_sync(triage_agent, PROMPT, run_config=RunConfig(model=model))
    return str(result.final_output)


def measure(*, runs: int, warmup: int) -> dict[str, Timing]:
    """Both arms, alternating which goes first; both must give the same answer."""
    arms: dict[str, Callable[[], str]] = {"keel": _keel, "bare": _bare}
    samples: dict[str, list[float]] = {name: [] for name in arms}
    for i in range(warmup + runs):
        order = list(arms) if i % 2 == 0 else list(reversed(arms))
        for name in order:
            start = time.perf_counter()
            output = arms[name]()
            elapsed = time.perf_counter() - start
            if output != ANSWER:
                raise RuntimeError(f"the {name} arm answered {output!r}")
            if i >= warmup:
                samples[name].append(elapsed)
    return {name: Timing(values) for name, values in samples.items()}


def rows(timings: dict[str, Timing]) -> list[Row]:
    keel, bare = timings["keel"], timings["bare"]
    per_second = 1000.0 / keel.p50
    return [timing_row(
        "mock run of the triage agent vs the SDK's ScriptedModel", keel,
        "Runner.run_sync + ScriptedModel", bare,
        [Check(f"p50 <= {1000.0 / RUNS_PER_SECOND_GOAL:g} ms ({RUNS_PER_SECOND_GOAL:g} runs/s)",
               keel.p50, 1000.0 / RUNS_PER_SECOND_GOAL),
         Check(f"ratio <= {RATIO_GOAL:g}x", keel.p50 / bare.p50, RATIO_GOAL)],
        note=f"{per_second:.0f} mock runs/s at the p50; the bare SDK arm alone manages "
        f"{1000.0 / bare.p50:.0f}/s on this machine. Flow: handoff, get_account + get_invoice, "
        "answer. Each mock run admits, journals and deletes its execution in keel's kept "
        "in-memory store for mock runs.",
    )]
