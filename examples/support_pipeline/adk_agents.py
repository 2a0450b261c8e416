"""The same three-agent pipeline as Google ADK agents: a `SequentialAgent` runs them in turn,
each seeing the ticket and what the agents before it wrote. Offline they run on `PipelineLlm`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent, SequentialAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types

from .graph import INSTRUCTIONS, answer

__all__ = ["PipelineLlm", "pipeline"]


class PipelineLlm(BaseLlm):
    """Answers each pipeline role deterministically, from the ticket."""

    model: str = "pipeline-scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        system = llm_request.config.system_instruction if llm_request.config else None
        role = system if isinstance(system, str) else str(system or "")
        parts = [part for content in llm_request.contents for part in content.parts or []]
        ticket = next((part.text for part in parts if part.text), "") or ""
        yield LlmResponse(content=types.Content(
            role="model", parts=[types.Part(text=answer(role, ticket))]))


MODEL = PipelineLlm()
with warnings.catch_warnings():
    # ADK 2.13 marks SequentialAgent deprecated in favour of Workflow, which cannot hold
    # LlmAgents yet; SequentialAgent is what today's ADK code uses.
    warnings.simplefilter("ignore", DeprecationWarning)
    pipeline = SequentialAgent(name="support_pipeline", sub_agents=[
        LlmAgent(name=name, model=MODEL, instruction=instruction, output_key=name)
        for name, instruction in INSTRUCTIONS.items()
    ])
