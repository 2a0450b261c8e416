"""Crash recovery of a pipeline with real processes: SIGKILL mid-pipeline, then resume in a new
process; approvals of a stage's call decided from other processes.

The harness is tests/test_crash_recovery.py's (child processes running run_support.py), with
the cross-framework support pipeline of tests/programs/crash_pipeline.py: an OpenAI Agents SDK
classifier, a LangGraph responder (it checks the service status, then drafts), an ADK
escalation checker (it files an internal note, then decides). Its models and tools write one
fsynced line per call to the ledger, with the process id.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from examples.support_pipeline.cross_framework import TICKET
from examples.support_pipeline.cross_framework import pipeline as example_pipeline

from keel import AgentHandle, AgentResult, AgentRuntime, Status
from test_crash_recovery import Child, Workspace, wait_until

PIPELINE, GATED, UNSAFE = ("crash_pipeline:pipeline", "crash_pipeline:gated_pipeline",
                           "crash_pipeline:unsafe_pipeline")
STAGES = ("classifier", "responder", "escalation_checker")


class PipelineWorkspace(Workspace):
    """A store and the ledger of what the pipeline's models and tools did, per process."""

    def __init__(self, root: Path, url: str) -> None:
        super().__init__(root, url)
        self.ledger = root / "pipeline.jsonl"

    def run_pipeline(self, program: str, key: str, *, killed: bool = False,
                     **env: str) -> Child:
        return self.run("start", self.url, program, TICKET, key, killed=killed,
                        PIPELINE_LEDGER=str(self.ledger), **env)

    def resume_pipeline(self, execution_id: str) -> Child:
        return self.run("resume", self.url, execution_id, PIPELINE_LEDGER=str(self.ledger))

    def model_calls(self, pid: int) -> Counter[str]:  # type: ignore[override]
        return Counter(line["stage"] for line in self._lines(pid) if line["what"] == "model")

    def tools(self, pid: int) -> list[str]:
        return [line["name"] for line in self._lines(pid) if line["what"] == "tool"]

    def _lines(self, pid: int) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        lines = [json.loads(line) for line in self.ledger.read_text().splitlines()]
        return [line for line in lines if line["pid"] == pid]

    def statuses(self, execution_id: str) -> list[str]:
        """The pipeline's status, then its stages' (those that started), in order."""
        with AgentRuntime(self.url, auto_resume=False) as runtime:
            rows = runtime.store.executions(limit=100)
        stages = sorted((r for r in rows if r.parent_id == execution_id), key=lambda r: r.id)
        assert all(r.agent_name == name for r, name in zip(stages, STAGES, strict=False))
        return [next(r.status for r in rows if r.id == execution_id),
                *(r.status for r in stages)]


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> PipelineWorkspace:
    return PipelineWorkspace(tmp_path, database_url)


def milestones(execution_id: str, ws: Workspace) -> list[tuple[str, str | None, Any]]:
    """The pipeline's events that a crash must neither lose nor repeat."""
    return [(e.type, e.agent, getattr(e, "target", None) or getattr(e, "tool_name", None))
            for e in ws.result(execution_id).events
            if e.type in ("handoff", "tool_call", "tool_result", "message", "done")]


def reference_run(ws: Workspace) -> AgentResult:
    """The example's pipeline (the crash pipeline without its kill points), run here."""
    with AgentRuntime(ws.url) as runtime:
        return runtime.run(example_pipeline, TICKET)


def test_killed_inside_the_second_stage_resumes_there_in_a_new_process(
    ws: PipelineWorkspace
) -> None:
    reference = reference_run(ws)
    # The responder checked the service status (journaled) and dies entering its second
    # model call; the classifier's stage had completed.
    crashed = ws.run_pipeline(PIPELINE, "crash", killed=True,
                              KEEL_TEST_KILL_AT="responder:model:2:before")
    execution_id = ws.execution_for("crash")
    assert ws.statuses(execution_id) == ["RUNNING", "COMPLETED", "RUNNING"], str(crashed)
    assert ws.model_calls(crashed.pid) == Counter(classifier=1, responder=1)

    resumed = ws.resume_pipeline(execution_id)
    report = f"{crashed}\n{resumed}"
    assert resumed.outcome["status"] == Status.COMPLETED.value, report
    assert resumed.outcome["output"] == reference.output, report
    assert resumed.outcome["agent_modules_preloaded"] == [], report  # found by reference
    # The classifier is not asked again; the responder goes on from its own journal (its
    # status check is not run again, its cut-off turn is); the last stage runs.
    assert ws.model_calls(resumed.pid) == Counter(responder=1, escalation_checker=2), report
    assert ws.tools(resumed.pid) == ["add_internal_note"], report
    assert ws.statuses(execution_id) == ["COMPLETED"] * 4
    # The stages' events reached the pipeline once each, as in the uninterrupted run.
    assert milestones(execution_id, ws) == milestones(reference.execution_id, ws)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_killed_between_stages_runs_none_of_the_finished_ones_again(
    ws: PipelineWorkspace
) -> None:
    # SQLite only, to save ~10 s: the kill inside a stage (above) runs on both stores.
    crashed = ws.run_pipeline(PIPELINE, "crash", killed=True,
                              KEEL_TEST_KILL_AT="escalation_checker:model:1:before")
    execution_id = ws.execution_for("crash")
    assert ws.statuses(execution_id) == ["RUNNING", "COMPLETED", "COMPLETED", "RUNNING"]

    resumed = ws.resume_pipeline(execution_id)
    assert resumed.outcome["status"] == Status.COMPLETED.value, f"{crashed}\n{resumed}"
    assert "Escalate: yes" in resumed.outcome["output"]
    assert ws.model_calls(resumed.pid) == Counter(escalation_checker=2)
    assert ws.tools(resumed.pid) == ["add_internal_note"]
    types = [e.type for e in ws.result(execution_id).events]
    assert types.count("handoff") == 2 and types.count("done") == 1, types


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_stage_approval_decided_in_another_process_then_resumed_in_a_third(
    ws: PipelineWorkspace
) -> None:
    # SQLite only, to save ~10 s: on PostgreSQL the worker test below decides a stage's call
    # in one process and a worker in another goes on with the pipeline.
    waited = ws.run_pipeline(GATED, "gated")
    execution_id = waited.outcome["execution_id"]
    assert waited.outcome["status"] == Status.WAITING.value, str(waited)
    assert ws.statuses(execution_id) == ["WAITING", "COMPLETED", "COMPLETED", "WAITING"]
    (pending,) = ws.result(execution_id).pending_approvals
    assert (pending.tool_name, pending.agent) == ("add_internal_note", "escalation_checker")
    assert ws.tools(waited.pid) == ["check_service_status"]  # the note waits

    approver = ws.decide("approve", execution_id, "dana")  # the pipeline's id, not the stage's
    assert approver.outcome == {"ok": True, "decided": [pending.call_id]}, str(approver)
    assert ws.statuses(execution_id)[0] == Status.QUEUED.value

    resumed = ws.resume_pipeline(execution_id)
    assert resumed.outcome["status"] == Status.COMPLETED.value, f"{waited}\n{resumed}"
    assert ws.model_calls(resumed.pid) == Counter(escalation_checker=1)
    assert ws.tools(resumed.pid) == ["add_internal_note"]
    events = ws.result(execution_id).events
    (approved,) = [e for e in events if e.type == "approved"]
    assert approved.reviewer == "dana" and approved.agent == "escalation_checker"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unsafe_stage_tool_cut_off_leaves_the_pipeline_in_doubt_until_resolved(
    ws: PipelineWorkspace
) -> None:
    # SQLite only, to save ~10 s: resolving runs on both stores in tests/test_in_doubt.py.
    crashed = ws.run_pipeline(UNSAFE, "unsafe", killed=True,
                              KEEL_TEST_KILL_AT="add_internal_note:after_effect")
    execution_id = ws.execution_for("unsafe")
    in_doubt = ws.resume_pipeline(execution_id)
    assert in_doubt.outcome["status"] == Status.IN_DOUBT.value, f"{crashed}\n{in_doubt}"
    assert ws.statuses(execution_id) == ["IN_DOUBT", "COMPLETED", "COMPLETED", "IN_DOUBT"]
    assert ws.tools(in_doubt.pid) == []  # not run a second time

    with AgentRuntime(ws.url, auto_resume=False) as runtime:
        resolved = AgentHandle(execution_id, runtime=runtime).resolve(
            "record", result={"status": "noted"}, reviewer="dana")
    assert resolved == ["call_note"]
    assert ws.statuses(execution_id)[0] == Status.QUEUED.value
    finished = ws.resume_pipeline(execution_id)
    assert finished.outcome["status"] == Status.COMPLETED.value, str(finished)
    assert ws.tools(finished.pid) == []
    assert ws.tools(crashed.pid) == ["check_service_status", "add_internal_note"]


def test_a_worker_runs_a_queued_pipeline_and_goes_on_once_its_stage_is_approved(
    ws: PipelineWorkspace
) -> None:
    log = ws.root / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "keel.cli", "worker", GATED, "--db", ws.url],
            cwd=ws.root, env=ws._env({"PIPELINE_LEDGER": str(ws.ledger)}), text=True,
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "serving" in log.read_text(), "the worker is ready", worker)
        queued = ws.run("enqueue", ws.url, GATED, TICKET, "queued")
        execution_id = queued.outcome["execution_id"]
        # Queued, or already claimed by the live worker by the time the status is read.
        assert queued.outcome["status"] in (Status.QUEUED.value, Status.RUNNING.value), \
            str(queued)
        wait_until(lambda: ws.status(execution_id) == Status.WAITING.value,
                   "the worker ran the pipeline to the note's approval", worker)
        with AgentRuntime(ws.url, auto_resume=False) as runtime:
            AgentHandle(execution_id, runtime=runtime).approve(reviewer="dana")
        wait_until(lambda: ws.status(execution_id) == Status.COMPLETED.value,
                   "the worker finished the approved pipeline", worker)
    finally:
        worker.terminate()
        worker.wait(30)
    assert "Escalate: yes" in ws.result(execution_id).output, log.read_text()
    assert ws.model_calls(worker.pid) == Counter(classifier=1, responder=2,
                                                 escalation_checker=2)
    assert ws.tools(worker.pid) == ["check_service_status", "add_internal_note"]
