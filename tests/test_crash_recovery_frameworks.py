"""Crash recovery of LangGraph graphs and Google ADK agents with real processes: SIGKILL, then
resume in a new process.

The same harness as tests/test_crash_recovery.py (child processes, fsynced ledgers), with the
support team of tests/programs/crash_graph.py (a LangGraph swarm) and crash_adk.py (ADK agents
with a sub-agent). For the graph, kill points also sit at keel's checkpoint saver: after a
step's writes, before its checkpoint, where LangGraph itself cannot tell that the run is
unfinished; keel's own status says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from keel import Status
from test_crash_recovery import Child, Recovery, Workspace

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
BOTH_TOOLS = ("get_invoice", "process_refund")
# The journal's steps (kind:name), from the scripted model's call names. Model calls are
# journaled in both frameworks (a graph's as their token usage, with the run's next write).
GRAPH_HANDOFF, INVOICE, REFUND = (
    "tool:transfer_to_billing_specialist", "tool:get_invoice", "tool:process_refund")
ADK_HANDOFF, TRIAGE, BILLING = (
    "tool:transfer_to_agent", "model:support_triage", "model:billing_specialist")
# ADK agents' starts are journaled too (with the run's next write, before the model call).
TRIAGE_STARTS, BILLING_STARTS = "agent:support_triage", "agent:billing_specialist"


@dataclass(frozen=True)
class KillPoint:
    program: str
    at: str
    journaled: tuple[str, ...]
    crashed_model_calls: int
    crashed_tools: tuple[str, ...]
    resumed_model_calls: int
    resumed_tools: tuple[str, ...]


GRAPH, ADK = "crash_graph:triage_graph", "crash_adk:triage_agent"
KILL_POINTS = {
    "graph-first-model-call-answered-not-checkpointed": KillPoint(
        GRAPH, "model:1:after", journaled=(), crashed_model_calls=1, crashed_tools=(),
        resumed_model_calls=4, resumed_tools=BOTH_TOOLS),
    "graph-inside-the-refund-after-its-effect": KillPoint(
        GRAPH, "tool:process_refund:after_effect",
        journaled=(TRIAGE, GRAPH_HANDOFF, BILLING, INVOICE, BILLING),
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=("process_refund",)),
    # The refund's result is journaled and its step's writes are saved, but not the
    # checkpoint that closes the step: the subgraph resumes from the step before.
    "graph-after-the-refund-step-wrote-before-its-checkpoint": KillPoint(
        GRAPH, "saver:put:12",
        journaled=(TRIAGE, GRAPH_HANDOFF, BILLING, INVOICE, BILLING, REFUND),
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=()),
    # Every agent has finished; only the root's last checkpoint is missing. LangGraph's state
    # alone cannot tell this run from one that never started its last step.
    "graph-after-the-last-step-wrote-before-the-final-checkpoint": KillPoint(
        GRAPH, "saver:put:14",
        journaled=(TRIAGE, GRAPH_HANDOFF, BILLING, INVOICE, BILLING, REFUND, BILLING),
        crashed_model_calls=4, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=0, resumed_tools=()),
    "adk-first-model-answer-not-journaled": KillPoint(
        ADK, "model:1:answered", journaled=(TRIAGE_STARTS,), crashed_model_calls=1,
        crashed_tools=(),
        resumed_model_calls=4, resumed_tools=BOTH_TOOLS),
    "adk-inside-the-refund-after-its-effect": KillPoint(
        ADK, "tool:process_refund:after_effect",
        journaled=(TRIAGE_STARTS, TRIAGE, ADK_HANDOFF, BILLING_STARTS, BILLING, INVOICE,
                   BILLING),
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=("process_refund",)),
    "adk-refund-journaled-before-the-last-model-call": KillPoint(
        ADK, "model:4:before", journaled=(TRIAGE_STARTS, TRIAGE, ADK_HANDOFF, BILLING_STARTS,
                                          BILLING, INVOICE, BILLING, REFUND),
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=()),
}


# On PostgreSQL, the kill point between the writes of keel's LangGraph checkpoint saver, the
# one part of these runs that only this suite stores. All of them there as well would add
# ~50 s to the suite (each child process imports LangGraph or ADK afresh); an ADK run resumes
# from a PostgreSQL journal in tests/adapters/test_adk.py, and what a SIGKILL leaves in such
# a store is checked in tests/test_crash_recovery.py.
ON_POSTGRES = ("graph-after-the-refund-step-wrote-before-its-checkpoint",)


def _workspace(factory: pytest.TempPathFactory, name: str, url: str | None = None) -> Workspace:
    root = factory.mktemp(name)
    return Workspace(root, url or f"sqlite:///{root}/keel.db")


def _crash_and_resume(ws: Workspace, point: KillPoint) -> Recovery:
    crashed = ws.start(point.program, "crash", killed=True, KEEL_TEST_KILL_AT=point.at)
    execution_id = ws.execution_for("crash")
    assert ws.status(execution_id) == Status.RUNNING.value, str(crashed)
    journal = ws.journal(execution_id).get("done", [])
    assert journal == sorted(point.journaled), f"{journal}\n{crashed}"
    return Recovery(ws, execution_id, crashed, ws.resume(execution_id))


@dataclass
class Runs:
    references: dict[str, Future[Child]]
    recoveries: dict[str, Future[Recovery]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield Runs(
            references={program: pool.submit(
                _workspace(tmp_path_factory, "reference").start, program, "reference")
                for program in (GRAPH, ADK)},
            recoveries={name: pool.submit(_crash_and_resume, _workspace(tmp_path_factory, name),
                                          point) for name, point in KILL_POINTS.items()},
        )
        pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def postgres_recoveries(
    tmp_path_factory: pytest.TempPathFactory, new_postgres_url: Callable[[], str]
) -> Iterator[dict[str, Future[Recovery]]]:
    workspaces = {name: _workspace(tmp_path_factory, name, new_postgres_url())
                  for name in ON_POSTGRES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {name: pool.submit(_crash_and_resume, ws, KILL_POINTS[name])
               for name, ws in workspaces.items()}
        pool.shutdown(cancel_futures=True)


def _answer(output: Any) -> str:
    """The final answer: a graph's output is its state, an ADK agent's the answer itself."""
    return str(output["messages"][-1]["content"]) if isinstance(output, dict) else str(output)


@pytest.mark.parametrize("program", [GRAPH, ADK])
def test_the_reference_run_completes(runs: Runs, program: str) -> None:
    reference = runs.references[program].result()
    assert reference.outcome["status"] == Status.COMPLETED.value, str(reference)
    assert "refunded $99.00" in _answer(reference.outcome["output"])


@pytest.mark.parametrize("name", KILL_POINTS)
def test_sigkill_then_resume_in_a_new_process_finishes_like_the_reference(
    runs: Runs, name: str
) -> None:
    _assert_finishes_like_the_reference(runs, name, runs.recoveries[name].result())


@pytest.mark.postgres
@pytest.mark.parametrize("name", ON_POSTGRES)
def test_on_postgresql_sigkill_then_resume_in_a_new_process_finishes_like_the_reference(
    runs: Runs, postgres_recoveries: dict[str, Future[Recovery]], name: str
) -> None:
    # Held to the reference runs on SQLite: the answer does not depend on the store.
    _assert_finishes_like_the_reference(runs, name, postgres_recoveries[name].result())


def _assert_finishes_like_the_reference(runs: Runs, name: str, recovery: Recovery) -> None:
    point = KILL_POINTS[name]
    ws, crashed, resumed = recovery.ws, recovery.crashed, recovery.resumed
    report = f"{crashed}\n{resumed}"
    reference = runs.references[point.program].result()
    assert resumed.outcome["status"] == Status.COMPLETED.value, report
    assert _answer(resumed.outcome["output"]) == _answer(reference.outcome["output"])
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
