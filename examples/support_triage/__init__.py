"""Support triage on the OpenAI Agents SDK: a triage agent hands tickets to billing, technical
and account specialists; `process_refund` waits for a human. Run it with `make demo`."""
