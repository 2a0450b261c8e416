"""Draft, never send: a LangGraph support agent that reads a ticket, looks the customer up,
searches the help center and saves a draft reply with its sources, for a human to send.

keel adds the guard rails, without a line of the graph changed (`guardrails.py`):

- a tool allow-list: the agent may read and save drafts; any other tool (its `send_email`, for
  one) is refused, and the agent is told to draft instead;
- a budget: 20 steps, 8 tool calls, 45 s of running time, so a ticket that sends the model
  round in circles (a prompt injection, say) stops instead of burning tokens;
- redaction: e-mail addresses, card numbers and API keys that customers paste into tickets
  never reach keel's store, its event stream or an export.

`python -m examples.support_drafting` drafts three tickets and shows what each run did.
"""
