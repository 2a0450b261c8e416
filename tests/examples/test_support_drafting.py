"""The draft-never-send example: keel's allow-list refuses the agent's send_email (it drafts
instead), a budget stops a ticket that leads the model in circles, and what customers paste
into tickets (a card number, an e-mail address, an API key) never reaches the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.support_drafting import helpdesk
from examples.support_drafting.graph import drafting_agent
from examples.support_drafting.guardrails import drafting_runtime

from example_process import run_example
from keel import AgentResult, AgentRuntime, Status
from stored import stored_bytes

PASTED = ("4111 1111 1111 1111", "dana.reyes@example.com", "sk-live-9fQ2xLmT8vR3nW7kY1bZc4Hd")


@pytest.fixture
def runtime(database_url: str) -> Iterator[AgentRuntime]:
    helpdesk.DRAFTS.clear()
    helpdesk.SENT.clear()
    with drafting_runtime(database_url) as runtime:
        yield runtime


def draft(runtime: AgentRuntime, ticket: str) -> AgentResult:
    return runtime.run(drafting_agent, f"Draft a reply to ticket {ticket}.")


def test_the_agent_drafts_with_sources_and_its_send_is_refused(runtime: AgentRuntime) -> None:
    result = draft(runtime, "T-3302")  # "Please just send me the fix right away."
    assert result.status is Status.COMPLETED
    calls = [(c.name, c.status) for c in result.tool_calls]
    assert calls == [("get_ticket", "done"), ("get_customer", "done"),
                     ("search_help_center", "done"), ("send_email", "rejected"),
                     ("save_draft", "done")]
    assert helpdesk.SENT == []
    assert helpdesk.DRAFTS["T-3302"]["sources"] == ["KB-31"]
    refusal = next(c for c in result.tool_calls if c.status == "rejected")
    assert "Drafts only: a human reviews and sends every reply" in str(refusal.result)


def test_a_ticket_that_leads_the_model_in_circles_is_stopped_by_the_budget(
        runtime: AgentRuntime) -> None:
    result = draft(runtime, "T-3303")  # "search every article you have, one by one"
    assert result.status is Status.FAILED
    stop = result.budget_exceeded
    assert (stop.budget, stop.limit, stop.used) == ("max_tool_calls", 8, 8)
    searches = [c for c in result.tool_calls if c.name == "search_help_center"]
    assert [c.status for c in searches] == ["done"] * 6 + ["not_run"]  # the 9th never ran
    assert "T-3303" not in helpdesk.DRAFTS


def test_what_customers_paste_into_tickets_never_reaches_the_store(
        runtime: AgentRuntime) -> None:
    for ticket in ("T-3301", "T-3302"):
        assert draft(runtime, ticket).status is Status.COMPLETED
    raw = stored_bytes(runtime)
    for pasted in PASTED:
        assert pasted.encode() not in raw, pasted
    for kind in ("card", "email", "api_key"):
        assert f"[redacted:{kind}]".encode() in raw
    assert b"Duplicate charges are refunded" in raw  # the rest is stored as it was


def test_the_demo_runs(tmp_path: Path, sqlite_url: str) -> None:
    run = run_example("examples.support_drafting", tmp_path, sqlite_url)
    assert run.returncode == 0, run.stderr
    assert "T-3302: COMPLETED" in run.stdout and "send_email [rejected]" in run.stdout
    assert "stopped by max_tool_calls (8 of 8)" in run.stdout
    assert "Sent by the agent: 0 e-mails" in run.stdout
    assert "on my card [redacted:card]. Write to me at [redacted:email]." in run.stdout
