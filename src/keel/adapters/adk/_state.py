"""ADK state shared beyond one session, kept in keel's store: `app:` keys (every user of the
app) and `user:` keys (every session of one user), as ADK's own session services keep them.

Each run that completes having changed a scope's state journals that scope's newest state
with its completion, under a step key naming the scope (`adk:app_state:<app>`,
`adk:user_state:<app>/<user>`), and every run starts from the newest that a completed run
journaled, so the state survives the process. A run journals the newest state as it is when
the run ends with the keys this run changed on top, so two runs of one user at the same time
keep each other's keys (a key both changed keeps the later one's value). `temp:` keys live
for one run, as in ADK; the session's own keys travel with its session (see `__init__`).
"""

from __future__ import annotations

from typing import Any, Literal

from google.adk.sessions import InMemorySessionService

from ...runtime._events import Status
from ...runtime._execution import Execution
from ...runtime._json import jsonable, loads
from ...runtime._store import Store

__all__ = ["SharedState"]

Scope = Literal["app", "user"]

# `kind = 'state'` lets the store use its index of these steps (keel_steps_shared_state).
_NEWEST = ("SELECT s.payload FROM keel_steps s JOIN keel_executions e ON e.id = s.execution_id "
           "WHERE s.kind = 'state' AND s.step_key = :key AND s.status = 'done' "
           "AND e.status = :completed ORDER BY s.finished_at DESC LIMIT 1")


class SharedState:
    """The app's and the user's state for one run, read from the store when it starts."""

    def __init__(self, execution: Execution, app: str, user: str) -> None:
        self.execution, self.app, self.user = execution, app, user
        self.steps: dict[Scope, str] = {
            "app": f"adk:app_state:{app}", "user": f"adk:user_state:{app}/{user}"}
        self.started = {scope: _newest(execution.store, key) for scope, key in self.steps.items()}

    def restore(self, sessions: InMemorySessionService) -> None:
        """Give the run's session service the state the run starts from: after the session's
        earlier events, whose changes to it may be older."""
        for scope, held in self._held(sessions).items():
            held.update(self.started[scope])

    def journal(self, sessions: InMemorySessionService) -> None:
        """Journal, with the run's completion, the state of each scope the run changed."""
        for scope, held in self._held(sessions).items():
            changed = {key: value for key, value in jsonable(held).items()
                       if key not in self.started[scope] or self.started[scope][key] != value}
            if changed:
                key = self.steps[scope]
                newest = {**_newest(self.execution.store, key), **changed}
                self.execution.record(key, kind="state", name=f"{scope}:{self.app}",
                                      payload=newest, defer=True)

    def _held(self, sessions: InMemorySessionService) -> dict[Scope, dict[str, Any]]:
        """Each scope's state as the session service holds it (its keys without prefix)."""
        return {"app": sessions.app_state.setdefault(self.app, {}),
                "user": sessions.user_state.setdefault(self.app, {}).setdefault(self.user, {})}


def _newest(store: Store, step_key: str) -> dict[str, Any]:
    """The state the last completed run that changed it journaled under `step_key`."""
    with store.reads() as read:
        rows = read(_NEWEST, key=step_key, completed=Status.COMPLETED.value)
    return dict(loads(rows[0]["payload"])) if rows else {}
