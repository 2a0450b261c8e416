"""Putting pipelines together: `>>`, keel.sequence, keel.parallel, keel.agent, and the errors
that say what to do instead."""

from __future__ import annotations

import pytest
from pipeline_agents import adk_agent, graph_agent, openai_agent

import keel
from keel import AgentRuntime, Parallel, Pipeline, PipelineError, UnsupportedAgentError

upper = openai_agent("upper", str.upper)
lower = graph_agent("lower", str.lower)
title = adk_agent("title", str.title)


def shape(stage: object) -> object:
    """A stage's structure: (framework, name) for an agent, nested lists for the rest."""
    if isinstance(stage, Pipeline):
        return [shape(s) for s in stage.stages]
    if isinstance(stage, Parallel):
        return {"parallel": [shape(b) for b in stage.branches]}
    return (stage.framework, stage.name)  # type: ignore[attr-defined]


def test_rshift_chains_agents_of_every_framework_like_sequence() -> None:
    chained = keel.agent(upper) >> lower >> title
    assert shape(chained) == [("openai", "upper"), ("langgraph", "lower"), ("adk", "title")]
    assert shape(keel.sequence(upper, lower, title)) == shape(chained)
    assert chained.name == "upper >> lower >> title"
    assert [s.agent for s in chained.stages] == [upper, lower, title]  # type: ignore[union-attr]


def test_sequences_flatten_and_an_agent_can_lead_a_pipeline() -> None:
    tail = keel.agent(lower) >> title
    assert shape(upper >> tail) == shape(keel.agent(upper) >> tail)  # __rrshift__
    assert shape(keel.sequence(keel.sequence(upper, lower), tail)) == [
        ("openai", "upper"), ("langgraph", "lower"), ("langgraph", "lower"), ("adk", "title")]
    assert keel.sequence(upper, lower, name="drafting").name == "drafting"


def test_parallel_is_one_stage_gathering_branches_by_name() -> None:
    fan = keel.parallel(upper, keel.agent(lower) >> title, name="both")
    pipeline = keel.agent(title) >> fan >> upper
    assert shape(pipeline) == [("adk", "title"), {"parallel": [
        ("openai", "upper"), [("langgraph", "lower"), ("adk", "title")]]}, ("openai", "upper")]
    assert [b.name for b in fan.branches] == ["upper", "lower >> title"]
    assert keel.parallel(upper, lower).name == "parallel(upper, lower)"


def test_agent_renames_a_stage() -> None:
    renamed = keel.parallel(keel.agent(upper, name="a"), keel.agent(upper, name="b"))
    assert [b.name for b in renamed.branches] == ["a", "b"]
    assert shape(keel.agent(lower, name="drafter") >> title) == [
        ("langgraph", "drafter"), ("adk", "title")]


def test_a_stage_that_is_no_agent_is_refused_when_the_pipeline_is_built() -> None:
    with pytest.raises(UnsupportedAgentError, match=r"keel\.agent\(a\) >> b") as caught:
        keel.agent(upper) >> lower >> "escalation_checker"
    assert "OpenAI Agents SDK agents" in str(caught.value)
    with pytest.raises(UnsupportedAgentError):
        keel.parallel(upper, 42)


@pytest.mark.parametrize(("build", "says"), [
    (lambda: keel.sequence(), r"at least one stage.*keel\.sequence\(classifier, responder\)"),
    (lambda: keel.parallel(), r"at least one branch"),
    (lambda: keel.parallel(upper, upper), r"named 'upper'.*keel\.agent\(x, name="),
    (lambda: keel.agent(upper, name=""), r"non-empty string"),
])
def test_mistakes_raise_pipeline_errors_that_say_what_to_do(build: object,
                                                            says: str) -> None:
    with pytest.raises(PipelineError, match=says):
        build()  # type: ignore[operator]


def test_the_runtime_names_pipelines_among_what_it_runs(sqlite_url: str) -> None:
    with AgentRuntime(sqlite_url) as runtime, pytest.raises(
            UnsupportedAgentError, match="pipelines of them"):
        runtime.run(object(), "hi")


def test_mock_run_says_to_test_parallel_branches_one_by_one() -> None:
    from keel.testing import mock_run

    with pytest.raises(UnsupportedAgentError, match=r"mock_run\(branch"):
        mock_run(keel.agent(upper) >> keel.parallel(lower, title), "hi")
