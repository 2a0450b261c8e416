"""Test-only pipelines that mirror examples/support_pipeline/cross_framework and can die at
chosen points (as crash_agents does for the support team).

The stages are the example's, on its scripted models, with kill points in the models and in
the escalation checker's tool, never in keel. The example's models and tools write one line
each to $PIPELINE_LEDGER (model calls with their stage, tool runs), per process id.

`pipeline` files its note freely; `gated_pipeline`'s note needs approval
(`@keel.tool(approval_required=True)`); `unsafe_pipeline`'s is `side_effects="unsafe"`.

    KEEL_TEST_KILL_AT   STAGE:model:N:before    entering this process's Nth model call of STAGE
                        add_internal_note:after_effect   inside the note tool, after its effect
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator
from typing import Any

from examples.support_pipeline import cross_framework as example
from examples.support_pipeline.graph import INSTRUCTIONS
from google.adk.agents import LlmAgent
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.function_tool import FunctionTool
from kill_points import checkpoint

import keel

_model_calls: Counter[str] = Counter()  # per stage: the model calls this process made


def _entering_model(stage: str) -> None:
    _model_calls[stage] += 1
    checkpoint(f"{stage}:model:{_model_calls[stage]}:before")


class Classifier(example.ClassifierModel):
    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        _entering_model("classifier")
        return await super().get_response(*args, **kwargs)


class Responder(example.ResponderChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        _entering_model("responder")
        return super()._generate(*args, **kwargs)


class Escalation(example.EscalationLlm):
    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        _entering_model("escalation_checker")
        async for response in super().generate_content_async(llm_request, stream):
            yield response


def add_internal_note(note: str) -> dict[str, Any]:
    """Add a private note on the ticket for the engineering team."""
    noted = example.add_internal_note(note)
    checkpoint("add_internal_note:after_effect")
    return noted


def _pipeline(note_tool: Any) -> keel.Pipeline:
    escalation_checker = LlmAgent(name="escalation_checker", model=Escalation(),
                                  instruction=INSTRUCTIONS["escalation_checker"],
                                  tools=[note_tool])
    return (keel.agent(example.classifier.clone(model=Classifier()))
            >> example.responder_graph(Responder()) >> escalation_checker)


pipeline = _pipeline(add_internal_note)
gated_pipeline = _pipeline(keel.tool(approval_required=True)(FunctionTool(add_internal_note)))
unsafe_pipeline = _pipeline(keel.tool(side_effects="unsafe")(FunctionTool(add_internal_note)))
