"""Putting pipelines together: `keel.agent(a) >> b >> c`, `keel.sequence(...)`,
`keel.parallel(...)`.

A pipeline holds the user's agents as they are (keel never changes their classes, so the first
element of a `>>` chain is wrapped by `keel.agent`). Every stage is checked when the pipeline
is built: an object no adapter runs raises UnsupportedAgentError there, not mid-run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

from .._errors import PipelineError

__all__ = ["AgentStage", "Parallel", "Pipeline", "Stage", "agent", "parallel", "sequence"]


class _Composable:
    """`>>` for every stage: `stage >> next` and `agent >> stage` are sequences."""

    def __rshift__(self, other: Any) -> Pipeline:
        return sequence(self, other)

    def __rrshift__(self, other: Any) -> Pipeline:
        return sequence(other, self)


@dataclass(frozen=True, eq=False)
class AgentStage(_Composable):
    """One agent of any supported framework, run as one stage."""

    agent: Any
    name: str
    framework: str


@dataclass(frozen=True, eq=False, repr=False)
class Pipeline(_Composable):
    """Stages that run one after another, each given the output of the one before; the
    pipeline's output is its last stage's. Run it as you run an agent: `runtime.run(pipeline,
    input)`, `start`, `stream`, `resume`."""

    stages: tuple[AgentStage | Parallel, ...]
    name: str

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r})"


@dataclass(frozen=True, eq=False, repr=False)
class Parallel(_Composable):
    """Branches that run at the same time on the same input; the output gathers theirs in a
    dict keyed by branch name. A stage like any other (`a >> keel.parallel(b, c) >> d`)."""

    branches: tuple[Stage, ...]
    name: str

    def __repr__(self) -> str:
        return f"Parallel({self.name!r})"


Stage: TypeAlias = AgentStage | Pipeline | Parallel
"""What a pipeline is made of; a Pipeline appears as a stage only as a parallel branch."""

_S = TypeVar("_S", AgentStage, Pipeline, Parallel)


def agent(obj: Any, *, name: str | None = None) -> Pipeline:
    """`obj` (an OpenAI Agents SDK agent, a LangGraph graph, a Google ADK agent, or a pipeline)
    as a pipeline, so that `>>` chains it: `keel.agent(classifier) >> responder`.

    `name` renames the stage: its handoff events, its execution's agent name and, in a
    `keel.parallel`, its key in the gathered output.
    """
    if isinstance(obj, Pipeline):
        return _renamed(obj, name)
    stage = _stage(obj, name)
    return Pipeline((stage,), stage.name)


def sequence(*stages: Any, name: str | None = None) -> Pipeline:
    """Run `stages` one after another (the same as `keel.agent(a) >> b >> c`).

    Sequences inside are flattened into this one; a `keel.parallel` stays one stage.
    """
    if not stages:
        raise PipelineError(
            "keel.sequence() needs at least one stage, for example "
            "keel.sequence(classifier, responder).")
    flat = tuple(_flatten(stages))
    return Pipeline(flat, _named(name, " >> ".join(s.name for s in flat)))


def parallel(*branches: Any, name: str | None = None) -> Parallel:
    """Run `branches` at the same time, each on the same input; the output is a dict of their
    outputs keyed by branch name, so branch names must differ (rename one with
    `keel.agent(x, name=...)`). A branch may be an agent or a whole sequence."""
    if not branches:
        raise PipelineError(
            "keel.parallel() needs at least one branch, for example "
            "keel.parallel(sentiment_agent, classifier).")
    made = tuple(_branch(b) for b in branches)
    twice = [n for n, count in Counter(b.name for b in made).items() if count > 1]
    if twice:
        raise PipelineError(
            f"Two branches of keel.parallel() are named {twice[0]!r}, but the gathered "
            "output is keyed by branch name. Name them apart: "
            f"keel.parallel(keel.agent(x, name='{twice[0]}_a'), keel.agent(y, name=...)).")
    names = ", ".join(b.name for b in made)
    return Parallel(made, _named(name, f"parallel({names})"))


def _flatten(items: Iterable[Any]) -> Iterable[AgentStage | Parallel]:
    for item in items:
        if isinstance(item, Pipeline):
            yield from _flatten(item.stages)
        elif isinstance(item, AgentStage | Parallel):
            yield item
        else:
            yield _stage(item)


def _branch(item: Any) -> Stage:
    """A parallel branch: a one-stage pipeline is its stage; a longer one stays a sequence."""
    if isinstance(item, Pipeline) and len(item.stages) == 1:
        only = item.stages[0]
        return only if only.name == item.name else replace(only, name=item.name)
    if isinstance(item, AgentStage | Pipeline | Parallel):
        return item
    return _stage(item)


def _stage(obj: Any, name: str | None = None) -> AgentStage | Parallel:
    if isinstance(obj, AgentStage):
        return _renamed(obj, name)
    if isinstance(obj, Parallel):
        return _renamed(obj, name)
    from ..adapters import adapter_for

    adapter = adapter_for(obj)  # UnsupportedAgentError names what keel runs
    return AgentStage(obj, _named(name, adapter.agent_name(obj)), adapter.framework)


def _renamed(stage: _S, name: str | None) -> _S:
    return stage if name is None else replace(stage, name=_named(name, stage.name))


def _named(name: Any, default: str) -> str:
    """`name` if given (checked), else `default`."""
    if name is None:
        return default
    if not isinstance(name, str) or not name.strip():
        raise PipelineError(f"A stage's name must be a non-empty string, not {name!r}.")
    return name
