"""`python -m examples.ticket_automation`: four webhook calls (one a retry) through the app, in
this process, on a scripted model; then what was sent, what was drafted, and the reviewers'
borderline cases.

The store is $KEEL_DATABASE_URL, else a SQLite file in a temporary directory (with the archive).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # before the SDK loads

from fastapi.testclient import TestClient

from keel import AgentRuntime

from . import crm, review
from .agent import RULES
from .webhook import Archive, create_app


def main() -> int:
    batch = uuid.uuid4().hex[:4]  # ticket ids are run keys: a new batch each time
    tickets = [
        {"id": f"T-1001-{batch}", "customer_email": "ana@example.com",
         "body": "I forgot my password and can't log in."},
        {"id": f"T-1002-{batch}", "customer_email": "li@example.com",
         "body": "Where is my order ORD-5521?"},
        {"id": f"T-1003-{batch}", "customer_email": "ops@bigcorp.example",
         "body": "Please cancel our renewal and refund the last invoice."},
    ]
    with tempfile.TemporaryDirectory(prefix="tickets-") as work:
        url = os.environ.get("KEEL_DATABASE_URL") or f"sqlite:///{work}/keel.db"
        archive = Archive(Path(work) / "archive")
        with AgentRuntime(url, approval_policy=RULES) as runtime:
            client = TestClient(create_app(runtime, archive))
            for ticket in [*tickets, tickets[1]]:  # the helpdesk retries T-1002's webhook
                answer = client.post("/webhook/ticket", json=ticket).json()
                print(f"webhook {ticket['id']}: execution {answer['execution_id']}")
            for ticket in tickets:
                archive.wait(ticket["id"])  # the archive has the run's events up to its end
        print()
        for ticket in tickets:
            events = archive.events(ticket["id"])
            print(f"{ticket['id']}: {len(crm.sent(ticket['id']))} sent, "
                  f"{len(crm.drafts(ticket['id']))} drafted, {len(events)} events archived")
        print("\nBorderline replies (confidence 0.85-0.92), for review:")
        for reply in review.replies(archive.directory, 0.85, 0.92):
            print(f"  {reply.ticket} {reply.tool} at {reply.confidence:.2f}: {reply.outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
