"""Crash recovery of a LangGraph graph with real processes: SIGKILL, then resume elsewhere.

The same harness as tests/test_crash_recovery.py (child processes, fsynced ledgers), with the
support swarm graph of tests/programs/crash_graph.py. Besides the model and the tools, kill
points sit at keel's checkpoint saver: after a step's writes, before its checkpoint, where
LangGraph itself cannot tell that the run is unfinished; keel's own status says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from keel import Status
from test_crash_recovery import Child, Workspace

GRAPH = "crash_graph:triage_graph"
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
BOTH_TOOLS = ("get_invoice", "process_refund")
# keel's journal for a graph: its tool calls, in order (call ids come from the scripted model).
HANDOFF, INVOICE, REFUND = ("tool:transfer_to_billing_specialist", "tool:get_invoice",
                            "tool:process_refund")


@dataclass(frozen=True)
class KillPoint:
    at: str
    journaled: tuple[str, ...]
    crashed_model_calls: int
    crashed_tools: tuple[str, ...]
    resumed_model_calls: int
    resumed_tools: tuple[str, ...]


KILL_POINTS = {
    "first-model-call-answered-not-checkpointed": KillPoint(
        "model:1:after", journaled=(), crashed_model_calls=1, crashed_tools=(),
        resumed_model_calls=4, resumed_tools=BOTH_TOOLS),
    "inside-the-refund-after-its-effect": KillPoint(
        "tool:process_refund:after_effect", journaled=(HANDOFF, INVOICE),
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=("process_refund",)),
    # The refund's result is journaled and its step's writes are saved, but not the
    # checkpoint that closes the step: the subgraph resumes from the step before.
    "after-the-refund-step-wrote-before-its-checkpoint": KillPoint(
        "saver:put:12", journaled=(HANDOFF, INVOICE, REFUND),
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=()),
    # Every agent has finished; only the root's last checkpoint is missing. LangGraph's state
    # alone cannot tell this run from one that never started its last step.
    "after-the-last-step-wrote-before-the-final-checkpoint": KillPoint(
        "saver:put:14", journaled=(HANDOFF, INVOICE, REFUND),
        crashed_model_calls=4, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=0, resumed_tools=()),
}


@dataclass(frozen=True)
class Recovery:
    ws: Workspace
    execution_id: str
    crashed: Child
    resumed: Child


def _workspace(factory: pytest.TempPathFactory, name: str) -> Workspace:
    root = factory.mktemp(name)
    return Workspace(root, f"sqlite:///{root}/keel.db")


def _crash_and_resume(ws: Workspace, point: KillPoint) -> Recovery:
    crashed = ws.start(GRAPH, "crash", killed=True, KEEL_TEST_KILL_AT=point.at)
    execution_id = ws.execution_for("crash")
    assert ws.status(execution_id) == Status.RUNNING.value, str(crashed)
    journal = ws.journal(execution_id).get("done", [])
    assert journal == sorted(point.journaled), f"{journal}\n{crashed}"
    return Recovery(ws, execution_id, crashed, ws.resume(execution_id))


@dataclass
class Runs:
    reference: Future[Child]
    recoveries: dict[str, Future[Recovery]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference_ws = _workspace(tmp_path_factory, "reference")
        yield Runs(
            reference=pool.submit(reference_ws.start, GRAPH, "reference"),
            recoveries={name: pool.submit(_crash_and_resume, _workspace(tmp_path_factory, name),
                                          point) for name, point in KILL_POINTS.items()},
        )
        pool.shutdown(cancel_futures=True)


def _last_message(child: Child) -> str:
    return str(child.outcome["output"]["messages"][-1]["content"])


def test_the_reference_run_completes(runs: Runs) -> None:
    reference = runs.reference.result()
    assert reference.outcome["status"] == Status.COMPLETED.value, str(reference)
    assert "refunded $99.00" in _last_message(reference)


@pytest.mark.parametrize("name", KILL_POINTS)
def test_sigkill_then_resume_in_a_new_process_finishes_like_the_reference(
    runs: Runs, name: str
) -> None:
    point, recovery = KILL_POINTS[name], runs.recoveries[name].result()
    ws, crashed, resumed = recovery.ws, recovery.crashed, recovery.resumed
    report = f"{crashed}\n{resumed}"
    reference = runs.reference.result()
    assert resumed.outcome["status"] == Status.COMPLETED.value, report
    assert resumed.outcome["output"]["messages"][-1]["content"] == _last_message(reference)
    assert ws.model_calls() == Counter({crashed.pid: point.crashed_model_calls,
                                        resumed.pid: point.resumed_model_calls}), report
    assert [r["tool"] for r in ws.tool_runs(crashed.pid)] == list(point.crashed_tools), report
    assert [r["tool"] for r in ws.tool_runs(resumed.pid)] == list(point.resumed_tools), report
    # Every refund, in either process, carried the same idempotency key.
    refunds = ws.refunds()
    assert len(refunds) == (point.crashed_tools + point.resumed_tools).count(
        "process_refund"), refunds
    assert len({r["idempotency_key"] for r in refunds}) == 1, refunds
    result = ws.result(recovery.execution_id)
    assert [e.type for e in result.events].count("done") == 1

