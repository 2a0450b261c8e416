"""A scripted ADK model that answers by turn number, for tests that script each turn."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types

__all__ = ["TurnsLlm"]


class TurnsLlm(BaseLlm):
    """Answers turn i (the model contents so far) with `turns[i]`: text, a call (a dict) or
    a list of parts; counts its calls in `asked`."""

    model: str = "turns"
    turns: list[Any] = []
    asked: list[int] = []

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        turn = sum(1 for content in llm_request.contents if content.role == "model")
        self.asked.append(turn)
        answer = self.turns[turn]
        yield LlmResponse(content=types.Content(role="model", parts=[
            item if isinstance(item, types.Part) else types.Part(text=item)
            if isinstance(item, str) else types.Part(function_call=types.FunctionCall(**item))
            for item in (answer if isinstance(answer, list) else [answer])]))
