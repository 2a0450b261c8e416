"""keel's pytest plugin (registered through the `pytest11` entry point).

- `keel_runtime`: an AgentRuntime on a fresh in-memory store, closed after the test.
- `keel_mock_run`: `mock_run`, for tests that prefer fixtures to imports.
- Real model requests fail inside tests: a test that forgot to script its model fails at once
  with a message saying so, instead of calling a paid API (or hanging without a network).
  `@pytest.mark.keel_real_model` allows them in one test, `--keel-allow-real-models` in all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .._errors import KeelError
from ..runtime._runtime import AgentRuntime
from ._mock import memory_url, mock_run

__all__ = ["RealModelRequestError"]

MARKER = "keel_real_model"

# The model classes that reach a provider over the network, per framework: (module, class).
_REAL_MODELS = (
    ("agents.models.openai_responses", "OpenAIResponsesModel"),
    ("agents.models.openai_chatcompletions", "OpenAIChatCompletionsModel"),
    ("agents.extensions.models.litellm_model", "LitellmModel"),
    ("agents.extensions.models.any_llm_model", "AnyLLMModel"),
)
_REQUESTS = ("get_response", "stream_response")


class RealModelRequestError(KeelError):
    """A test asked a real model provider; keel's pytest plugin stopped the request."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--keel-allow-real-models", action="store_true", default=False,
        help="keel: let tests send requests to real model providers (blocked by default).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: let this test send requests to real model providers (keel "
        "blocks them in tests by default).",
    )


@pytest.fixture
def keel_runtime() -> Iterator[AgentRuntime]:
    """An AgentRuntime on a fresh in-memory store of its own."""
    with AgentRuntime(memory_url()) as runtime:
        yield runtime


@pytest.fixture
def keel_mock_run() -> Any:
    return mock_run


@pytest.fixture(autouse=True)
def _keel_block_real_models(request: pytest.FixtureRequest,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    if request.config.getoption("--keel-allow-real-models") or \
            request.node.get_closest_marker(MARKER) is not None:
        return
    for module_name, class_name in _REAL_MODELS:
        # Only frameworks the tests have imported (at collection, as test modules do): a
        # test session that never imports one does not pay for importing it.
        module = sys.modules.get(module_name)
        if module is not None:
            for method in _REQUESTS:
                monkeypatch.setattr(getattr(module, class_name), method,
                                    _blocked(class_name, method))


def _blocked(class_name: str, method: str) -> Any:
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        model = getattr(self, "model", None)
        raise RealModelRequestError(
            f"A test asked a real model ({class_name} {model!r}) for a response; keel blocks "
            "real model requests in tests. Script the model with keel.testing.mock_run, or "
            f"allow real requests with @pytest.mark.{MARKER} (or --keel-allow-real-models)."
        )

    request.__name__ = method
    return request
