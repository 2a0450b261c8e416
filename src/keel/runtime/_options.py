"""Run options: what passes through to the framework, and what of it survives a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from .._errors import KeelError
from ._json import jsonable, loads
from ._redact import Redactor
from ._references import resolve, type_reference

__all__ = ["FrameworkOptions", "RunOptions", "redacted_options"]


class FrameworkOptions(TypedDict, total=False):
    """The keyword arguments of `AgentRuntime.run()` and friends that pass through to the
    framework (each framework reads its own)."""

    run_config: Any
    """OpenAI Agents SDK `RunConfig`, or Google ADK `RunConfig`."""
    context: Any
    """OpenAI Agents SDK run context."""
    max_turns: int | None
    """OpenAI Agents SDK turn limit."""
    config: Any
    """LangGraph `RunnableConfig`: thread id, recursion limit, configurable values."""
    user_id: str | None
    """Google ADK: the user the session belongs to."""
    session_id: str | None
    """Google ADK: the session (a conversation) that the run continues."""


@dataclass(frozen=True)
class RunOptions:
    """Framework options that pass through to the framework unchanged."""

    run_config: Any = None
    """OpenAI Agents SDK `RunConfig`; keel composes with it (your model_provider stays)."""
    context: Any = None
    """The framework's run context object, passed as is."""
    max_turns: int | None = None
    config: Any = None
    """LangGraph `RunnableConfig`: thread id, recursion limit, configurable values."""
    user_id: str | None = None
    """Google ADK: the user the session belongs to."""
    session_id: str | None = None
    """Google ADK: the session (a conversation) that the run continues."""

    @classmethod
    def given(cls, call: str, options: Mapping[str, Any]) -> RunOptions:
        """The options a call was given; an unknown one is a TypeError that lists them."""
        unknown = sorted(set(options) - set(FrameworkOptions.__annotations__))
        if unknown:
            raise TypeError(
                f"{call}() got an unexpected keyword argument {unknown[0]!r}. The options it "
                "passes to the framework are run_config, context and max_turns (OpenAI Agents "
                "SDK), config (LangGraph), and user_id, session_id and run_config (Google ADK)."
            )
        problem = _option_problem(options)
        if problem:
            raise TypeError(f"{call}() got {problem}")
        return cls(**options)

    @property
    def conversation(self) -> str | None:
        """The conversation an execution continues, if the framework has one: an ADK
        session (its user and id)."""
        return f"{self.user_id or ''}/{self.session_id}" if self.session_id else None

    def to_json(self) -> dict[str, Any]:
        """What survives a restart: JSON data only (a context that is not JSON is not kept;
        a pydantic context is kept with its type, to be rebuilt; of a config, the entries
        that are JSON data)."""
        stored: dict[str, Any] = {"max_turns": self.max_turns, "user_id": self.user_id,
                                   "session_id": self.session_id}
        if self.config:
            stored["config"] = _json_entries(self.config)
        context = self.context
        if isinstance(context, dict | list | str | int | float | bool):
            stored["context"] = jsonable(context)
        elif context is not None and hasattr(context, "model_dump"):
            stored["context"] = context.model_dump(mode="json")
            stored["context_type"] = type_reference(type(context))
        elif context is not None:
            stored["context_not_kept"] = f"{type(context).__module__}.{type(context).__qualname__}"
        return stored

    @classmethod
    def for_resume(cls, stored_json: str, live: RunOptions | None, given: RunOptions) -> RunOptions:
        """Options to resume with: those given now, else this process's live ones, else the
        stored ones (a RunConfig is never stored: pass it again in a new process)."""
        stored = loads(stored_json)
        context = given.context
        if context is None:
            if live is not None:
                context = live.context
            elif stored.get("context_type"):
                context = _stored_context(stored["context_type"], stored["context"])
            elif stored.get("context_not_kept"):
                raise KeelError(
                    f"This execution ran with a context of type {stored['context_not_kept']}, "
                    "which keel cannot store (only JSON data and pydantic models are kept). "
                    "Pass it again: runtime.resume(execution_id, context=...)."
                )
            else:
                context = stored.get("context")

        def pick(name: str) -> Any:
            value = getattr(given, name)
            if value is not None:
                return value
            return getattr(live, name) if live is not None else stored.get(name)

        return cls(run_config=given.run_config if given.run_config is not None
                   else live and live.run_config, context=context,
                   **{name: pick(name) for name in ("max_turns", "config", "user_id",
                                                    "session_id")})


_KEYS = ("user_id", "session_id")
_CONFIG_KEYS = ("thread_id", "checkpoint_ns", "checkpoint_id")


def _option_problem(options: Mapping[str, Any]) -> str | None:
    """What is wrong with the options' types, checked before anything is stored (the
    framework would fail on them later, mid-run)."""
    max_turns, config = options.get("max_turns"), options.get("config")
    if max_turns is not None and (type(max_turns) is not int or max_turns < 1):
        return f"max_turns={max_turns!r}: the SDK's turn limit is a positive int."
    if config is not None and not isinstance(config, Mapping):
        return (f"config={config!r}: config is LangGraph's RunnableConfig, a dict such as "
                "{'configurable': {'thread_id': ...}, 'recursion_limit': 50}.")
    if isinstance(options.get("run_config"), Mapping):
        return ("a dict as run_config: give the framework's RunConfig object (agents.RunConfig, "
                "google.adk.agents.RunConfig).")
    for name in ("user_id", "session_id"):
        if options.get(name) is not None and not isinstance(options[name], str):
            return f"{name}={options[name]!r}: ADK's {name} is a string."
    return None


def redacted_options(stored: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Stored options, redacted, but for the identifiers keel finds a run's state by (an ADK
    user and session, a LangGraph thread): a marker there would lose the conversation."""
    redacted: dict[str, Any] = redactor.redact_value(stored)
    if redacted is stored:
        return stored
    redacted = {**redacted, **{key: stored.get(key) for key in _KEYS}}
    configurable = (stored.get("config") or {}).get("configurable")
    if isinstance(configurable, dict):
        config = dict(redacted["config"])
        config["configurable"] = {**config.get("configurable", {}), **{
            key: configurable[key] for key in _CONFIG_KEYS if key in configurable}}
        redacted["config"] = config
    return redacted


def _json_entries(mapping: dict[str, Any]) -> dict[str, Any]:
    """The entries of `mapping` that are JSON data (callbacks and other objects are not)."""
    kept = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            value = _json_entries(value)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept


def _stored_context(reference: str, data: Any) -> Any:
    try:
        context_type = resolve(reference)
    except Exception as exc:
        raise KeelError(
            f"This execution's context is a {reference!r}, which cannot be imported here "
            f"({exc}). Make it importable, or pass it: runtime.resume(execution_id, context=...)."
        ) from exc
    return context_type.model_validate(data)
