"""keel wraps an agent graph once and reuses the copy, until the user changes the graph."""

from __future__ import annotations

from typing import Any

from agents import Agent, function_tool
from agents.models.interface import Model

from keel import AgentRuntime
from scripted import call, say


class ToolAwareModel(Model):
    """Calls `extra` when the agent has it; answers with the first line of its instructions."""

    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any,
                           tools: Any, *args: Any, **kwargs: Any) -> Any:
        from agents import ModelResponse, Usage

        answered = isinstance(input, list) and any(
            isinstance(i, dict) and i.get("type") == "function_call_output" for i in input)
        if "extra" in {t.name for t in tools} and not answered:
            output = [call("extra", "x1")]
        else:
            output = [say(f"{system_instructions.splitlines()[0]} | answered={answered}")]
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
        yield


@function_tool
def extra() -> str:
    """An extra tool."""
    return "extra ran"


def test_changes_to_the_agent_reach_the_next_run(database_url: str) -> None:
    agent = Agent(name="a", instructions="first", model=ToolAwareModel())
    with AgentRuntime(database_url) as runtime:
        assert runtime.run(agent, "hi").output == "first | answered=False"
        assert runtime.run(agent, "hi").output == "first | answered=False"  # reused copy
        agent.instructions = "second"
        assert runtime.run(agent, "hi").output == "second | answered=False"
        agent.tools.append(extra)
        result = runtime.run(agent, "hi")
    assert result.output == "second | answered=True"
    assert [(c.name, c.result) for c in result.tool_calls] == [("extra", "extra ran")]
    assert agent.tools == [extra]  # the user's agent holds the user's tool, not keel's copy


def test_runtimes_with_different_rules_do_not_share_a_copy(database_url: str) -> None:
    agent = Agent(name="a", instructions="first", model=ToolAwareModel(), tools=[extra])
    with AgentRuntime(database_url) as plain:
        assert plain.run(agent, "hi").status.value == "COMPLETED"
    with AgentRuntime(database_url, require_approval=["extra"]) as gated:
        assert gated.run(agent, "hi").status.value == "WAITING"
