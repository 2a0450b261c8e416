"""The Google ADK adapter.

keel runs the agent through ADK's own `Runner`, with one keel plugin (`_plugin`) added to the
app's plugins, on a session of its own: a resumed execution runs the invocation again from its
input, and every journaled model response and tool result is answered from the journal. A run
in a named session (`session_id=`) starts from the session the last completed run in it left,
which keel journals with that run's completion. State scoped to the app or the user
(`app:`, `user:` keys) carries into every later run of the app or the user (`_state`).
"""

from __future__ import annotations

from typing import Any

from google.adk.agents import BaseAgent
from google.adk.apps import App
from google.adk.artifacts import InMemoryArtifactService
from google.adk.events import Event
from google.adk.memory import InMemoryMemoryService
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types

from ...runtime._execution import Execution
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
        return isinstance(obj, BaseAgent | App)

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
        message = _user_message(input)
        final: tuple[str | None, str] = (None, "")
        try:
            async for event in runner.run_async(user_id=user_id, session_id=session.id,
                                                new_message=message,
                                                run_config=options.run_config):
                if event.is_final_response() and (messages := said(event.content)):
                    # The answer: the text without the model's thoughts (as ADK's output_key
                    # keeps it), or a mock run's last scripted message.
                    final = (event.author, messages[-1])
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
        author, text = final
        return Outcome("completed", output=text, agent=author)


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


def _app_name(agent: BaseAgent) -> str:
    """An app name ADK accepts (an identifier) for an agent run without an App."""
    return "".join(c if c.isalnum() else "_" for c in agent.name) or "keel"


ADAPTER = AdkAdapter()


def _user_message(input: Any) -> types.Content:
    """The run's input as ADK's `new_message`: a `types.Content` the caller gave (stored, so
    it arrives as its JSON form: it may carry images or files), or text."""
    if isinstance(input, dict) and "parts" in input:
        return types.Content.model_validate({**input, "role": input.get("role") or "user"})
    return types.Content(role="user", parts=[types.Part(text=str(input))])
