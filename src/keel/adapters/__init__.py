"""Framework adapters behind one Protocol, and detection that imports no framework.

An object can only be an instance of a framework's class if the user has imported that
framework, so detection first looks in `sys.modules` and imports an adapter (and with it the
framework) only then.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .._errors import MissingExtraError, UnsupportedAgentError
from ..runtime._execution import Execution
from ..runtime._options import RunOptions
from ..runtime._store import NewEvent

__all__ = ["Adapter", "Outcome", "RunOptions", "adapter_for", "adapter_named"]


@dataclass(frozen=True)
class Outcome:
    status: Literal["completed", "waiting"]
    output: Any = None
    agent: str | None = None
    """The agent that produced the output."""
    output_type: type | None = None
    """The declared type of `output` (its agent's output type); None for plain JSON data."""
    events: Sequence[NewEvent] = field(default_factory=tuple)
    """Events to commit with the final status (guardrail results, for example)."""


class Adapter(Protocol):
    framework: str

    def detect(self, obj: Any) -> bool: ...

    def agent_name(self, agent: Any) -> str: ...

    def output_type(self, agent: Any) -> type | None: ...

    async def execute(
        self, execution: Execution, agent: Any, input: Any, options: RunOptions
    ) -> Outcome: ...


@dataclass(frozen=True)
class _Known:
    framework: str
    module: str  # the adapter module
    marker: str  # the framework module whose presence in sys.modules means "maybe"
    extra: str | None  # None: keel's own, nothing to install
    description: str


_KNOWN = (
    # keel's own pipelines of agents (stages of any framework): first, as the cheapest check.
    _Known("pipeline", "keel.pipelines._adapter", "keel.pipelines", None, "keel pipelines"),
    _Known("openai", "keel.adapters.openai", "agents", "openai",
           "OpenAI Agents SDK agents (agents.Agent)"),
    _Known("langgraph", "keel.adapters.langgraph", "langgraph", "langgraph",
           "LangGraph graphs (StateGraph builders and compiled graphs)"),
    _Known("adk", "keel.adapters.adk", "google.adk", "adk",
           "Google ADK agents, workflows and apps (google.adk.agents.BaseAgent, "
           "google.adk.workflow.Workflow, google.adk.apps.App)"),
)


def adapter_for(obj: Any) -> Adapter:
    """The adapter that runs `obj`; raises UnsupportedAgentError naming what is supported."""
    for known in _KNOWN:
        if known.marker in sys.modules:
            adapter = adapter_named(known.framework)
            if adapter.detect(obj):
                return adapter
    supported = "; ".join(f"{k.description}: pip install 'keel[{k.extra}]'" for k in _KNOWN
                          if k.extra)
    raise UnsupportedAgentError(
        f"keel cannot run an object of type {type(obj).__module__}.{type(obj).__qualname__}. "
        f"It runs {supported}; and pipelines of them (keel.agent(a) >> b, keel.sequence, "
        "keel.parallel)."
    )


def adapter_named(framework: str) -> Adapter:
    """The adapter recorded with an execution; raises MissingExtraError if not installed."""
    known = next((k for k in _KNOWN if k.framework == framework), None)
    if known is None:
        raise UnsupportedAgentError(f"This keel has no adapter for framework {framework!r}.")
    try:
        module = importlib.import_module(known.module)
    except ImportError as exc:
        raise MissingExtraError(
            f"Running {known.description} needs the {known.extra!r} extra ({exc}). "
            f"Install it with: pip install 'keel[{known.extra}]'"
        ) from exc
    adapter: Adapter = module.ADAPTER
    return adapter
