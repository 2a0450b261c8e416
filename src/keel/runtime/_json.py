"""JSON in and out of the store: everything keel stores is JSON text, never pickle."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_json, to_jsonable_python

__all__ = ["dumps", "jsonable", "loads"]


def dumps(value: Any) -> str:
    """JSON text for `value`; pydantic models and dataclasses become objects, the rest repr()."""
    return to_json(value, fallback=repr).decode()


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers)."""
    return to_jsonable_python(value, fallback=repr)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
