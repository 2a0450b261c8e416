"""Redaction covers a pipeline's stages as it covers a single agent: their inputs, options,
events, journals and outputs reach the store redacted, in every framework, and the stages
carry the pipeline's redaction; the live stages see the real values."""

from __future__ import annotations

import json
from typing import Any

import pytest

import keel
from keel import AgentRuntime, Redactor, Status
from stored import stored_bytes
from three_frameworks import SEEN, scripted_agent

EMAIL = "bob@example.com"
API_KEY = "sk-proj-4f9Qx2LmT8vR3nW7kY1bZc"
CALLS: list[dict[str, Any]] = []


def find_customer(email: str, api_key: str) -> str:
    """Find the customer's account with the CRM key."""
    CALLS.append({"find_customer": [email, api_key]})
    return f"{email}: plan pro"


def send_reply(to: str) -> str:
    """Send the reply."""
    CALLS.append({"send_reply": [to]})
    return "sent"


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    SEEN.clear()


def test_a_redacting_pipeline_stores_no_secret_of_any_stage(database_url: str) -> None:
    finder = scripted_agent("openai", [("find_customer", {"email": EMAIL, "api_key": API_KEY})],
                            [find_customer], final=f"Customer {EMAIL} is on plan pro.",
                            name="finder")
    replier = scripted_agent("langgraph", [("send_reply", {"to": EMAIL})], [send_reply],
                             final=f"Replied to {EMAIL}.", name="replier")
    closer = scripted_agent("adk", [], [], final="Closed.", name="closer")
    pipeline = keel.sequence(finder, replier, closer)
    with AgentRuntime(database_url, redact=True) as runtime:
        result = runtime.run(pipeline, f"Mail {EMAIL}, key {API_KEY}")
        assert result.status is Status.COMPLETED, result.error
        stages = [runtime.store.execution(f"{result.execution_id}.{i}") for i in range(3)]
        raw = stored_bytes(runtime)
    # The live stages saw the real input, each the one before's real output.
    assert EMAIL in SEEN[0] and API_KEY in SEEN[0]
    assert f"Customer {EMAIL} is on plan pro." in SEEN[2]
    assert CALLS == [{"find_customer": [EMAIL, API_KEY]}, {"send_reply": [EMAIL]}]
    # The store holds markers only, and each stage carries the pipeline's redaction.
    for secret in (EMAIL, API_KEY):
        assert secret.encode() not in raw, secret
    assert json.loads(stages[0].input) == "Mail [redacted:email], key [redacted:api_key]"
    assert json.loads(stages[1].input) == "Customer [redacted:email] is on plan pro."
    assert {s.redaction for s in stages} == {Redactor().spec()}


def test_a_stage_admitted_elsewhere_keeps_the_pipelines_redaction(database_url: str) -> None:
    """A pipeline resumed by a runtime that redacts nothing still redacts its new stages."""
    gated = scripted_agent("openai", [("send_reply", {"to": EMAIL})], [send_reply],
                           name="gated")
    closer = scripted_agent("adk", [], [], final=f"Closed for {EMAIL}.", name="closer")
    with AgentRuntime(database_url, redact=Redactor(kinds=["email"]),
                      require_approval=["send_reply"], auto_resume=False) as runtime:
        waiting = runtime.run(keel.agent(gated) >> closer, f"Reply to {EMAIL}")
        assert waiting.status is Status.WAITING, waiting.error
    with AgentRuntime(database_url, auto_resume=False) as other:
        other.handle(waiting.execution_id).approve()
        done = other.resume(waiting.execution_id, keel.agent(gated) >> closer)
        assert done.status is Status.COMPLETED, done.error
        last = other.store.execution(f"{waiting.execution_id}.1")
        raw = stored_bytes(other)
    assert last.redaction == Redactor(kinds=["email"]).spec()
    assert EMAIL.encode() not in raw
