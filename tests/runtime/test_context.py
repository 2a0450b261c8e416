"""The run's context survives a restart: stored at admission, restored by replayed tools."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, RunContextWrapper, function_tool
from pydantic import BaseModel

from keel import AgentRuntime, KeelError, Status
from scripted import ScriptedModel, call, say


class Case(BaseModel):
    customer: str | None = None
    notes: list[str] = []


def _get(context: Any, key: str) -> Any:
    return context[key] if isinstance(context, dict) else getattr(context, key)


@function_tool
def identify(wrapper: RunContextWrapper[Any], customer: str) -> str:
    """Remember which customer this is."""
    if isinstance(wrapper.context, dict):
        wrapper.context["customer"] = customer
    else:
        wrapper.context.customer = customer
    return "noted"


@function_tool
def charge(wrapper: RunContextWrapper[Any], amount: int) -> str:
    """Charge the customer identified earlier."""
    return f"charged {_get(wrapper.context, 'customer')} {amount}"


def _script(agent: str, outputs: dict[str, str]) -> list[Any]:
    if "identify" not in outputs:
        return [call("identify", "i1", customer="cust_9")]
    if "charge" not in outputs:
        return [call("charge", "c1", amount=12)]
    return [say(outputs["charge"])]


cashier = Agent(name="cashier", instructions="cashier: charge", model=ScriptedModel(_script),
                tools=[identify, charge])


@pytest.mark.parametrize("context", [{}, Case()], ids=["dict", "pydantic"])
def test_context_changed_by_a_tool_is_restored_on_resume(database_url: str, context: Any) -> None:
    with AgentRuntime(database_url, require_approval=["charge"], auto_resume=False) as runtime:
        waiting = runtime.run(cashier, "charge 12", context=context)
        assert waiting.status is Status.WAITING
        runtime.handle(waiting.execution_id).approve()
    with AgentRuntime(database_url) as restarted:  # no live agent, no live context
        final = restarted.resume(waiting.execution_id)
    assert final.status is Status.COMPLETED
    assert final.output == "charged cust_9 12"


class Session:
    """A context keel cannot store (not JSON data, not a pydantic model)."""

    def __init__(self) -> None:
        self.customer: str | None = None


def test_a_context_keel_cannot_store_must_be_passed_again(database_url: str) -> None:
    with AgentRuntime(database_url, require_approval=["charge"], auto_resume=False) as runtime:
        waiting = runtime.run(cashier, "charge 12", context=Session())
        runtime.handle(waiting.execution_id).approve()
    with AgentRuntime(database_url) as restarted:
        with pytest.raises(KeelError, match="test_context.Session.*context=") as caught:
            restarted.resume(waiting.execution_id)
        assert "cannot store" in str(caught.value)
        final = restarted.resume(waiting.execution_id, context=Session())
    assert final.status is Status.COMPLETED
    assert final.output == "charged None 12"  # a fresh object: what the tool set is gone
