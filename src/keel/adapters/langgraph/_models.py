"""Model calls in a graph: step boundaries and token usage, through LangChain's callbacks.

A graph's chat models sit deep inside its nodes, and their responses are kept by the graph's
checkpoints, not by keel's journal. Every LangChain model call reports its start and end to
the callbacks of the config it runs with, which LangGraph passes down to every node. keel adds
one handler there: before a model call starts it checks the run's cancellation and budget (an
exception in a handler with `raise_error` stops the call), and when the call ends it journals
a small step with the tokens the model reported, for the budget and `result.token_usage`.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.outputs import ChatGeneration, LLMResult

from ...runtime._execution import Execution
from ._tools import agent_of

__all__ = ["ModelSteps", "with_handlers"]


def with_handlers(config: dict[str, Any], *handlers: BaseCallbackHandler) -> dict[str, Any]:
    """`config` with keel's handlers among its callbacks (the user's own stay)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        callbacks = callbacks.copy()
        for handler in handlers:
            callbacks.add_handler(handler, inherit=True)
    else:
        callbacks = [*(callbacks or []), *handlers]
    return {**config, "callbacks": callbacks}


class ModelSteps(BaseCallbackHandler):
    """Checks the budget before each model call of one run and journals its usage after."""

    raise_error = True  # a stop (or a lost store) must reach the run, not a log line
    run_inline = True  # in the model call's own task, before it goes on

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self._calls: dict[UUID, tuple[str, str]] = {}  # run id -> (journal key, agent)
        self._lock = threading.Lock()  # sync nodes call models from several threads

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._started(run_id, metadata)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._started(run_id, metadata)

    def _started(self, run_id: UUID, metadata: dict[str, Any] | None) -> None:
        namespace = (metadata or {}).get("langgraph_checkpoint_ns", "")
        agent = agent_of({"configurable": {"checkpoint_ns": namespace}}) or "?"
        with self._lock:
            # Numbered by the calls the run made before this one, journal included.
            key = f"model:{self.execution.meter.model_calls}"
            self.execution.before_model_call()
            self._calls[run_id] = (key, agent)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._calls.pop(run_id, None)
        if started is None:
            return
        key, agent = started
        # Committed with the run's next write: a crash before it loses the count of a call
        # that then runs again, and is counted then.
        self.execution.record(key, kind="model", name=agent, defer=True,
                              payload={"agent": agent, "usage": _usage(response)})

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._calls.pop(run_id, None)


def _usage(response: LLMResult) -> dict[str, int]:
    """The tokens a response reports: its messages' usage metadata, else the provider's
    `token_usage` (OpenAI's names)."""
    input_tokens = output_tokens = total = 0
    for generation in (g for batch in response.generations for g in batch):
        usage = getattr(generation.message, "usage_metadata", None) \
            if isinstance(generation, ChatGeneration) else None
        if usage:
            input_tokens += usage.get("input_tokens", 0)
            output_tokens += usage.get("output_tokens", 0)
            total += usage.get("total_tokens", 0)
    if not total:
        reported = (response.llm_output or {}).get("token_usage") or {}
        input_tokens = int(reported.get("prompt_tokens") or 0)
        output_tokens = int(reported.get("completion_tokens") or 0)
        total = int(reported.get("total_tokens") or 0)
    return {"requests": 1, "input_tokens": input_tokens, "output_tokens": output_tokens,
            "total_tokens": total or input_tokens + output_tokens}
