"""JSON in and out of the store: everything keel stores is JSON text, never pickle."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_json, to_jsonable_python

__all__ = ["dumps", "input_json", "jsonable", "loads", "message_text"]


def dumps(value: Any) -> str:
    """JSON text for `value`; pydantic models and dataclasses become objects, the rest repr()."""
    return to_json(value, fallback=repr).decode()


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers)."""
    return to_jsonable_python(value, fallback=repr)


def input_json(value: Any) -> Any:
    """A run's input as the JSON data keel stores, which a fresh run and a resumed one both
    see. Where `jsonable` would fall back to repr() (an object with no JSON form), the agent
    would get a string its caller never meant: that is a TypeError here, before anything is
    stored."""
    return to_jsonable_python(value, fallback=_no_json_form)


def _no_json_form(value: Any) -> Any:
    raise TypeError(
        f"keel stores a run's input as JSON, and {type(value).__module__}."
        f"{type(value).__qualname__} has no JSON form. Pass JSON data (strings, numbers, "
        "lists, dicts), pydantic models or dataclasses, and refer to anything else by a name "
        "or id the agent's tools can look up.")


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def message_text(message: Any) -> Any:
    """A LangChain message's text (the message as JSON data, or its content): a list of
    content blocks (Anthropic's, OpenAI's Responses API's) has its text blocks joined."""
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                       for part in content if isinstance(part, str | dict))
    return content
