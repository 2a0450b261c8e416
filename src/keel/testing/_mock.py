"""mock_run: the real agent, run through keel's runtime on a scripted model.

Unless a runtime is given, a mock run uses a runtime on an in-memory store that keel keeps for
mock runs with the same approval rules, and deletes its execution when it is done: runs never
see each other, nothing reaches the disk, and a test suite does not pay for a new store per
run. Approvals go through the same store operations as in production: a scripted decision is
given with `AgentHandle.approve()` / `reject()`, and the run is resumed from its journal.
"""

from __future__ import annotations

import importlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .._errors import UnsupportedAgentError
from ..adapters import adapter_for
from ..runtime._approvals import ApprovalRules
from ..runtime._events import Status
from ..runtime._handle import AgentHandle
from ..runtime._loop import run_on_keel_loop
from ..runtime._result import AgentResult, PendingApproval
from ..runtime._runtime import AgentRuntime
from ..runtime._supplied import supplying
from ..runtime._trace import trace
from ._script import DECISIONS, MockEvent, MockScriptError, Script

__all__ = ["memory_url", "mock_run", "mock_run_async"]

_RUNTIME_OPTIONS = ("require_approval", "approval_policy")


def mock_run(
    agent: Any,
    prompt: Any,
    events: Sequence[MockEvent] = (),
    *,
    strict: bool = True,
    runtime: AgentRuntime | None = None,
    **options: Any,
) -> AgentResult:
    """Run `agent` on `prompt` with its model answering from `events`; returns the result.

    The framework runs the agent for real: handoffs, tools (unless a `tool_result` supplies
    the result), output types and approval gates. `options` are `runtime.run()`'s
    (`context=`, `max_turns=`, `run_config=`) plus `require_approval=` and `approval_policy=`
    for the temporary runtime. `strict=False` lets the framework deal with tools and handoffs
    the agent does not have, and allows events the run never reaches.
    """
    return run_on_keel_loop("mock_run", mock_run_async(
        agent, prompt, events, strict=strict, runtime=runtime, **options))


async def mock_run_async(
    agent: Any,
    prompt: Any,
    events: Sequence[MockEvent] = (),
    *,
    strict: bool = True,
    runtime: AgentRuntime | None = None,
    **options: Any,
) -> AgentResult:
    """`mock_run()` for async tests."""
    script = Script(events, strict=strict)
    mockings = [importlib.import_module(f"keel.testing._{framework}")
                for framework in _frameworks(agent)]
    rules = {name: options.pop(name) for name in _RUNTIME_OPTIONS if name in options}
    if runtime is not None and rules:
        raise TypeError(f"Pass {', '.join(rules)} to the AgentRuntime you give mock_run.")
    own = runtime is None
    if runtime is None:
        runtime = _mock_runtime(ApprovalRules(rules.get("require_approval", ()),
                                              rules.get("approval_policy")))
    for mocking in mockings:
        options = mocking.run_options(script, options)
    # ADK's adapter asks for model responses: it gets the script in its own terms (in which
    # LangGraph's mock model and the tool suppliers of the other frameworks find it too).
    supplier = next((m.supplier(script) for m in mockings if hasattr(m, "supplier")), script)
    with supplying(supplier):
        result = await runtime.run_async(agent, prompt, **options)
        while result.status is Status.WAITING and _decide(runtime, result, script):
            result = await runtime.resume_async(result.execution_id, agent, **options)
    if own:
        runtime.delete(result.execution_id)  # the result holds all a test needs
    _check(script, result)
    return result


def _frameworks(agent: Any) -> list[str]:
    """The frameworks whose models the script answers for: the agent's, or a pipeline's
    stages' (one script, its turns taken by the stages in order)."""
    framework = adapter_for(agent).framework
    if framework != "pipeline":
        return [framework]
    from ..pipelines._build import AgentStage, Pipeline

    stages = agent.stages if isinstance(agent, Pipeline) else [agent]
    agents = [stage for stage in stages if isinstance(stage, AgentStage)]
    if len(agents) < len(stages):
        raise UnsupportedAgentError(
            "mock_run scripts a pipeline's stages one after another, but the branches of "
            "keel.parallel(...) run at the same time: their turns have no order to script. "
            "Test each branch with mock_run(branch, ...).")
    return sorted({stage.framework for stage in agents})


def _decide(runtime: AgentRuntime, result: AgentResult, script: Script) -> bool:
    """Give the script's decisions on pending calls; True when none is left pending."""
    handle = AgentHandle(result.execution_id, runtime=runtime)
    undecided = []
    for pending in result.pending_approvals:
        decision = _decision(script, result, pending)
        if decision is None:
            undecided.append(pending)
        elif decision.type == "approve":
            handle.approve(pending.call_id, reviewer="mock_run")
        elif decision.type == "respond":
            handle.respond(decision.value, call_id=pending.call_id, reviewer="mock_run")
        else:
            handle.reject(decision.reason or "", call_id=pending.call_id, reviewer="mock_run")
    if undecided:
        script.take_next("waiting")
    return not undecided


def _decision(script: Script, result: AgentResult, pending: PendingApproval) -> MockEvent | None:
    """The script's decision on a pending call: the one that follows the call. A pause the
    framework made on its own (a graph's interrupt()) has an id of its own: it takes the
    decision that follows the scripted call still running (its tool called interrupt()),
    else one that stands where the run paused (a node after the model's turn called it)."""
    if pending.call_id in script.called:
        return script.decisions.pop(pending.call_id, None)
    ended = {e.call_id for e in result.events if e.type == "tool_result"}
    pending_calls = {p.call_id for p in result.pending_approvals}
    running = [call_id for call_id in script.decisions
               if call_id not in ended and call_id not in pending_calls]
    if running:
        return script.decisions.pop(running[0])
    return script.take_next(*DECISIONS)


def _check(script: Script, result: AgentResult) -> None:
    if script.failure is not None:
        raise MockScriptError(f"{script.failure}\n\n{trace(result)}") from script.failure
    unused = script.unused()
    if unused and script.strict:
        where = "finished" if result.status.is_terminal else f"stopped {result.status.value}"
        hint = ""
        if result.status is Status.WAITING:
            names = ", ".join(p.tool_name for p in result.pending_approvals)
            own = any(p.call_id not in script.called for p in result.pending_approvals)
            hint = (f" It waits for a decision on {names}: answer the call with "
                    "MockEvent.approve() or MockEvent.reject(reason) right after it"
                    + (" (or MockEvent.respond(value))" if own else "")
                    + (" (the graph's own interrupt(): right after the tool call whose tool "
                       "makes it, or, from a node, where the run pauses)" if own else "")
                    + ", or end the script there with MockEvent.waiting().")
        listed = "\n".join(f"  {event}" for event in unused)
        raise MockScriptError(
            f"The run {where} before it reached these events of the script:\n{listed}\n"
            f"{hint.strip()} (Pass strict=False to allow unused events.)\n\n{trace(result)}"
        )
    if script.decisions and script.strict:  # a decision no call waited for: it ran ungated
        listed = "\n".join(f"  {decision} after the call to {script.called[call_id]}"
                           for call_id, decision in script.decisions.items())
        raise MockScriptError(
            f"The script decides calls that never waited for a decision:\n{listed}\nThey "
            "ran without one. Gate them (approval_required=True, require_approval=..., "
            "needs_approval), or take the decisions out of the script. (Pass strict=False "
            f"to allow unused events.)\n\n{trace(result)}"
        )


_RUNTIMES: OrderedDict[ApprovalRules, AgentRuntime] = OrderedDict()
_RUNTIMES_KEPT = 8
_lock = threading.Lock()


def _mock_runtime(rules: ApprovalRules) -> AgentRuntime:
    """The kept runtime for mock runs with these rules (on its own in-memory store)."""
    with _lock:
        runtime = _RUNTIMES.get(rules)
        if runtime is None:
            runtime = _RUNTIMES[rules] = AgentRuntime(
                memory_url(), require_approval=rules.require_approval,
                approval_policy=rules.policy, auto_resume=False)
            while len(_RUNTIMES) > _RUNTIMES_KEPT:
                _RUNTIMES.popitem(last=False)[1].close()
        _RUNTIMES.move_to_end(rules)
        return runtime


def memory_url() -> str:
    """A fresh SQLite database in memory, shared by the store's connections until closed."""
    return f"sqlite:///file:keel-mock-{uuid.uuid4().hex}?mode=memory&cache=shared&uri=true"
