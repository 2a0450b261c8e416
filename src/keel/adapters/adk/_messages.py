"""What a model's response says: the messages in its content, and the answer among them."""

from __future__ import annotations

from google.genai import types

__all__ = ["SCRIPTED_MESSAGE", "said"]

SCRIPTED_MESSAGE = "keel_scripted_message"
"""Marks (in `Part.part_metadata`) a text part that a mock run's script made a message of its
own: a model's text parts are pieces of one message, a script's messages are apart, and the
last of them is the answer, as the OpenAI SDK's final output is its last message."""


def said(content: types.Content | None) -> list[str]:
    """The messages in a model's `content`, without its thoughts: its text as one message,
    or a mock run's scripted messages apart (`SCRIPTED_MESSAGE`)."""
    parts = (content.parts or []) if content is not None else []
    texts = [part for part in parts if part.text and not part.thought]
    if all((part.part_metadata or {}).get(SCRIPTED_MESSAGE) for part in texts):
        return [part.text or "" for part in texts]
    return ["".join(part.text or "" for part in texts)]
