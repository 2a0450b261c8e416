"""Stand-ins for the helpdesk's CRM, knowledge base and outbox, which the agent's tools call.

The outbox keeps each reply once per idempotency key, as a helpdesk API that honours keys does:
a tool call that runs again after a crash (with the same key) posts nothing new.
"""

from __future__ import annotations

CUSTOMERS: dict[str, dict[str, object]] = {
    "ana@example.com": {"name": "Ana", "plan": "pro", "open_tickets": 0},
    "li@example.com": {"name": "Li", "plan": "pro", "open_tickets": 1},
    "ops@bigcorp.example": {"name": "BigCorp Ops", "plan": "enterprise", "open_tickets": 4},
}
ORDERS: dict[str, dict[str, object]] = {
    "ORD-5521": {"status": "shipped", "carrier": "DHL", "eta": "Thursday"},
}
KB: dict[str, str] = {
    "password": "Reset it at https://example.com/reset; the link is valid for 30 minutes.",
    "order": "Orders ship within two business days; tracking arrives by e-mail.",
}
OUTBOX: dict[str, dict[str, object]] = {}
"""Idempotency key -> {"ticket", "kind" ("sent" or "draft"), "text", "confidence"}."""


def post(kind: str, ticket: str, text: str, confidence: float, key: str) -> str:
    OUTBOX.setdefault(key, {"ticket": ticket, "kind": kind, "text": text,
                            "confidence": confidence})
    return "Reply sent." if kind == "sent" else "Draft saved for review."


def sent(ticket: str) -> list[str]:
    return [str(m["text"]) for m in OUTBOX.values() if m["ticket"] == ticket
            and m["kind"] == "sent"]


def drafts(ticket: str) -> list[str]:
    return [str(m["text"]) for m in OUTBOX.values() if m["ticket"] == ticket
            and m["kind"] == "draft"]
