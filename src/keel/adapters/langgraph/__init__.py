"""The LangGraph adapter (in progress): LangGraph checkpoints in keel's store."""

from ._saver import KeelSaver

__all__ = ["KeelSaver"]
