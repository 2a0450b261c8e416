"""The guard rails keel runs the drafting agent with; the graph itself is unchanged."""

from __future__ import annotations

from keel import AgentRuntime, Budget, Deny, Rule

ALLOWED = ("get_ticket", "get_customer", "search_help_center", "save_draft")

RULES = [
    *(Rule(name) for name in ALLOWED),
    Rule("*", then=Deny("Drafts only: a human reviews and sends every reply. Save your answer "
                        "with save_draft."), name="draft, never send"),
]
"""An allow-list: the reading and drafting tools run; anything else is refused, and the
agent hears why (it then drafts). The decision and the rule that made it are recorded."""

BUDGET = Budget(max_steps=20, max_tool_calls=8, max_seconds=45)


def drafting_runtime(database_url: str | None = None) -> AgentRuntime:
    return AgentRuntime(database_url, approval_policy=RULES, budget=BUDGET, redact=True)
