"""The helpdesk's webhook: `POST /webhook/ticket` starts the ticket's run and returns at once.

The ticket's id keys the run (`idempotency_key`): a helpdesk that retries a webhook (a timeout,
a 502) gets the same execution back, so no ticket is triaged, or answered, twice. With
`AgentRuntime(workers=True)` the app only queues the run and `keel worker` processes drive it.

Every event of every run is appended to `archive/<ticket id>.jsonl` as it happens, for the
reviewers (`review.py`): a follower per run reads the run's event stream from keel's store,
from this process, whichever process drives the run.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from keel import AgentHandle, AgentRuntime

from .agent import triage_agent


class Ticket(BaseModel):
    id: str
    customer_email: str
    body: str


def prompt(ticket: Ticket) -> str:
    return f"Ticket #{ticket.id} from {ticket.customer_email}:\n\n{ticket.body}"


def create_app(runtime: AgentRuntime, archive: Archive) -> FastAPI:
    app = FastAPI(title="ticket automation")

    @app.post("/webhook/ticket")
    def on_ticket(ticket: Ticket) -> dict[str, str]:
        handle = runtime.start(triage_agent, prompt(ticket), idempotency_key=f"ticket:{ticket.id}")
        archive.follow(ticket.id, handle)
        return {"ticket": ticket.id, "execution_id": handle.execution_id,
                "status": handle.status().value}

    return app


class Archive:
    """Appends each run's events to one JSON-lines file per ticket, once each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._followers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def follow(self, ticket_id: str, handle: AgentHandle) -> None:
        """Archive the run's events from the first one not archived yet, until it settles."""
        with self._lock:
            follower = self._followers.get(ticket_id)
            if follower is not None and follower.is_alive():
                return  # a retried webhook: this run is being archived already
            follower = threading.Thread(target=self._archive, args=(ticket_id, handle),
                                        name=f"archive {ticket_id}", daemon=True)
            self._followers[ticket_id] = follower
            follower.start()

    def wait(self, ticket_id: str, timeout: float = 60) -> None:
        follower = self._followers.get(ticket_id)
        if follower is not None:
            follower.join(timeout)

    def events(self, ticket_id: str) -> list[dict[str, Any]]:
        path = self.directory / f"{ticket_id}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def _archive(self, ticket_id: str, handle: AgentHandle) -> None:
        archived = self.events(ticket_id)
        after = int(archived[-1]["seq"]) if archived else 0
        with open(self.directory / f"{ticket_id}.jsonl", "a") as out:
            for event in handle.stream(after=after):
                out.write(json.dumps(event.model_dump(mode="json")) + "\n")
                out.flush()
