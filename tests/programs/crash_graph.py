"""Test-only LangGraph twin of crash_agents: the support swarm graph, with kill points.

The graph is the example's (examples/support_triage/graph.py) with triage and billing only, on
the example's scripted chat model; the refund is approval-free so that an uninterrupted run
completes. Kill points (KEEL_TEST_KILL_AT / KEEL_TEST_HANG_AT, see kill_points.py):

    model:N:before / model:N:after   around this process's Nth model call
    tool:NAME:after_effect           inside tool NAME, after its side effect
    saver:put:N                      before this process's Nth checkpoint is written, so after
                                     the writes of the step it closes (the crash of
                                     research/durability.md section 3.3)

The last one patches keel's checkpoint saver from here, the way a test-only saver subclass
would; everything else is the user's code.
"""

from __future__ import annotations

import json
from typing import Any

from examples.support_triage.graph import SupportChatModel, get_account, handoff_to, specialist
from kill_points import checkpoint, invoice, refund
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

import keel
from keel.adapters.langgraph import KeelSaver

_live = {"model": 0, "put": 0}


class KillableChatModel(SupportChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        _live["model"] += 1
        checkpoint(f"model:{_live['model']}:before")
        result = super()._generate(*args, **kwargs)
        checkpoint(f"model:{_live['model']}:after")
        return result


_put = KeelSaver.put


def _killable_put(self: KeelSaver, *args: Any, **kwargs: Any) -> Any:
    _live["put"] += 1
    checkpoint(f"saver:put:{_live['put']}")
    return _put(self, *args, **kwargs)


KeelSaver.put = _killable_put  # type: ignore[method-assign]


@tool
def get_invoice(invoice_id: str) -> str:
    """Fetch an invoice by ID."""
    return json.dumps(invoice(invoice_id))


@tool
def process_refund(invoice_id: str, reason: str) -> str:
    """Issue a full refund for an invoice (approval-free here, unlike the example)."""
    return json.dumps(refund(invoice_id, reason))


@tool("process_refund")
def _unsafe_refund(invoice_id: str, reason: str) -> str:
    """Issue a full refund for an invoice (approval-free here, unlike the example)."""
    return json.dumps(refund(invoice_id, reason))


keel.tool(side_effects="unsafe")(_unsafe_refund)  # marked in place


def _graph(refund_tool: Any = process_refund) -> Any:
    model = KillableChatModel()
    graph = StateGraph(MessagesState)
    graph.add_node("support_triage",
                   specialist("support_triage", model, [handoff_to("billing_specialist")]),
                   destinations=("billing_specialist",))
    graph.add_node("billing_specialist",
                   specialist("billing_specialist", model,
                              [get_account, get_invoice, refund_tool]))
    graph.add_edge(START, "support_triage")
    graph.add_edge("billing_specialist", END)
    return graph.compile(name="support_triage")


triage_graph = _graph()
unsafe_triage_graph = _graph(_unsafe_refund)  # a crash mid-refund parks the run IN_DOUBT
