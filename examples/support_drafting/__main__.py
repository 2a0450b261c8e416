"""`python -m examples.support_drafting`: the drafting agent on three tickets, on a scripted
model, with keel's allow-list, budget and redaction; then what each run did and what keel
stored of the first ticket. The store is $KEEL_DATABASE_URL, else a temporary SQLite file."""

from __future__ import annotations

import os
import tempfile

from . import helpdesk
from .graph import drafting_agent
from .guardrails import drafting_runtime


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="drafting-") as work:
        url = os.environ.get("KEEL_DATABASE_URL") or f"sqlite:///{work}/keel.db"
        with drafting_runtime(url) as runtime:
            for ticket in helpdesk.TICKETS:
                result = runtime.run(drafting_agent, f"Draft a reply to ticket {ticket}.")
                calls = ", ".join(f"{c.name} [{c.status}]" for c in result.tool_calls)
                print(f"{ticket}: {result.status.value}; {calls}")
                if result.budget_exceeded:
                    stop = result.budget_exceeded
                    print(f"  stopped by {stop.budget} ({stop.used} of {stop.limit}) before "
                          f"{stop.next_step}")
                if ticket in helpdesk.DRAFTS:
                    print(f"  draft, citing {helpdesk.DRAFTS[ticket]['sources']}: "
                          f"{helpdesk.DRAFTS[ticket]['text']}")
                if ticket == "T-3301":
                    stored = next(e for e in runtime.result(result.execution_id).events
                                  if e.type == "tool_result" and e.tool_name == "get_ticket")
                    first = result.execution_id
            print(f"\nSent by the agent: {len(helpdesk.SENT)} e-mails")
            content = stored.result.get("content") if isinstance(stored.result, dict) \
                else stored.result  # a LangGraph ToolMessage, stored as JSON data
            print(f"What keel stored of T-3301's ticket (run {first}):\n  {content}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
