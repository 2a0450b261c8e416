"""The OpenAI Agents SDK adapter.

keel runs the user's agent with `Runner.run`, unchanged, on a private wrapped copy of its agent
graph (`_graph`). Models are journaled at the model boundary (`_journal`): the user's
`RunConfig.model` and `model_provider` are wrapped, never replaced, so a LiteLLM or Azure
provider stays in charge. On resume the run starts again from its input, and every journaled
model turn, tool result and handoff is answered from the journal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    RunConfig,
    Runner,
    function_tool,
)
from agents.run_config import DEFAULT_MAX_TURNS

from ..._tool import ToolSpec, call_tool
from ...runtime._execution import Execution
from ...runtime._result import INPUT_LIST
from .. import Outcome, RunOptions
from ._graph import wrapped_graph
from ._items import approval_request, guardrail_event
from ._journal import current_journal, journaling

__all__ = ["ADAPTER", "KeelFunctionTool", "OpenAIAdapter", "as_function_tool"]


class OpenAIAdapter:
    framework = "openai"

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, Agent)

    def agent_name(self, agent: Any) -> str:
        return str(agent.name)

    def output_type(self, agent: Any) -> type | None:
        output_type = agent.output_type
        return output_type if isinstance(output_type, type) and output_type is not str else None

    async def execute(
        self, execution: Execution, agent: Any, input: Any, options: RunOptions
    ) -> Outcome:
        root = wrapped_graph(agent, execution.rules)
        max_turns = DEFAULT_MAX_TURNS if options.max_turns is None else options.max_turns
        with journaling(execution, options.run_config or RunConfig()) as run_config:
            try:
                result = await Runner.run(root, input, run_config=run_config,
                                          context=options.context, max_turns=max_turns)
                # The SDK asks about a gated call whose arguments are not JSON whatever keel's
                # needs_approval would say, so it asks again once keel has a decision. Approved
                # in the SDK's state, the call reaches keel's wrapper, which applies the
                # decision: an approved tool runs, a rejected one answers with the rejection.
                while result.interruptions and all(
                        execution.decision(approval_request(item).call_id)
                        for item in result.interruptions):
                    state = result.to_state()
                    for item in result.interruptions:
                        state.approve(item)
                    result = await Runner.run(root, state, run_config=run_config,
                                              context=options.context, max_turns=max_turns)
            except (InputGuardrailTripwireTriggered, OutputGuardrailTripwireTriggered) as exc:
                agent_name = current_journal().agent_name
                execution.emit([guardrail_event(exc.guardrail_result, agent_name)])
                raise
        if result.interruptions:
            execution.suspend([approval_request(item) for item in result.interruptions])
            return Outcome("waiting")
        last = result.last_agent
        # Committed with the completion, for `AgentResult.to_input_list()` in any process.
        execution.record(INPUT_LIST, kind="conversation", name=last.name,
                         payload=result.to_input_list(), defer=True)
        guardrails = [*result.input_guardrail_results, *result.output_guardrail_results]
        return Outcome(
            "completed",
            output=result.final_output,
            agent=last.name,
            output_type=self.output_type(last),
            events=[guardrail_event(g, last.name) for g in guardrails],
        )


@dataclasses.dataclass
class KeelFunctionTool(FunctionTool):
    """A FunctionTool made by `@keel.tool`; calling it calls the function."""

    keel_spec: ToolSpec | None = dataclasses.field(default=None, kw_only=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.keel_spec is None:
            raise TypeError(f"The tool {self.name!r} wraps no Python function to call.")
        return call_tool(self.keel_spec, self.name, args, kwargs)


def as_function_tool(target: Any, spec: ToolSpec) -> KeelFunctionTool:
    """`target` (a function or a FunctionTool) as a FunctionTool carrying keel's spec."""
    base = target if isinstance(target, FunctionTool) else function_tool(target)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    fields.pop("keel_spec", None)
    return KeelFunctionTool(**fields, keel_spec=spec)


ADAPTER = OpenAIAdapter()
