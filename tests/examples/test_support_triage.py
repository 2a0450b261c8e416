"""The support-triage demo, run as `make demo` runs it: a real process, no terminal."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from example_process import run_example


def demo(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_example("examples.support_triage", tmp_path, url, *args)


def test_demo_streams_waits_approves_and_finishes(tmp_path: Path, database_url: str) -> None:
    run = demo(tmp_path, database_url)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    order = ["hands off to billing_specialist", "calls get_invoice", "calls process_refund",
             "waiting for approval of process_refund", "Approved automatically, because stdin "
             "is not a terminal", "process_refund approved", "resumed", "process_refund returned",
             "I've refunded $99.00 for invoice INV-8821", "status COMPLETED", "Execution id:",
             "To approve from another terminal", "approve <id>", "resume <id>"]
    positions = [out.find(text) for text in order]
    assert -1 not in positions, out
    assert positions == sorted(positions), out


def test_demo_reject_tells_the_customer(tmp_path: Path, sqlite_url: str) -> None:
    # SQLite only, to save ~3 s: the demo runs on both stores above, and a rejection reaches
    # the model on both in tests/runtime/test_approvals.py.
    run = demo(tmp_path, sqlite_url, "--reject", "Refunds need a manager")
    assert run.returncode == 0, run.stderr
    assert "process_refund rejected by" in run.stdout
    assert "could not refund invoice INV-8821" in run.stdout
    assert "Refunds need a manager" in run.stdout


def test_demo_decided_from_another_terminal(tmp_path: Path, sqlite_url: str) -> None:
    # SQLite only, to save ~10 s (four demo processes): deciding a run from another process
    # runs on both stores in tests/test_crash_recovery.py and tests/test_cli.py.
    waiting = demo(tmp_path, sqlite_url, "--wait")
    assert waiting.returncode == 0, waiting.stderr
    execution_id = re.search(r"Execution id: (\w+)", waiting.stdout)[1]  # type: ignore[index]
    assert f"approve {execution_id}" in waiting.stdout
    approved = demo(tmp_path, sqlite_url, "approve", execution_id)
    assert approved.returncode == 0 and "Approved" in approved.stdout
    again = demo(tmp_path, sqlite_url, "approve", execution_id)
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and "already approved" in again.stderr
    assert "Traceback" not in again.stderr
    resumed = demo(tmp_path, sqlite_url, "resume", execution_id)
    assert resumed.returncode == 0, resumed.stderr
    assert "status COMPLETED" in resumed.stdout and "refunded $99.00" in resumed.stdout
