"""Ticket automation: a webhook worker that triages each new support ticket with an OpenAI
Agents SDK agent and sends a reply only when the agent is confident, else leaves a draft.

- `agent.py`: the triage agent, its tools (CRM, knowledge base, outbox) and the rules that let
  `send_reply` through only at confidence >= 0.9 (below that keel tells the agent to draft);
- `webhook.py`: the FastAPI app the helpdesk calls; a ticket's id keys its run, so a retried
  webhook never starts a second run (or sends a second reply), and every event of each run is
  archived for review;
- `review.py`: the reviewers' query over the archive ("drafts and sends with confidence
  between 0.85 and 0.92");
- `worker.py`: the runtime `keel worker` uses when the webhook hands its runs to workers.

`python -m examples.ticket_automation` posts a few tickets to the app (one of them twice) and
prints what happened.
"""
