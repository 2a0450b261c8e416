"""Rule-list policies: argument predicates, allow and deny lists, per-agent rules, failing
closed, and every decision naming its rule."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, function_tool

from keel import AgentRuntime, Allow, Ask, Deny, Rule, Status
from scripted import ScriptedModel, call, say

SENT: list[str] = []


@function_tool
def send_reply(text: str, confidence: float) -> str:
    """Send the reply to the customer."""
    SENT.append(text)
    return "sent"


@function_tool
def save_draft(text: str) -> str:
    """Save a draft for a human."""
    return "draft saved"


@function_tool
def process_refund(invoice_id: str, amount: float) -> str:
    """Refund an invoice."""
    return f"refunded {amount}"


def agent_calling(tool: Any, name: str = "support", **args: Any) -> Agent[Any]:
    """An agent whose model calls `tool` with `args` once, then repeats what it returned."""

    def script(agent: str, outputs: dict[str, str]) -> list[Any]:
        if tool.name not in outputs:
            return [call(tool.name, "c1", **args)]
        return [say(outputs[tool.name])]

    return Agent(name=name, instructions=f"{name}: go", model=ScriptedModel(script),
                 tools=[send_reply, save_draft, process_refund])


POLICY = [  # the first rule that matches a call decides it
    Rule("save_draft", agent="drafter"),
    Rule("*", agent="drafter", then=Deny("Drafters only draft.")),
    Rule("send_reply", when=lambda a: a["confidence"] >= 0.9,
         otherwise=Deny("Confidence below 0.9: save a draft instead.")),
    Rule("process_refund", when=lambda a: a["amount"] <= 25, then=Allow(), otherwise=Ask(),
         name="small refunds"),
    Rule("delete_*", then=Deny("Never.", stop=True)),
]


@pytest.fixture
def guarded(database_url: str) -> Any:
    SENT.clear()
    with AgentRuntime(database_url, approval_policy=POLICY, auto_resume=False) as runtime:
        yield runtime


def decision(runtime: AgentRuntime, execution_id: str) -> tuple[str, str | None]:
    [row] = runtime.store.approvals(execution_id)
    return row.status, row.rule


def test_a_confident_reply_is_sent_and_an_unsure_one_is_refused(guarded: AgentRuntime) -> None:
    sure = guarded.run(agent_calling(send_reply, text="Hi", confidence=0.95), "go")
    assert sure.output == "sent" and SENT == ["Hi"]
    assert decision(guarded, sure.execution_id) == ("approved", "rule 3 (send_reply)")
    unsure = guarded.run(agent_calling(send_reply, text="Hm", confidence=0.5), "go")
    assert SENT == ["Hi"]  # not sent; the model was told why
    assert "Confidence below 0.9: save a draft instead." in str(unsure.output)
    assert decision(guarded, unsure.execution_id) == ("rejected", "rule 3 (send_reply)")


def test_a_small_refund_runs_and_a_large_one_waits_for_a_human(guarded: AgentRuntime) -> None:
    small = guarded.run(agent_calling(process_refund, invoice_id="I-1", amount=20), "go")
    assert small.output == "refunded 20.0"
    large = guarded.run(agent_calling(process_refund, invoice_id="I-2", amount=99), "go")
    assert large.status is Status.WAITING
    assert [p.rule for p in large.pending_approvals] == ["small refunds"]


def test_arguments_a_rule_cannot_read_fail_closed(guarded: AgentRuntime) -> None:
    missing = guarded.run(agent_calling(process_refund, invoice_id="I-3"), "go")  # no amount
    assert missing.status is Status.WAITING
    [pending] = missing.pending_approvals
    assert pending.rule == "small refunds: its condition raised KeyError('amount')"


def test_a_stopping_deny_fails_the_run_without_running_the_tool(database_url: str) -> None:
    @function_tool
    def delete_account(customer: str) -> str:
        """Delete the customer's account."""
        raise AssertionError("must not run")

    deleter = Agent(name="support", instructions="support: go", tools=[delete_account],
                    model=ScriptedModel(lambda a, o: [call("delete_account", "d1",
                                                           customer="c-1")]))
    with AgentRuntime(database_url, approval_policy=POLICY) as runtime:
        result = runtime.run(deleter, "go")
        assert decision(runtime, result.execution_id) == ("rejected", "rule 5 (delete_*)")
    assert result.status is Status.FAILED
    assert result.error == "rule 5 (delete_*) denied delete_account and stopped the run: Never."


def test_rules_for_one_agent_make_an_allow_list(guarded: AgentRuntime) -> None:
    drafted = guarded.run(agent_calling(save_draft, "drafter", text="Hi"), "go")
    assert drafted.output == "draft saved"
    refused = guarded.run(agent_calling(send_reply, "drafter", text="Hi", confidence=1.0),
                          "go")
    assert SENT == [] and "Drafters only draft." in str(refused.output)
    # Another agent's calls are not on the drafter's list.
    assert guarded.run(agent_calling(save_draft, "support", text="x"), "go").output == \
        "draft saved"


def test_a_policy_list_takes_rules_only() -> None:
    with pytest.raises(TypeError, match="approval_policy lists take Rule"):
        AgentRuntime("sqlite://", approval_policy=["send_reply"])  # type: ignore[list-item]


def test_one_name_given_to_require_approval_gates_that_tool(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval="save_draft", auto_resume=False) as runtime:
        result = runtime.run(agent_calling(save_draft, text="x"), "go")
    assert result.status is Status.WAITING
    assert [(p.tool_name, p.rule) for p in result.pending_approvals] == [
        ("save_draft", "require_approval 'save_draft'")]


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"require_approval": ["save_*", 3]}, TypeError, "require_approval takes tool names"),
    ({"approval_policy": {"process_refund": "ask"}}, TypeError, "approval_policy takes a f"),
    ({"budget": {"max_steps": 3}}, TypeError, "budget= takes a keel.Budget"),
    ({"lease_seconds": 0}, ValueError, r"lease_seconds=0\): a time in seconds, more than 0"),
    ({"poll_interval": -1}, ValueError, r"poll_interval=-1\): a time in seconds"),
])
def test_settings_keel_cannot_use_are_refused_before_the_store_opens(
    tmp_path: Any, settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        AgentRuntime(f"sqlite:///{tmp_path / 'keel.db'}", **settings)
    assert not (tmp_path / "keel.db").exists()


@pytest.mark.parametrize(("rule", "message"), [
    ({"tool": "delete_*", "then": "deny"}, "then and otherwise take Allow"),
    ({"tool": "send_reply", "when": True}, r"when=...\) takes a function"),
    ({"tool": 3}, "tool and agent are globs"),
])
def test_a_rule_keel_cannot_apply_is_refused_when_written(
    rule: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Rule(**rule)
