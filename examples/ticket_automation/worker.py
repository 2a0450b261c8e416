"""The runtime for `keel worker` when the webhook hands its runs to workers:

    keel worker examples.ticket_automation.agent:triage_agent \\
        examples.ticket_automation.worker:runtime

Its store is $KEEL_DATABASE_URL (the one the webhook's `AgentRuntime(workers=True)` queues
to); its rules are the agent's. A worker applies its own runtime's rules to the runs it drives.
"""

from __future__ import annotations

from keel import AgentRuntime

from .agent import RULES

runtime = AgentRuntime(approval_policy=RULES)
