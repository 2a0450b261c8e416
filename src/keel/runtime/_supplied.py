"""Outcomes a test supplies instead of running the user's code (keel.testing's mock runs).

A mock run makes its script the current supplier; the adapters ask it before running a tool
or a guardrail. Outside a mock run there is no supplier and everything runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, runtime_checkable

__all__ = ["ModelSupplier", "Supplier", "current_supplier", "supplying"]


class Supplier(Protocol):
    def tool_result(self, call_id: str) -> tuple[bool, Any]:
        """(True, result) to use instead of running the call, else (False, None)."""
        ...

    def guardrail(self, name: str) -> tuple[bool, str] | None:
        """(tripped, message) to use instead of running guardrail `name`, else None."""
        ...


@runtime_checkable
class ModelSupplier(Supplier, Protocol):
    """A supplier that also answers model calls, for adapters that ask it (ADK's plugin)."""

    def model_response(self, agent: str, request: Any) -> Any:
        """The framework's model response for `agent`'s `request`."""
        ...


_supplier: ContextVar[Supplier | None] = ContextVar("keel_supplier", default=None)


def current_supplier() -> Supplier | None:
    return _supplier.get()


@contextmanager
def supplying(supplier: Supplier) -> Iterator[None]:
    """Make `supplier` current for the runs started inside (their tasks inherit it)."""
    token = _supplier.set(supplier)
    try:
        yield
    finally:
        _supplier.reset(token)
