"""A private copy of the user's agent graph with keel's wrappers; the user's stays as it is.

Every agent is cloned with its function tools wrapped (journal, approvals, idempotency key),
its model wrapped when it is a Model instance, and its handoffs and agent tools (made by
`agent.as_tool()`) pointed at the clones. The copy is built once per agent graph and approval
rules, and rebuilt when anything in the graph changes (an added tool, new instructions):
`wrapped_graph` compares the graph's parts by identity on every run, which costs far less
than cloning it again.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Awaitable
from functools import partial
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    GuardrailFunctionOutput,
    Handoff,
    function_tool,
    handoff,
)
from agents.agent_tool_state import get_agent_tool_state_scope, peek_agent_tool_run_result
from agents.models.interface import Model
from agents.tool import invoke_function_tool
from agents.tool_context import ToolContext

from ..._errors import UnsupportedAgentError
from ..._tool import ToolSpec, tool_spec
from ...runtime._approvals import ApprovalRules
from ...runtime._supplied import current_supplier
from ._items import JOURNALED_INVOKES, ContextState, parse_args
from ._journal import JournaledModel, current_journal, journaled

__all__ = ["wrapped_graph"]

_CACHE_SIZE = 64
# Keyed by the rules' value, not their identity: every runtime has its own rules object, and
# runtimes with the same rules (a mock run's, say) share the copy.
_cache: OrderedDict[tuple[int, ApprovalRules], tuple[list[Any], Agent[Any]]] = OrderedDict()
_lock = threading.Lock()


def wrapped_graph(root: Agent[Any], rules: ApprovalRules) -> Agent[Any]:
    """The wrapped copy of the graph reachable from `root`, gated by `rules`."""
    parts = _parts(root)
    key = (id(root), rules)
    with _lock:
        entry = _cache.get(key)
        if entry is not None and _same(entry[0], parts):
            _cache.move_to_end(key)
            return entry[1]
    clone = _AgentGraph(rules).clone(root)
    with _lock:
        _cache[key] = (parts, clone)  # parts keep every compared object alive
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return clone


class _AgentGraph:
    def __init__(self, rules: ApprovalRules) -> None:
        self.rules = rules
        self._clones: dict[int, Agent[Any]] = {}
        self._originals: list[Agent[Any]] = []  # keeps the ids above valid

    def clone(self, agent: Agent[Any]) -> Agent[Any]:
        existing = self._clones.get(id(agent))
        if existing is not None:
            return existing
        self._originals.append(agent)
        changes: dict[str, Any] = {
            "tools": [self._tool(t, agent.name) for t in agent.tools],
            "handoffs": list(agent.handoffs),
            "input_guardrails": [_guardrail(g) for g in agent.input_guardrails],
            "output_guardrails": [_guardrail(g) for g in agent.output_guardrails],
        }
        if isinstance(agent.model, Model):
            changes["model"] = JournaledModel(agent.model)
        clone = agent.clone(**changes)
        self._clones[id(agent)] = clone
        clone.handoffs = [self._handoff(h) for h in agent.handoffs]
        return clone

    def _handoff(self, item: Agent[Any] | Handoff[Any, Any]) -> Handoff[Any, Any]:
        spec = handoff(item) if isinstance(item, Agent) else item  # as the SDK does for agents
        original = spec.on_invoke_handoff
        target = spec._agent_ref() if spec._agent_ref is not None else None

        async def invoke(context: Any, input_json: str) -> Agent[Any]:
            agent = await current_journal().hand_off(context, input_json, original, target)
            return self.clone(agent)

        wrapped = dataclasses.replace(spec, on_invoke_handoff=invoke)
        if isinstance(target, Agent):
            wrapped._agent_ref = weakref.ref(self.clone(target))
        return wrapped

    def _tool(self, tool: Any, agent_name: str) -> Any:
        spec = tool_spec(tool)
        if spec is not None and spec.func is not None and not isinstance(tool, FunctionTool):
            tool = function_tool(spec.func)  # a plain function marked with @keel.tool
        if not isinstance(tool, FunctionTool):
            return tool  # hosted and MCP tools run as the SDK runs them
        if tool._is_agent_tool:
            tool = self._agent_tool(tool)
        return _wrap_tool(tool, spec, self.rules, agent_name)

    def _agent_tool(self, tool: FunctionTool) -> FunctionTool:
        """The tool made by `agent.as_tool()`, running the wrapped copy of its agent, so that
        the nested run's model turns and tools are journaled and gated like the outer run's.

        The SDK offers no way to rebuild such a tool around another agent: its invocation
        closes over the agent and the as_tool() options. keel rebinds that closure to the
        clone (and to a journaled copy of an own `run_config`); where this SDK version's tool
        is shaped otherwise, the run is refused rather than run with its gates bypassed.
        """
        invoker, agent = tool.on_invoke_tool, tool._agent_instance
        impl = getattr(invoker, "_invoke_tool_impl", None)
        names = getattr(getattr(impl, "__code__", None), "co_freevars", ())
        cells = dict(zip(names, getattr(impl, "__closure__", None) or (), strict=False))
        if not isinstance(agent, Agent) or "self" not in cells or \
                cells["self"].cell_contents is not agent:
            raise UnsupportedAgentError(
                f"keel cannot run the agent tool {tool.name!r} (made by Agent.as_tool()) with "
                "this version of openai-agents: its agent's tools would run without keel's "
                "journal and approval gates. Use the openai-agents version keel supports, or "
                "hand off to the agent instead."
            )
        clone = self.clone(agent)
        rebound: dict[str, Any] = {"self": clone}
        own_config = cells["run_config"].cell_contents if "run_config" in cells else None
        if own_config is not None:
            rebound["run_config"] = journaled(own_config)
        assert impl is not None
        closure = tuple(types.CellType(rebound[n]) if n in rebound else cells[n] for n in names)
        impl = types.FunctionType(impl.__code__, impl.__globals__, impl.__name__,
                                  impl.__defaults__, closure)
        invoker_type: Any = type(invoker)  # the SDK's failure-handling wrapper
        return dataclasses.replace(
            tool, on_invoke_tool=invoker_type(impl, invoker._on_handled_error),  # type: ignore[attr-defined]
            _agent_instance=clone)


def _wrap_tool(tool: FunctionTool, spec: ToolSpec | None, rules: ApprovalRules,
               agent: str) -> FunctionTool:
    native = tool.needs_approval
    flag = "@keel.tool(approval_required=True)" if spec and spec.approval_required else None
    gated = rules.may_gate(tool.name, flagged=flag is not None or native is not False)
    invoke_original = tool.on_invoke_tool
    changes: dict[str, Any] = {}
    if tool.timeout_seconds is not None:
        # The SDK times a call out around on_invoke_tool, out of keel's sight: timed inside
        # it, as the SDK would, the outcome the model sees is journaled like any result.
        invoke_original = partial(_invoke_timed, tool)
        changes["timeout_seconds"] = None
    if tool._is_agent_tool:
        invoke_original = _nested_run(invoke_original)

    async def needs_approval(context: Any, params: dict[str, Any], call_id: str) -> bool:
        flagged_by = flag
        if flagged_by is None and native is not False:
            asked: Any = native(context, params, call_id) if callable(native) else native
            if inspect.isawaitable(asked):
                asked = await asked
            flagged_by = "needs_approval" if asked else None
        verdict = current_journal().execution.verdict(
            call_id, tool.name, params, agent=agent, flagged_by=flagged_by)
        return verdict.action == "ask"

    async def on_invoke_tool(context: Any, arguments: str) -> Any:
        ex = current_journal().execution
        call_id = context.tool_call_id
        try:
            context.idempotency_key = f"{ex.id}:{call_id}"
        except AttributeError:  # a context type that refuses new attributes
            pass
        try:
            return await ex.run_tool(
                call_id=call_id,
                tool_name=tool.name,
                agent=agent,
                args=parse_args(arguments),
                invoke=lambda: invoke_original(context, arguments),
                flagged_by=flag,
                gated=gated,
                unsafe=spec is not None and spec.unsafe,
                state=ContextState.of(context.context),
            )
        except _NestedRunPaused as paused:
            return paused.output

    # The SDK reads these on every call (to pick the context it passes); as strings, under
    # this module's future import, they would be compiled again each time.
    on_invoke_tool.__annotations__ = {"context": ToolContext[Any], "arguments": str}
    JOURNALED_INVOKES.add(on_invoke_tool)
    changes["on_invoke_tool"] = on_invoke_tool
    if gated:
        changes["needs_approval"] = needs_approval
    return dataclasses.replace(tool, **changes)


class _NestedRunPaused(BaseException):
    """An agent tool's nested run stopped at an approval: the call has no result to journal.
    The SDK carries the nested interruptions up to the outer run, which pauses; once they are
    decided, the call runs again and its nested run replays up to them."""

    def __init__(self, output: Any) -> None:
        self.output = output


def _invoke_timed(tool: FunctionTool, context: Any, arguments: str) -> Awaitable[Any]:
    return invoke_function_tool(function_tool=tool, context=context, arguments=arguments)


def _nested_run(invoke: Any) -> Any:
    """An agent tool's invocation, journaled in the scope of its call."""

    async def invoke_nested(context: Any, arguments: str) -> Any:
        with current_journal().nested(context.tool_call_id):
            output = await invoke(context, arguments)
        # Where the SDK itself looks for the nested run's interruptions after the call.
        call = context.tool_call
        nested = call and peek_agent_tool_run_result(
            call, scope_id=get_agent_tool_state_scope(context))
        if getattr(nested, "interruptions", None):
            raise _NestedRunPaused(output)
        return output

    return invoke_nested


def _guardrail(guardrail: Any) -> Any:
    """The guardrail, answering from a mock run's script when it has an outcome for it."""
    name, run = guardrail.get_name(), guardrail.guardrail_function

    def supplied_or_run(*args: Any) -> Any:
        supplier = current_supplier()
        outcome = supplier.guardrail(name) if supplier else None
        if outcome is None:
            return run(*args)
        tripped, message = outcome
        return GuardrailFunctionOutput(output_info=message, tripwire_triggered=tripped)

    return dataclasses.replace(guardrail, guardrail_function=supplied_or_run, name=name)


def _parts(root: Agent[Any]) -> list[Any]:
    """Every object the wrapped copy is built from: agents, tools, handoffs and their fields."""
    parts: list[Any] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        agent = stack.pop()
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        parts.extend(_fields(agent))
        for tool in agent.tools:
            parts.extend(_fields(tool))
            inner = getattr(tool, "_agent_instance", None)  # agent.as_tool()'s agent
            if isinstance(inner, Agent):
                stack.append(inner)
        for item in agent.handoffs:
            if isinstance(item, Agent):
                stack.append(item)
                continue
            parts.extend(_fields(item))
            target = item._agent_ref() if item._agent_ref is not None else None
            if isinstance(target, Agent):
                stack.append(target)
    return parts


def _fields(obj: Any) -> list[Any]:
    """The object and its attributes' values (a dataclass's fields are among them)."""
    values = getattr(obj, "__dict__", None)
    return [obj] if values is None else [obj, *values.values()]


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
