"""The ticket-automation example: the webhook keys runs by ticket id, keel's rule lets
send_reply through only when the agent is confident, every event lands in the archive, and
`keel worker` processes can drive the runs the webhook queues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.ticket_automation import crm, review
from examples.ticket_automation.agent import RULES
from examples.ticket_automation.webhook import Archive, create_app
from fastapi.testclient import TestClient

from example_process import ROOT, run_example
from keel import AgentRuntime, Status

PASSWORD = {"id": "T-1", "customer_email": "ana@example.com",
            "body": "I forgot my password and can't log in."}
ORDER = {"id": "T-2", "customer_email": "li@example.com", "body": "Where is my order ORD-5521?"}
REFUND = {"id": "T-3", "customer_email": "li@example.com",
          "body": "I want to cancel and get a refund."}


@pytest.fixture(autouse=True)
def _empty_outbox() -> None:
    crm.OUTBOX.clear()


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, AgentRuntime, Archive]]:
    archive = Archive(tmp_path / "archive")
    with AgentRuntime(database_url, approval_policy=RULES) as runtime:
        yield TestClient(create_app(runtime, archive)), runtime, archive


def post(client: TestClient, archive: Archive, ticket: dict[str, str]) -> str:
    answer = client.post("/webhook/ticket", json=ticket)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["execution_id"])


def test_a_retried_webhook_gets_the_same_run_and_sends_one_reply(
        app: tuple[TestClient, AgentRuntime, Archive]) -> None:
    client, runtime, archive = app
    first = post(client, archive, PASSWORD)
    archive.wait("T-1")
    again = post(client, archive, PASSWORD)  # the helpdesk retries after the run finished
    archive.wait("T-1")  # the retry's follower, which finds the run settled, is done reading
    assert again == first
    assert runtime.result(first).status is Status.COMPLETED
    assert crm.sent("T-1") == ["Thanks for writing in. Reset it at https://example.com/reset; "
                               "the link is valid for 30 minutes."]


def test_send_reply_runs_only_when_the_agent_is_confident(
        app: tuple[TestClient, AgentRuntime, Archive]) -> None:
    client, runtime, archive = app
    runs = {t["id"]: post(client, archive, t) for t in (PASSWORD, ORDER, REFUND)}
    for ticket in runs:
        archive.wait(ticket)
    calls = {ticket: [(c.name, c.status) for c in runtime.result(run).tool_calls
                      if c.name.endswith("_reply")] for ticket, run in runs.items()}
    assert calls == {
        "T-1": [("send_reply", "done")],
        "T-2": [("send_reply", "rejected"), ("draft_reply", "done")],  # 0.88: told to draft
        "T-3": [("draft_reply", "done")],  # risky: drafted without trying to send
    }
    assert (crm.sent("T-2"), len(crm.drafts("T-2"))) == ([], 1)
    refused = next(c for c in runtime.result(runs["T-2"]).tool_calls if c.status == "rejected")
    assert "Confidence below 0.9" in str(refused.result)


def test_every_event_is_archived_and_reviewers_find_the_borderline_replies(
        app: tuple[TestClient, AgentRuntime, Archive]) -> None:
    client, runtime, archive = app
    runs = {t["id"]: post(client, archive, t) for t in (PASSWORD, ORDER, REFUND)}
    for ticket, run in runs.items():
        archive.wait(ticket)
        stored = [e.model_dump(mode="json") for e in runtime.result(run).events]
        assert archive.events(ticket) == stored
    borderline = review.replies(archive.directory, 0.85, 0.92)
    assert [(r.ticket, r.tool, r.confidence) for r in borderline] == [
        ("T-2", "send_reply", 0.88), ("T-2", "draft_reply", 0.88)]
    assert "Confidence below 0.9" in borderline[0].outcome


def test_the_webhook_queues_runs_for_keel_workers(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "KEEL_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "worker", "examples.ticket_automation.agent:"
         "triage_agent", "examples.ticket_automation.worker:runtime"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    archive = Archive(tmp_path / "archive")
    try:
        with AgentRuntime(database_url, workers=True) as web:
            client = TestClient(create_app(web, archive))
            run = post(client, archive, ORDER)
            assert post(client, archive, ORDER) == run
            archive.wait("T-2")
            result = web.result(run)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, log = worker.communicate(timeout=30)
    assert result.status is Status.COMPLETED, log
    # The worker applied the rule its runtime carries: the unconfident send was refused.
    assert [(c.name, c.status) for c in result.tool_calls if c.name.endswith("_reply")] == [
        ("send_reply", "rejected"), ("draft_reply", "done")]
    assert crm.OUTBOX == {}  # the tools ran in the worker, not in the web process
    assert [e["type"] for e in archive.events("T-2")][-1] == "done"


def test_the_demo_runs(tmp_path: Path, sqlite_url: str) -> None:
    run = run_example("examples.ticket_automation", tmp_path, sqlite_url)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    executions = [line.rsplit(" ", 1)[1] for line in lines if line.startswith("webhook T-1002")]
    assert len(executions) == 2 and executions[0] == executions[1]  # the retry, same run
    assert any(line.endswith("1 sent, 0 drafted, 8 events archived") for line in lines)
    assert "send_reply at 0.88: The call to send_reply was rejected" in run.stdout
