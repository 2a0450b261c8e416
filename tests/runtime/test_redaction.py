"""Redaction: secrets in a run's input, a tool's arguments and a tool's result never reach the
database (its raw bytes on SQLite, every text and bytea column on PostgreSQL), the events or
an export, for agents of all three frameworks; the live run still sees them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from in_doubt import in_doubt_execution
from keel import AgentHandle, AgentRuntime, Redactor, Status
from keel.runtime._audit import export_records
from stored import stored_bytes
from three_frameworks import FRAMEWORKS, SEEN, scripted_agent

EMAIL = "alice.liddell@example.com"
API_KEY = "sk-proj-Q3xv8YtWm2LrP9sKd4HnB7cJ"
CARD = "4242 4242 4242 4242"
GITHUB_TOKEN = "ghp_Zk3Lm9Qp2Rt8Vw4Xy6Bn1Cd5Fg7Hj0Kl2Mn"
SECRETS = (EMAIL, API_KEY, CARD, GITHUB_TOKEN)
CALLS: list[dict[str, Any]] = []


def find_customer(email: str, api_key: str) -> str:
    """Find the customer's account with the CRM key."""
    CALLS.append({"find_customer": [email, api_key]})
    return f"Plan pro, card on file {CARD}."


def send_reply(to: str, text: str) -> str:
    """Send the reply."""
    CALLS.append({"send_reply": [to, text]})
    return f"Sent; the mail server's receipt token is {GITHUB_TOKEN}."


PLAN = [("find_customer", {"email": EMAIL, "api_key": API_KEY})]
TICKET = f"Hi, I am {EMAIL}. Why was I charged twice?"


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    SEEN.clear()


def assert_never_stored(runtime: AgentRuntime, execution_id: str) -> None:
    raw = stored_bytes(runtime)
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
    for kind in ("email", "api_key", "card"):
        assert f"[redacted:{kind}]".encode() in raw
    exported = json.dumps(list(export_records(runtime.store, execution_id)))
    assert not any(secret in exported for secret in SECRETS)
    assert "[redacted:api_key]" in exported


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_secrets_never_reach_the_database_and_the_live_run_sees_them(
    database_url: str, framework: str
) -> None:
    agent = scripted_agent(framework, PLAN, [find_customer], final=f"Replied to {EMAIL}.")
    with AgentRuntime(database_url, redact=True) as runtime:
        result = runtime.run(agent, TICKET)
        assert result.status is Status.COMPLETED
        # The live run: the model read the real input and the tool's real result, the tool
        # got its real arguments, and run() returns the real output.
        assert EMAIL in SEEN[0] and CARD in SEEN[-1]
        assert CALLS == [{"find_customer": [EMAIL, API_KEY]}]
        assert f"Replied to {EMAIL}." in json.dumps(result.output)
        stored_output = json.dumps(runtime.result(result.execution_id).output)
        assert "Replied to [redacted:email]." in stored_output and EMAIL not in stored_output
        # What was stored, streamed and exported: markers.
        (call,) = result.tool_calls
        assert call.args == {"email": "[redacted:email]", "api_key": "[redacted:api_key]"}
        assert "[redacted:card]" in json.dumps(call.result)
        assert result.events == runtime.store.events(result.execution_id)
        assert_never_stored(runtime, result.execution_id)
    if runtime.store.is_sqlite:  # and once the write-ahead log is folded into the database
        assert not Path(runtime.store.url.split(":///", 1)[1] + "-wal").exists()
        with AgentRuntime(database_url) as reopened:
            assert_never_stored(reopened, result.execution_id)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_resume_elsewhere_replays_markers_and_keeps_redacting(
    database_url: str, framework: str
) -> None:
    plan = [*PLAN, ("send_reply", {"to": EMAIL, "text": "Refund on its way."})]
    agent = scripted_agent(framework, plan, [find_customer, send_reply])
    with AgentRuntime(database_url, redact=True, require_approval=["send_reply"],
                      auto_resume=False) as runtime:
        waiting = runtime.run(agent, TICKET)
    assert waiting.status is Status.WAITING
    (pending,) = waiting.pending_approvals
    assert pending.args == {"to": "[redacted:email]", "text": "Refund on its way."}
    # Another process, whose runtime redacts nothing itself: the execution's patterns travel.
    with AgentRuntime(database_url, auto_resume=False) as other:
        AgentHandle(waiting.execution_id, runtime=other).approve(
            reviewer="dana", reason=f"Checked with {EMAIL}")
        done = other.resume(waiting.execution_id, agent)
        assert done.status is Status.COMPLETED
        # The journaled call returned its journaled result and did not run again; the call
        # that ran only now was made from the stored, redacted turn: it got the marker.
        assert CALLS == [{"find_customer": [EMAIL, API_KEY]},
                         {"send_reply": ["[redacted:email]", "Refund on its way."]}]
        approved = next(e for e in done.events if e.type == "approved")
        assert approved.reason == "Checked with [redacted:email]"
        assert_never_stored(other, waiting.execution_id)


def test_what_an_operator_records_in_any_process_is_redacted(database_url: str) -> None:
    execution_id = in_doubt_execution(database_url, redact=True)
    # The operator's process (the CLI's, say) redacts nothing of its own accord.
    with AgentRuntime(database_url, auto_resume=False) as operator:
        operator.handle(execution_id).resolve(
            "record", result={"receipt": GITHUB_TOKEN}, reason=f"confirmed with {EMAIL}",
            reviewer="dana")
        raw = stored_bytes(operator)
        step = operator.store.step(execution_id, "tool:w1")
    assert GITHUB_TOKEN.encode() not in raw and EMAIL.encode() not in raw
    assert step is not None and json.loads(str(step.payload))["result"] == {
        "receipt": "[redacted:api_key]"}


def test_a_hook_and_patterns_of_your_own(database_url: str) -> None:
    def initials_only(text: str) -> str:
        return text.replace("Alice Liddell", "A. L.")

    redactor = Redactor(kinds=["api_key"], patterns={"ticket": r"TKT-\d{4}"},
                        hook=initials_only)
    agent = scripted_agent("openai", PLAN, [find_customer])
    with AgentRuntime(database_url, redact=redactor) as runtime:
        result = runtime.run(agent, "Alice Liddell about TKT-1234")
        stored = runtime.store.execution(result.execution_id)
    assert json.loads(stored.input) == "A. L. about [redacted:ticket]"
    (call,) = result.tool_calls
    assert call.args == {"email": EMAIL, "api_key": "[redacted:api_key]"}  # e-mails kept


def test_identifiers_keel_finds_a_conversation_by_are_kept(database_url: str) -> None:
    agent = scripted_agent("adk", [], [])
    with AgentRuntime(database_url, redact=True) as runtime:
        first = runtime.run(agent, f"I am {EMAIL}", user_id=EMAIL, session_id="chat-1")
        second = runtime.run(agent, "and again", user_id=EMAIL, session_id="chat-1")
        stored = json.loads(runtime.store.execution(second.execution_id).options)
    assert (first.status, second.status) == (Status.COMPLETED, Status.COMPLETED)
    assert stored["user_id"] == EMAIL  # the key of the session, not data in it
    assert "[redacted:email]" in SEEN[-1]  # the session the second run continued, as stored


# -- the redactor itself ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "redacted"), [
    (f"write to {EMAIL}.", "write to [redacted:email]."),
    (f"key {API_KEY}", "key [redacted:api_key]"),
    ("sk_live_51HxYzAbCdEfGhIjKlMn and rk_test_4eC39HqLyjWDarjtT1zdp7dc",
     "[redacted:api_key] and [redacted:api_key]"),
    (f"gh {GITHUB_TOKEN}", "gh [redacted:api_key]"),
    ("slack xoxb-123456789012-abcdefABCDEF", "slack [redacted:api_key]"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws [redacted:api_key]"),
    ("Authorization: Bearer 9f8e7d6c5b4a39281706abcd", "Authorization: Bearer [redacted:token]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
     "jwt [redacted:token]"),
    (f"card {CARD}, amex 3782-822463-10005", "card [redacted:card], amex [redacted:card]"),
    ("visa 4111111111111111.", "visa [redacted:card]."),
])
def test_the_built_in_kinds(text: str, redacted: str) -> None:
    assert Redactor().redact(text) == redacted


@pytest.mark.parametrize("text", [
    "order 4111111111111112",  # fails the Luhn check
    "sent at 1718000000000 ms",  # a timestamp, no card network's range
    "id 41111111-1111-1111-1111-111111111111",  # part of a UUID
    "version 00000000000000000000000000000002.0.4111111111111111",  # part of a version
    "call_4111111111111111",  # part of an identifier
    "the bearer of bad news",
])
def test_what_is_not_a_secret_stays(text: str) -> None:
    assert Redactor().redact(text) == text


def test_json_in_a_string_stays_json_and_data_is_copied_not_changed() -> None:
    arguments = json.dumps({"card": 4242424242424242, "to": EMAIL, "n": 3})
    redacted = Redactor().redact_value(arguments)
    assert json.loads(redacted) == {"card": "[redacted:card]", "to": "[redacted:email]", "n": 3}

    class Message(BaseModel):
        content: str

    @dataclasses.dataclass(frozen=True)
    class Envelope:
        messages: list[Message]
        keys: tuple[str, ...]

    live = Envelope([Message(content=f"mail {EMAIL}")], (API_KEY, "plain"))
    copy = Redactor().redact_value(live)
    assert copy == Envelope([Message(content="mail [redacted:email]")],
                            ("[redacted:api_key]", "plain"))
    assert live.messages[0].content == f"mail {EMAIL}" and live.keys[0] == API_KEY
    unchanged = {"a": ["b", 1]}
    assert Redactor().redact_value(unchanged) is unchanged


def test_a_hook_that_fails_redacts_the_whole_text() -> None:
    def broken(text: str) -> str:
        raise RuntimeError("oops")

    assert Redactor(hook=broken).redact("anything") == "[redacted:hook_error]"


def test_a_bad_configuration_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="built-in ones are"):
        Redactor(kinds=["phone"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        Redactor(patterns={"broken": "("})
    with pytest.raises(TypeError, match="redact= takes"):
        AgentRuntime("sqlite://", redact="yes")  # type: ignore[arg-type]
