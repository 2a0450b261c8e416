"""keel's pytest plugin, active in this suite as in users' (the pytest11 entry point)."""

from __future__ import annotations

import pytest
from agents import Agent, Runner
from agents.models.openai_responses import OpenAIResponsesModel

from keel import AgentRuntime, Status
from keel.testing import MockEvent, expect
from keel.testing.pytest_plugin import RealModelRequestError

BLOCKED = "keel blocks real model requests in tests"


@pytest.fixture
def unreachable_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key, and an endpoint nothing listens on: were a request sent, it would fail
    differently."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


real_agent = Agent(name="real", instructions="Answer.", model="gpt-4o")


@pytest.mark.usefixtures("unreachable_openai")
def test_a_real_model_request_fails_with_a_clear_message(keel_runtime: AgentRuntime) -> None:
    result = keel_runtime.run(real_agent, "hi")
    assert result.status is Status.FAILED
    assert BLOCKED in (result.error or "") and "keel_real_model" in (result.error or "")


@pytest.mark.usefixtures("unreachable_openai")
async def test_bare_sdk_runs_are_blocked_too() -> None:
    with pytest.raises(RealModelRequestError, match="OpenAIResponsesModel 'gpt-4o'"):
        await Runner.run(real_agent, "hi")


@pytest.mark.keel_real_model
def test_the_marker_lets_requests_through() -> None:
    assert OpenAIResponsesModel.get_response.__qualname__ == "OpenAIResponsesModel.get_response"


def test_fixtures_give_an_isolated_runtime_and_mock_run(keel_runtime: AgentRuntime,
                                                        keel_mock_run: object) -> None:
    assert keel_runtime.database_url.startswith("sqlite:///file:keel-mock-")
    result = keel_mock_run(real_agent, "hi", events=[MockEvent.done("hello")])  # type: ignore[operator]
    expect(result).completed().output_equals("hello")
