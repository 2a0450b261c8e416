"""An ADK ParallelAgent whose branches ask for approval: ADK runs the branches in a TaskGroup,
so a pause reaches keel inside an exception group, and the run must wait, not fail."""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent, ParallelAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.function_tool import FunctionTool
from google.genai import types

from keel import AgentHandle, AgentRuntime, Status

ACTED: list[str] = []


def act(branch: str) -> dict[str, str]:
    """Do the branch's work."""
    ACTED.append(branch)
    return {"done": branch}


class _ActOnceLlm(BaseLlm):
    """Calls `act` for its branch, then says it is finished."""

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        acted = any(part.function_response for content in llm_request.contents
                    for part in content.parts or [])
        part = types.Part(text=f"{self.model} finished") if acted else types.Part(
            function_call=types.FunctionCall(name="act", args={"branch": self.model},
                                             id=f"call_{self.model}"))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def _branches() -> ParallelAgent:
    gated = FunctionTool(act, require_confirmation=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # in favour of Workflow
        return ParallelAgent(name="both", sub_agents=[
            LlmAgent(name=name, model=_ActOnceLlm(model=name), instruction="Act.",
                     tools=[gated]) for name in ("left", "right")])


def test_gated_calls_in_parallel_branches_wait_and_each_runs_once_approved(
    runtime: AgentRuntime,
) -> None:
    ACTED.clear()
    agent = _branches()
    result = runtime.run(agent, "go")  # raised an exception group of keel's pause before
    decided = []
    while result.status is Status.WAITING:
        (pending,) = result.pending_approvals
        decided.append(pending.args["branch"])
        assert sorted(ACTED) == sorted(decided[:-1])  # nothing runs before its approval
        AgentHandle(result.execution_id, runtime=runtime).approve()
        result = runtime.resume(result.execution_id, agent)
    assert result.status is Status.COMPLETED
    assert sorted(decided) == sorted(ACTED) == ["left", "right"]
    assert sorted(e.content for e in result.events if e.type == "message") == [
        "left finished", "right finished"]
