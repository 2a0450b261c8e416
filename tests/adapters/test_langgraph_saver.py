"""KeelSaver: LangGraph's checkpointer contract on keel's store, SQLite and PostgreSQL.

The contract is checked by LangGraph's own conformance suite (langgraph-checkpoint-conformance);
then a real graph pauses on interrupt() and a new process-like saver on the same database
resumes it.
"""

from __future__ import annotations

import operator
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from keel import LeaseLostError
from keel.adapters.langgraph import KeelSaver
from keel.adapters.langgraph._tools import running
from keel.runtime._approvals import ApprovalRules
from keel.runtime._execution import Execution
from keel.runtime._store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


async def test_the_checkpointer_conformance_suite_passes(store: Store) -> None:
    @checkpointer_test(name="KeelSaver")
    async def saver() -> AsyncIterator[KeelSaver]:
        yield KeelSaver(store)

    report = await validate(saver)
    assert report.passed_all_base(), report.print_report()


class Refund(TypedDict):
    log: Annotated[list[str], operator.add]
    decision: str


def look_up(state: Refund) -> dict[str, Any]:
    return {"log": ["looked up INV-8821"]}


def ask_reviewer(state: Refund) -> dict[str, Any]:
    decision = interrupt({"tool": "process_refund", "invoice_id": "INV-8821"})
    return {"log": [f"reviewer said {decision}"], "decision": decision}


def refund_graph(saver: KeelSaver) -> Any:
    builder = StateGraph(Refund)
    builder.add_node("look_up", look_up)
    builder.add_node("ask_reviewer", ask_reviewer)
    builder.add_edge(START, "look_up")
    builder.add_edge("look_up", "ask_reviewer")
    builder.add_edge("ask_reviewer", END)
    return builder.compile(checkpointer=saver)


def test_a_paused_graph_resumes_from_another_saver_on_the_same_database(
    database_url: str,
) -> None:
    config = {"configurable": {"thread_id": "ticket-1"}}
    first = Store(database_url)
    paused = refund_graph(KeelSaver(first)).invoke(
        {"log": [], "decision": ""}, config, durability="sync")
    first.close()
    assert paused["__interrupt__"][0].value == {"tool": "process_refund",
                                                "invoice_id": "INV-8821"}

    second = Store(database_url)  # as another process would open it
    graph = refund_graph(KeelSaver(second))
    assert graph.get_state(config).next == ("ask_reviewer",)
    done = graph.invoke(Command(resume="approve"), config, durability="sync")
    history = list(graph.get_state_history(config))
    second.close()
    assert done == {"log": ["looked up INV-8821", "reviewer said approve"],
                    "decision": "approve"}
    assert len(history) >= 4 and history[0].next == ()


def test_a_process_that_lost_the_lease_writes_no_more_checkpoints(store: Store) -> None:
    now = time.time()
    store.insert_execution({
        "id": "e1", "framework": "langgraph", "agent_name": "refund", "input": "{}",
        "options": "{}", "status": "RUNNING", "lease_epoch": 1, "created_at": now,
        "updated_at": now,
    })
    execution = Execution(store, store.execution("e1"), epoch=1, rules=ApprovalRules(),
                          lease_seconds=10)
    graph = refund_graph(KeelSaver(store))
    config = {"configurable": {"thread_id": "ticket-1"}}
    with running(execution, "refund"):
        graph.invoke({"log": [], "decision": ""}, config, durability="sync")  # pauses
        paused = graph.get_state(config)
        with store.transaction() as conn:  # another worker took the execution over
            conn.exec_driver_sql("UPDATE keel_executions SET lease_epoch = 2 WHERE id = 'e1'")
        with pytest.raises(LeaseLostError, match="lease epoch 1 is stale"):
            graph.invoke(Command(resume="approve"), config, durability="sync")
    # Nothing forks the thread behind the new owner's back: its latest checkpoint is the
    # pause, with no task writes added to it.
    latest = graph.get_state(config)
    assert latest.config == paused.config and latest.next == ("ask_reviewer",)
    assert latest.tasks[0].result is None
