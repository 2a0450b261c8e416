"""The support-triage demo run, bare and under keel: latency, and write transactions per step.

The ticket goes triage -> billing -> get_invoice -> process_refund -> answer on the scripted
support model: 4 model turns and 2 tool calls, 6 journaled steps.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import agents
from agents import Agent, function_tool, handoff
from sqlalchemy import Engine, event

import keel
from examples.support_triage import backend
from examples.support_triage.agents import (
    account_agent,
    billing_agent,
    process_refund,
    technical_agent,
    triage_agent,
)

from ._report import Check, Row, Timing, timing_row

__all__ = ["TICKET", "UNGATED_TRIAGE", "commit_rows", "latency_rows"]

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
RATIO_GOAL = 1.3


def _ungated_triage() -> Agent[Any]:
    """The demo's agent graph with `process_refund` as a plain, ungated function tool."""
    func = process_refund.keel_spec.func if process_refund.keel_spec else None
    if func is None:
        raise RuntimeError("examples.support_triage.agents.process_refund wraps no function")
    plain = function_tool(func)
    billing = billing_agent.clone(
        tools=[plain if t is process_refund else t for t in billing_agent.tools]
    )
    return triage_agent.clone(
        handoffs=[handoff(billing), handoff(technical_agent), handoff(account_agent)]
    )


UNGATED_TRIAGE = _ungated_triage()
"""Module level, so keel finds its reference by identity as it does for the demo's agent."""


def allow_all(name: str, args: dict[str, Any], ctx: keel.PolicyContext) -> keel.Allow:
    """The approval policy of the gated runs: every call is approved at once."""
    return keel.Allow()


def gated_runtime(directory: Path) -> keel.AgentRuntime:
    return keel.AgentRuntime(f"sqlite:///{directory / 'gated.db'}", approval_policy=allow_all)


def ungated_runtime(directory: Path) -> keel.AgentRuntime:
    return keel.AgentRuntime(f"sqlite:///{directory / 'ungated.db'}")


# -- latency ------------------------------------------------------------------------------

Arm = Callable[[], Awaitable[str]]


async def _bare() -> str:
    result = await agents.Runner.run(triage_agent, TICKET)
    return str(result.final_output)


def _wrapped(runtime: keel.AgentRuntime, agent: Agent[Any]) -> Arm:
    async def run() -> str:
        result = await runtime.run_async(agent, TICKET)
        if result.status is not keel.Status.COMPLETED:
            raise RuntimeError(f"the wrapped demo run ended {result.status}, not COMPLETED")
        return str(result.output)

    return run


async def _interleave(arms: dict[str, Arm], *, runs: int, warmup: int) -> dict[str, Timing]:
    """Run the arms in rotating order, `warmup` unrecorded rounds first; check same outputs."""
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + runs):
        shift = i % len(names)
        outputs = set()
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            outputs.add(await arms[name]())
            elapsed = time.perf_counter() - start
            if i >= warmup:
                samples[name].append(elapsed)
        if len(outputs) != 1:
            raise RuntimeError(f"the arms answered differently: {sorted(outputs)}")
        backend.REFUNDS.clear()  # the demo backend remembers every refund
    return {name: Timing(values) for name, values in samples.items()}


def latency_rows(directory: Path, *, runs: int, warmup: int) -> list[Row]:
    """Measurement 1: wrapped vs bare p50 on the demo's ticket, all arms interleaved."""
    with gated_runtime(directory) as gated, ungated_runtime(directory) as ungated:
        arms = {
            "bare": _bare,
            "gated": _wrapped(gated, triage_agent),
            "ungated": _wrapped(ungated, UNGATED_TRIAGE),
        }
        gc.collect()
        timings = asyncio.run(_interleave(arms, runs=runs, warmup=warmup))
    bare = timings["bare"]
    return [
        timing_row(
            "demo run, wrapped (Allow policy) vs bare", timings["gated"], "bare Runner.run", bare,
            [Check(f"ratio <= {RATIO_GOAL:g}x", timings["gated"].p50 / bare.p50, RATIO_GOAL)],
        ),
        timing_row(
            "demo run, wrapped ungated variant vs bare", timings["ungated"], "bare Runner.run",
            bare,
            [Check(f"ratio <= {RATIO_GOAL:g}x", timings["ungated"].p50 / bare.p50, RATIO_GOAL)],
            note="Ungated variant: no approval policy, and process_refund as a plain "
            "function_tool, so no call writes an intent row. Baseline: the same bare runs as "
            "the row above (bare, the two graphs run the same code).",
        ),
    ]


# -- write transactions per step ------------------------------------------------------------


@dataclass
class _Transactions:
    """What each committed write transaction on an engine touched."""

    kinds: list[str] = field(default_factory=list)
    _statements: list[str] = field(default_factory=list)

    def statement(self, sql: str) -> None:
        self._statements.append(" ".join(sql.split()))

    def commit(self) -> None:
        sql = " | ".join(self._statements)
        self._statements.clear()
        if "INSERT INTO keel_executions" in sql:
            self.kinds.append("admission")
        elif "finished_at" in sql and "UPDATE keel_executions" in sql:
            self.kinds.append("completion")
        elif "keel_steps" in sql:
            self.kinds.append("step")
        else:
            self.kinds.append("other")


@contextmanager
def _classified(engine: Engine) -> Iterator[_Transactions]:
    seen = _Transactions()

    def on_statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.statement(sql)

    def on_commit(conn: Any) -> None:
        seen.commit()

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_statement)


def _count(runtime: keel.AgentRuntime, agent: Agent[Any]) -> tuple[int, list[str], int, int]:
    """(commits, their kinds, journaled steps, calls approved by a policy) for one run."""
    store = runtime.store
    with store.count_commits() as counter, _classified(store.engine) as seen:
        result = runtime.run(agent, TICKET)
    if result.status is not keel.Status.COMPLETED or counter.count != len(seen.kinds):
        raise RuntimeError(f"commit counting went wrong: {result.status}, {counter.count}")
    steps = len(store.steps(result.execution_id))
    approved = sum(a.status == "approved" for a in store.approvals(result.execution_id))
    return counter.count, seen.kinds, steps, approved


def _commit_row(name: str, runtime: keel.AgentRuntime, agent: Agent[Any], gated: bool) -> Row:
    commits, kinds, steps, approved = _count(runtime, agent)
    per_run = kinds.count("admission") + kinds.count("completion")
    per_step = commits - per_run
    ratio = per_step / steps
    allowed = (steps + approved) / steps if gated else 1.0
    label = (
        f"<= 1 txn/step + 1 per approved call ({allowed:.2f})" if gated else "<= 1 txn/step"
    )
    note = (
        f"{commits} commits in the run: admission {kinds.count('admission')}, completion "
        f"{kinds.count('completion')}, step {kinds.count('step')}, other {kinds.count('other')}; "
        f"{steps} journaled steps (model turns + tool calls); ratio = (commits - admission - "
        f"completion) / steps; all-in {commits}/{steps} = {commits / steps:.2f}."
    )
    if gated:
        note += (
            f" {approved} calls were approved by the policy; each writes an intent row (with "
            "its approval) before the tool runs, by design. With an approval_policy set, "
            "keel consults it for every call, so get_invoice is gated too, not only "
            "process_refund."
        )
    return Row(
        name=name, n=1, p50=None, p99=None, baseline=f"{steps} journaled steps",
        base_p50=None, base_p99=None, ratio=ratio, checks=[Check(label, ratio, allowed)],
        note=note,
    )


def commit_rows(directory: Path) -> list[Row]:
    """Measurement 3: write transactions per journaled step during one (warm) wrapped run."""
    with gated_runtime(directory) as gated, ungated_runtime(directory) as ungated:
        gated.run(triage_agent, TICKET)  # warm: the schema exists, references are cached
        ungated.run(UNGATED_TRIAGE, TICKET)
        return [
            _commit_row("write txns per step, ungated variant", ungated, UNGATED_TRIAGE, False),
            _commit_row("write txns per step, demo (Allow policy)", gated, triage_agent, True),
        ]
