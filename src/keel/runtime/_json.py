"""JSON in and out of the store: everything keel stores is JSON text, never pickle."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_json, to_jsonable_python

__all__ = ["dumps", "jsonable", "loads", "message_text"]


def dumps(value: Any) -> str:
    """JSON text for `value`; pydantic models and dataclasses become objects, the rest repr()."""
    return to_json(value, fallback=repr).decode()


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers)."""
    return to_jsonable_python(value, fallback=repr)


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
