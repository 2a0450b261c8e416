"""Stand-ins for the billing, account and status systems the specialists' tools call.

`process_refund` is the one side effect that matters. When `SUPPORT_LEDGER` names a file,
each refund is appended to it (fsynced) with its idempotency key, so tests can count effects
across crashed processes.
"""

from __future__ import annotations

import json
import os

ACCOUNTS: dict[str, dict[str, object]] = {
    "cust_123": {"id": "cust_123", "email": "dana@example.com", "plan": "pro",
                 "billing_status": "active"},
}
INVOICES: dict[str, dict[str, object]] = {
    "INV-8821": {"id": "INV-8821", "customer_id": "cust_123", "amount_usd": 99.0,
                 "status": "paid", "charged": 2},
    "INV-1001": {"id": "INV-1001", "customer_id": "cust_123", "amount_usd": 20.0,
                 "status": "paid", "charged": 2},
}
TICKETS: dict[str, list[dict[str, object]]] = {
    "cust_123": [{"id": "TKT-001", "subject": "Login issue", "status": "resolved"}],
}
REFUNDS: list[dict[str, object]] = []


def refund(invoice_id: str, reason: str, idempotency_key: str | None) -> dict[str, object]:
    invoice: dict[str, object] = INVOICES.get(invoice_id, {"amount_usd": 0.0})
    record = {"invoice_id": invoice_id, "reason": reason, "amount_usd": invoice["amount_usd"],
              "idempotency_key": idempotency_key, "pid": os.getpid()}
    REFUNDS.append(record)
    ledger = os.environ.get("SUPPORT_LEDGER")
    if ledger:
        with open(ledger, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return {"status": "refunded", "invoice_id": invoice_id, "amount_usd": invoice["amount_usd"]}
