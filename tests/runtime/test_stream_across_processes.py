"""A handle in one process follows, live, an execution another process is running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keel import AgentHandle, AgentRuntime

ROOT = Path(__file__).parents[2]
PROGRAMS = ROOT / "tests" / "programs"
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


def test_a_stream_follows_a_run_in_another_process(database_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(PROGRAMS)]),
           "KEEL_TEST_HANG_AT": "model:3:before"}  # blocks after get_invoice is journaled
    child = subprocess.Popen(
        [sys.executable, str(PROGRAMS / "run_support.py"), "start", database_url,
         "crash_agents:triage_agent", TICKET, "ticket-1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with AgentRuntime(database_url, poll_interval=0.05) as runtime:
            execution_id = _wait_for_execution(runtime, "ticket-1", child)
            seen = []
            for event in AgentHandle(execution_id, runtime=runtime).stream(timeout=60):
                seen.append((event.type, getattr(event, "tool_name", None)))
                if event.type == "tool_result":
                    break
            assert child.poll() is None, "the run must still be going in the other process"
        assert seen == [("handoff", None), ("tool_call", "get_invoice"),
                        ("tool_result", "get_invoice")]
    finally:
        child.kill()
        child.communicate()


def _wait_for_execution(runtime: AgentRuntime, key: str, child: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = runtime.store.find_by_idempotency_key(key)
        if found:
            return found
        assert child.poll() is None, child.communicate()
        time.sleep(0.05)
    raise AssertionError("the child never admitted its execution")


@pytest.mark.postgres
def test_a_follower_rides_out_its_dropped_connections(postgres_url: str) -> None:
    """The server drops every connection of the follower's store mid-stream; it reads on."""
    import threading

    import psycopg
    from sqlalchemy.engine import make_url
    from test_runtime import GATE, slow_agent

    GATE.clear()
    with AgentRuntime(postgres_url) as runtime, AgentRuntime(postgres_url) as follower:
        handle = runtime.start(slow_agent, "where is A-1?")
        stream = AgentHandle(handle.execution_id, runtime=follower).stream()
        seen: list[str] = []

        def follow() -> None:
            seen.extend(event.type for event in stream)

        reader = threading.Thread(target=follow)
        reader.start()
        deadline = time.monotonic() + 20
        while "tool_call" not in seen:
            assert time.monotonic() < deadline, f"the follower saw {seen}"
            time.sleep(0.05)
        url = make_url(postgres_url)
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        # Drop the others' connections, and wait for each to be gone (the timeout): the
        # runtime's own, resting until its tool returns, has then heard the termination by
        # its next write (the checkout replaces it) instead of writing into it.
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        GATE.set()
        reader.join(30)
    assert seen[-1] == "done", seen
