"""The order desk: one agent, six tools of every class, and the scripted model's moves.

The agent looks the order up, reserves stock, charges the card (gated: a human approves it),
books the shipment and sends the receipt (in one turn when the ticket says "together"), logs
an audit line and answers. Tool classes, as research/durability.md section 8 names them:

    read-only        lookup_order
    idempotent-keyed reserve_stock, charge_card, book_shipment: a fake external API that
                     deduplicates on `keel.current_call().idempotency_key`
    unsafe           send_receipt, log_audit: an effect that nothing deduplicates

The moves are a pure function of the ticket and the tool results so far, with no hidden cursor,
so a fresh process carries a crashed run on exactly where it stopped, and results hold nothing
specific to an execution, so a recovered run answers what the reference run answers.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from typing import Any

from chaos import ledger

__all__ = [
    "GATED", "KEYED", "READ_ONLY", "TOOLS", "UNSAFE", "Call", "Order", "Say", "next_move",
    "thinking_time",
    "book_shipment", "charge_card", "log_audit", "lookup_order", "reserve_stock",
    "send_receipt",
]

READ_ONLY = frozenset({"lookup_order"})
KEYED = frozenset({"reserve_stock", "charge_card", "book_shipment"})
UNSAFE = frozenset({"send_receipt", "log_audit"})
GATED = frozenset({"charge_card"})
TOOLS = READ_ONLY | KEYED | UNSAFE


@dataclass(frozen=True)
class Order:
    """One seed's workload: the ticket the run starts from."""

    number: int
    sku: str
    qty: int
    together: bool  # shipment and receipt in one turn: two tool calls at once

    @classmethod
    def from_seed(cls, seed: int) -> Order:
        rng = random.Random(seed)
        return cls(rng.randrange(1000, 10000), rng.choice(["WIDGET", "GADGET", "SPROCKET"]),
                   rng.randrange(1, 6), rng.random() < 0.5)

    @property
    def ticket(self) -> str:
        how = "together" if self.together else "one after the other"
        return (f"Order ORD-{self.number}: {self.qty} x {self.sku}. Ship it and send the "
                f"receipt {how}.")


# -- the tools (each framework wraps these functions) ---------------------------------------


def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up: its customer and unit price."""
    ledger.run("lookup_order")
    n = _number(order_id)
    return {"order_id": order_id, "customer": f"cust-{n % 997}",
            "unit_price": float(10 + n % 90) + 0.5}


def reserve_stock(order_id: str, sku: str, qty: int) -> dict[str, Any]:
    """Reserve stock for an order at the warehouse."""
    ledger.run("reserve_stock")
    return ledger.request("reserve_stock", {"reservation": f"RSV-{_number(order_id)}",
                                            "sku": sku, "qty": qty})


def charge_card(order_id: str, amount: float) -> dict[str, Any]:
    """Charge the customer's card for an order. Requires human approval."""
    ledger.run("charge_card")
    return ledger.request("charge_card", {"charge": f"CH-{_number(order_id)}",
                                          "amount": amount})


def book_shipment(order_id: str) -> dict[str, Any]:
    """Book the shipment of an order with the carrier."""
    ledger.run("book_shipment")
    return ledger.request("book_shipment", {"tracking": f"TRK-{_number(order_id)}"})


def send_receipt(order_id: str) -> dict[str, Any]:
    """Email the receipt of an order to its customer."""
    ledger.run("send_receipt")
    return ledger.effect("send_receipt", {"receipt": f"RCPT-{_number(order_id)}"})


def log_audit(order_id: str, summary: str) -> dict[str, Any]:
    """Append a line about an order to the audit log."""
    ledger.run("log_audit")
    return ledger.effect("log_audit", {"audit": f"AUD-{_number(order_id)}",
                                       "summary": summary})


def _number(order_id: str) -> int:
    found = re.search(r"\d+", order_id)
    return int(found[0]) if found else 0


# -- the scripted model ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Say:
    text: str


def thinking_time() -> float:
    """Seconds a model call takes ($CHAOS_MODEL_DELAY, default none): trials at the lease
    renewal need runs that last a few heartbeats."""
    return float(os.environ.get("CHAOS_MODEL_DELAY") or 0)


def next_move(ticket: str, results: dict[str, str]) -> list[Call] | Say:
    """The model's next move, from the ticket and the results so far (tool name -> output
    text, in whatever form the framework gives it: only the values in it are read)."""
    found = re.search(r"ORD-(\d+): (\d+) x (\w+)", ticket)
    if found is None:
        return Say("I could not find an order in this ticket.")
    order_id, qty, sku = f"ORD-{found[1]}", int(found[2]), found[3]
    if "lookup_order" not in results:
        return [Call("lookup_order", {"order_id": order_id})]
    if "reserve_stock" not in results:
        return [Call("reserve_stock", {"order_id": order_id, "sku": sku, "qty": qty})]
    if "charge_card" not in results:
        price = _value(results["lookup_order"], r"unit_price\W+([\d.]+)")
        return [Call("charge_card", {"order_id": order_id,
                                     "amount": round(float(price) * qty, 2)})]
    ship = Call("book_shipment", {"order_id": order_id})
    receipt = Call("send_receipt", {"order_id": order_id})
    missing = [c for c in (ship, receipt) if c.name not in results]
    if missing:
        return missing if "together" in ticket else missing[:1]
    if "log_audit" not in results:
        return [Call("log_audit", {"order_id": order_id,
                                   "summary": f"{qty} x {sku} charged and shipped"})]
    charge = results["charge_card"]
    amount = float(_value(charge, r"amount\W+([\d.]+)"))
    reservation = _value(results["reserve_stock"], r"(RSV-\d+)")
    charged = _value(charge, r"(CH-\d+)")
    tracking, receipt_no = (_value(results["book_shipment"], r"(TRK-\d+)"),
                            _value(results["send_receipt"], r"(RCPT-\d+)"))
    audit = _value(results["log_audit"], r"(AUD-\d+)")
    return Say(f"Order {order_id} is done: {reservation} reserved, {charged} charged "
               f"${amount:.2f}, {tracking} booked, receipt {receipt_no} sent, audit {audit} "
               "logged.")


def _value(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    return found[1] if found else "?"
