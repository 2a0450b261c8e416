"""The worker rows' agents, at module level so that `keel worker bench._agents:NAME` finds them.

All three run on `SampleModel`, a scripted model that is a pure function of the request (no
cursor), so any process can carry any run on. The user's input is a sample label:

- `one_step_agent`: no tools; the model answers with text at once. One model step: the run
  journals one model turn and completes. This is "a one-step run" in the throughput rows.
- `takeover_agent`: the model calls `hang(sample)` once, then answers. The first process to
  run `hang` for a sample leaves a marker file and blocks (asynchronously, so its lease keeps
  being renewed) until it is killed; a process that finds the marker returns at once.
- `approval_agent`: the model calls `stamp(sample)`, a `@keel.tool(approval_required=True)`
  tool, so the run waits for approval; once it runs, the tool appends `sample time.time()` to
  the stamps file.

Files live in $KEEL_BENCH_DIR (the benchmark's temporary directory).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from agents import Agent, ModelResponse, Usage, function_tool
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import keel

from ._child import DIR_VARIABLE

__all__ = [
    "ANSWER",
    "SampleModel",
    "approval_agent",
    "one_step_agent",
    "stamps",
    "takeover_agent",
]

ANSWER = "Done."


class SampleModel(Model):
    """Calls the agent's first tool with the user's text (once), then answers `ANSWER`."""

    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any,
                           tools: Any, output_schema: Any, handoffs: Any, tracing: Any,
                           **kwargs: Any) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        answered = any(isinstance(i, dict) and i.get("type") == "function_call_output"
                       for i in items)
        output: list[Any]
        if tools and not answered:
            sample = next(str(i.get("content")) for i in items
                          if isinstance(i, dict) and i.get("role") == "user")
            output = [ResponseFunctionToolCall(
                id="fc_1", call_id=f"call_{tools[0].name}", type="function_call",
                name=tools[0].name, arguments=json.dumps({"sample": sample}),
                status="completed")]
        else:
            output = [ResponseOutputMessage(
                id="msg_1", type="message", role="assistant", status="completed",
                content=[ResponseOutputText(type="output_text", annotations=[], text=ANSWER)])]
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("keel drives Runner.run, which does not stream")
        yield


def _directory() -> Path:
    return Path(os.environ[DIR_VARIABLE])


@function_tool
async def hang(sample: str) -> str:
    """Block the first time this sample gets here (in any process), return at once after."""
    marker = _directory() / f"hang-{sample}"
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return "resumed"
    await asyncio.sleep(3600.0)  # until SIGKILL; the event loop (and heartbeat) keeps going
    return "slept"


@keel.tool(approval_required=True)
def stamp(sample: str) -> str:
    """Note when this call started: `sample time.time()`, one line per call."""
    started = time.time()
    with open(_directory() / "stamps", "a") as stamps_file:
        stamps_file.write(f"{sample} {started!r}\n")
    return "stamped"


def stamps(directory: Path) -> dict[str, float]:
    """sample -> when `stamp` started, for every call so far."""
    path = directory / "stamps"
    if not path.exists():
        return {}
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {sample: float(started) for sample, started in pairs}


MODEL = SampleModel()
one_step_agent = Agent(name="one_step", model=MODEL, instructions="Answer the request.")
takeover_agent = Agent(name="takeover", model=MODEL, instructions="Call hang.", tools=[hang])
approval_agent = Agent(name="approval", model=MODEL, instructions="Call stamp.", tools=[stamp])
