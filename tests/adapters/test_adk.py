"""Google ADK agents run under keel: the support team with sub-agents, approvals on keel's store
from another process, gated transfers, apps, and resumes that replay the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples.support_triage import backend
from examples.support_triage.adk_agents import triage_agent
from google.adk.apps import App

from keel import AgentHandle, AgentRuntime, Status

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
ANSWER = ("I've refunded $99.00 for invoice INV-8821. You'll see it on your statement in 3-5 "
          "business days.")


@pytest.fixture(autouse=True)
def _clean_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    backend.REFUNDS.clear()
    calls = tmp_path / "model_calls.txt"
    monkeypatch.setenv("SUPPORT_MODEL_CALLS", str(calls))
    return calls


def _model_calls(tmp_path: Path) -> int:
    path = tmp_path / "model_calls.txt"
    return len(path.read_text().split()) if path.exists() else 0


def test_the_refund_waits_and_another_process_approves_and_resumes(
    runtime: AgentRuntime, database_url: str, tmp_path: Path
) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    assert waiting.status is Status.WAITING
    assert [(p.tool_name, p.args, p.agent) for p in waiting.pending_approvals] == [
        ("process_refund", {"invoice_id": "INV-8821", "reason": "Duplicate charge"},
         "billing_specialist")]
    assert backend.REFUNDS == [] and _model_calls(tmp_path) == 3
    with AgentRuntime(database_url, auto_resume=False) as other:
        AgentHandle(waiting.execution_id, runtime=other).approve(reviewer="dana")
        done = other.resume(waiting.execution_id, triage_agent)
    assert (done.status, done.output) == (Status.COMPLETED, ANSWER)
    assert _model_calls(tmp_path) == 4  # the three journaled turns were not asked again
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]
    assert [e.type for e in done.events] == [
        "tool_result", "handoff", "tool_call", "tool_result", "tool_call", "waiting",
        "approved", "resumed", "tool_result", "message", "done"]
    handoff = next(e for e in done.events if e.type == "handoff")
    assert (handoff.agent, handoff.target) == ("support_triage", "billing_specialist")


def test_a_rejected_refund_never_runs_and_the_model_hears_why(runtime: AgentRuntime) -> None:
    waiting = runtime.run(triage_agent, TICKET)
    AgentHandle(waiting.execution_id, runtime=runtime).reject("Refunds need a manager.")
    done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert "Refunds need a manager." in done.output
    assert backend.REFUNDS == []


def test_require_approval_gates_the_transfer_of_an_unmodified_agent(sqlite_url: str) -> None:
    with AgentRuntime(sqlite_url, require_approval=["transfer_to_*"]) as runtime:
        waiting = runtime.run(triage_agent, "I cannot log in, the page shows an error")
        assert [(p.tool_name, p.args) for p in waiting.pending_approvals] == [
            ("transfer_to_agent", {"agent_name": "technical_specialist"})]
        AgentHandle(waiting.execution_id, runtime=runtime).approve()
        done = runtime.resume(waiting.execution_id)
    assert done.status is Status.COMPLETED
    assert "operational" in done.output
    assert [e.target for e in done.events if e.type == "handoff"] == ["technical_specialist"]


def test_an_app_runs_with_its_own_plugins_and_keels(runtime: AgentRuntime) -> None:
    from google.adk.plugins.base_plugin import BasePlugin

    seen: list[str] = []

    class Audit(BasePlugin):
        async def before_tool_callback(self, *, tool, tool_args, tool_context):  # type: ignore[no-untyped-def]
            seen.append(tool.name)

    app = App(name="support", root_agent=triage_agent, plugins=[Audit(name="audit")])
    result = runtime.run(app, "Please check my account")
    assert (result.status, result.output) == (
        Status.COMPLETED,
        "I've reviewed your account; a specialist will follow up on your request.")
    assert seen == ["transfer_to_agent", "get_account"]  # the user's plugin still runs
    assert [c.name for c in result.tool_calls] == ["get_account"]
