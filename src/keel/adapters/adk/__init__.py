"""The Google ADK adapter.

keel runs the agent through ADK's own `Runner`, with one keel plugin (`_plugin`) added to the
app's plugins, on a session of its own: a resumed execution runs the invocation again from its
input, and every journaled model response and tool result is answered from the journal. A run
in a named session (`session_id=`) starts from the session the last completed run in it left,
which keel journals with that run's completion. State scoped to the app or the user
(`app:`, `user:` keys) carries into every later run of the app or the user (`_state`).

A `Workflow` (ADK 2's graph of agent and function nodes) runs the same way: its agents' model
calls and tools are journaled, its function nodes are code that runs again on a resume, and a
node's `RequestInput` is a keel pause, answered (`respond(value)`, approve, reject) by running
the workflow again up to it and then sending ADK the answer, as a client of ADK would.
"""

from __future__ import annotations

from typing import Any

from google.adk.apps import App
from google.adk.artifacts import InMemoryArtifactService
from google.adk.events import Event
from google.adk.memory import InMemoryMemoryService
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.utils._function_call_names import REQUEST_INPUT_FUNCTION_CALL_NAME
from google.adk.workflow import BaseNode
from google.genai import types

from ..._errors import _Suspended
from ...runtime._execution import ApprovalRequest, Execution
from ...runtime._json import loads
from .. import Outcome, RunOptions
from ._messages import said
from ._plugin import KeelPlugin
from ._state import SharedState

__all__ = ["ADAPTER", "AdkAdapter"]

_USER = "keel"


class AdkAdapter:
    framework = "adk"

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, BaseNode | App)  # an agent, a Workflow, or an app of either

    def agent_name(self, agent: Any) -> str:
        root = agent.root_agent if isinstance(agent, App) else agent
        return str(getattr(root, "name", None) or agent.name)

    def output_type(self, agent: Any) -> type | None:
        return None  # the final response's text

    async def execute(
        self, execution: Execution, agent: Any, input: Any, options: RunOptions
    ) -> Outcome:
        app = agent if isinstance(agent, App) else App(name=_app_name(agent), root_agent=agent)
        keel = KeelPlugin(execution)
        app = app.model_copy(update={"plugins": [*app.plugins, keel]})
        sessions = InMemorySessionService()
        user_id = options.user_id or _USER
        session = await sessions.create_session(
            app_name=app.name, user_id=user_id, session_id=options.session_id or execution.id)
        for earlier in _conversation_so_far(execution):  # an ADK session continued
            await sessions.append_event(session, Event.model_validate(earlier))
        shared = SharedState(execution, app.name, user_id)
        shared.restore(sessions)
        # As ADK's InMemoryRunner has them: tools that save artifacts or search memory work
        # for the run (a resumed run holds what its live steps save, not its replayed ones').
        runner = Runner(app=app, session_service=sessions,
                        artifact_service=InMemoryArtifactService(),
                        memory_service=InMemoryMemoryService())
        message: types.Content | None = _user_message(input)
        answer = _Answer()
        try:
            while message is not None:
                async for event in runner.run_async(user_id=user_id, session_id=session.id,
                                                    new_message=message,
                                                    run_config=options.run_config):
                    answer.note(event)
                message = _inputs_given(execution, answer)
        finally:
            keel.end_unfinished()
        shared.journal(sessions)
        if options.conversation:  # the session as this run leaves it, for the next one
            ended = await sessions.get_session(app_name=app.name, user_id=user_id,
                                               session_id=session.id)
            events = [e.model_dump(mode="json", exclude_none=True)
                      for e in (ended.events if ended else [])]
            execution.record(_SESSION, kind="session", name=session.id, payload=events,
                             defer=True)
        return Outcome("completed", output=answer.output, agent=answer.author)


_SESSION = "adk:session"
"""The journal step holding an ADK session's events as a run in it left them."""


def _conversation_so_far(execution: Execution) -> list[Any]:
    """The session events of the last run that completed in this execution's conversation.

    Sessions live in keel's store this way: each completed run journals its session, and the
    next run in the same session starts from it (a resumed run starts from it again, and its
    own journal replays the rest)."""
    if not execution.row.conversation:
        return []
    earlier = execution.store.previous_in_conversation(execution.row)
    if earlier is None:
        return []
    step = execution.store.step(earlier, _SESSION)  # that run's last write held it
    return list(loads(step.payload) or []) if step is not None else []


class _Answer:
    """What a run answers, from ADK's events: the root's output (a Workflow's last node's,
    any value), else the final response's text without the model's thoughts (as ADK's
    output_key keeps it; a mock run's last scripted message). And the inputs its workflow's
    nodes request (RequestInput), by their nodes' paths, which a run made again repeats (the
    requests' ids are random)."""

    def __init__(self) -> None:
        self.author: str | None = None
        self.output: Any = ""
        self.requests: dict[str, types.FunctionCall] = {}

    def note(self, event: Event) -> None:
        node = event.node_info
        if event.output is not None and node and any("/" not in path
                                                     for path in node.output_for or ()):
            self.author, self.output = event.author, event.output
        elif event.is_final_response() and (messages := said(event.content)):
            self.author, self.output = event.author, messages[-1]
        parts = event.content.parts if event.content and event.content.parts else []
        for call in (part.function_call for part in parts if part.function_call):
            if call.name == REQUEST_INPUT_FUNCTION_CALL_NAME and node:
                self.requests[f"{_REQUEST}{node.path}"] = call


def _inputs_given(execution: Execution, answer: _Answer) -> types.Content | None:
    """The message that answers the inputs the run's nodes requested, once each is decided;
    None when none was requested. Else the run waits (raises _Suspended)."""
    requests, answer.requests = answer.requests, {}
    if not requests:
        return None
    if any(execution.decision(key) is None for key in requests):
        execution.suspend([_asking(key, call) for key, call in requests.items()])
        raise _Suspended
    return types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        id=call.id, name=REQUEST_INPUT_FUNCTION_CALL_NAME, response=_given(execution, key)))
        for key, call in requests.items()])


def _asking(key: str, call: types.FunctionCall) -> ApprovalRequest:
    """A node's RequestInput as keel's pause: its message and payload are what it asks."""
    asked = {name: value for name, value in (call.args or {}).items()
             if name in ("message", "payload") and value is not None}
    return ApprovalRequest(call_id=key, tool_name="request_input", args=asked,
                           agent=_node(key), kind="interrupt",
                           rule="RequestInput in the workflow")


def _given(execution: Execution, key: str) -> dict[str, Any]:
    """A decided input as ADK takes it: the value given to respond() (a dict, or wrapped as
    ADK's clients wrap one), else the decision, as ADK's confirmations say it."""
    value = execution.response(key)
    if value is not None:
        return value if isinstance(value, dict) else {"result": value}
    decided = execution.decision(key)
    assert decided is not None
    if decided.action == "approve":
        return {"confirmed": True}
    return {"confirmed": False, "reason": decided.reason}


def _node(key: str) -> str:
    """The name of the node whose request `key` is: `request_input:wf@1/review@1` -> review."""
    return key.rsplit("/", 1)[-1].split("@", 1)[0]


_REQUEST = "request_input:"


def _app_name(agent: BaseNode) -> str:
    """An app name ADK accepts (an identifier) for an agent run without an App."""
    return "".join(c if c.isalnum() else "_" for c in agent.name) or "keel"


ADAPTER = AdkAdapter()


def _user_message(input: Any) -> types.Content:
    """The run's input as ADK's `new_message`: a `types.Content` the caller gave (stored, so
    it arrives as its JSON form: it may carry images or files), or text."""
    if isinstance(input, dict) and "parts" in input:
        return types.Content.model_validate({**input, "role": input.get("role") or "user"})
    return types.Content(role="user", parts=[types.Part(text=str(input))])
