"""ADK state scoped to a user (`user:`) or to the app (`app:`) carries into the later runs of
that user (or of any user of the app), in any session and from another process, as with ADK's
own session services; the session's own state stays in its session."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from keel import AgentRuntime, Status


def remember(tier: str, tool_context: ToolContext) -> dict[str, str]:
    """Remember the user's tier."""
    tool_context.state["user:tier"] = tier
    tool_context.state["app:greeting"] = f"welcome, {tier} member"
    tool_context.state["seen"] = "yes"  # the session's own
    return {"remembered": tier}


def recall(tool_context: ToolContext) -> dict[str, Any]:
    """Recall what is known."""
    return {key: tool_context.state.get(key) for key in ("user:tier", "app:greeting", "seen")}


class _CommandLlm(BaseLlm):
    """Calls the tool the user's last message names (with its argument, if any), then answers
    with the tool's result as JSON."""

    model: str = "command"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1].parts[0]
        if last.function_response:
            part = types.Part(text=json.dumps(last.function_response.response))
        else:
            name, *args = (last.text or "").split()
            part = types.Part(function_call=types.FunctionCall(
                name=name, args={"tier": args[0]} if args else {}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


agent = LlmAgent(name="concierge", model=_CommandLlm(), instruction="Serve.",
                 tools=[remember, recall])


def _recalled(runtime: AgentRuntime, **options: Any) -> dict[str, Any]:
    result = runtime.run(agent, "recall", **options)
    assert result.status is Status.COMPLETED, result.error
    return dict(json.loads(result.output))


def test_user_and_app_state_carry_into_later_runs_from_another_process(
    runtime: AgentRuntime, database_url: str,
) -> None:
    assert runtime.run(agent, "remember gold", user_id="dana").status is Status.COMPLETED
    with AgentRuntime(database_url, auto_resume=False) as other:  # as another process
        assert _recalled(other, user_id="dana") == {
            "user:tier": "gold", "app:greeting": "welcome, gold member", "seen": None}
        assert _recalled(other, user_id="erin") == {
            "user:tier": None, "app:greeting": "welcome, gold member", "seen": None}


def test_a_session_continued_sees_the_users_newest_state_and_its_own(
    runtime: AgentRuntime,
) -> None:
    runtime.run(agent, "remember gold", user_id="dana", session_id="chat-1")
    runtime.run(agent, "remember silver", user_id="dana", session_id="chat-2")
    assert _recalled(runtime, user_id="dana", session_id="chat-1") == {
        "user:tier": "silver", "app:greeting": "welcome, silver member", "seen": "yes"}
