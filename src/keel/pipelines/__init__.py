"""Pipelines of agents from any mix of frameworks: `keel.agent(a) >> b >> c`,
`keel.sequence(a, b, c)`, `keel.parallel(a, b)`.

    pipeline = keel.agent(classifier) >> responder >> escalation_checker
    result = runtime.run(pipeline, ticket)      # result.output: the last stage's output

Each stage runs as an execution of its own, a child of the pipeline's; a crash resumes at the
unfinished stage, and the stages that finished are not run again.
"""

from ._build import AgentStage, Parallel, Pipeline, Stage, agent, parallel, sequence

__all__ = ["AgentStage", "Parallel", "Pipeline", "Stage", "agent", "parallel", "sequence"]
