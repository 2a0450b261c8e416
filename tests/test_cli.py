"""The `keel` command, through real subprocesses of the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from in_doubt import REFUNDS, in_doubt_execution
from keel import AgentRuntime, Status

ROOT = Path(__file__).resolve().parents[1]
KEEL = str(Path(sys.executable).parent / "keel")
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
AGENT = "examples.support_triage.agents:triage_agent"


@pytest.fixture(autouse=True)
def _refund_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example backend's refunds, across the child processes."""
    monkeypatch.setenv("SUPPORT_LEDGER", str(tmp_path / "refunds.jsonl"))


def keel(*args: str, url: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEEL_DATABASE_URL": url}
    done = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode == 0) == ok, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def refunds() -> list[str]:
    ledger = Path(os.environ["SUPPORT_LEDGER"])
    return ledger.read_text().splitlines() if ledger.exists() else []


def test_run_list_show_approve_resume_from_the_terminal(database_url: str) -> None:
    url = database_url
    ran = keel("run", AGENT, TICKET, "--json", url=url)
    waiting = json.loads(ran.stdout)
    execution_id = waiting["execution_id"]
    assert waiting["status"] == Status.WAITING.value
    assert [p["tool_name"] for p in waiting["pending_approvals"]] == ["process_refund"]

    listed = keel("ls", "--status", "waiting", url=url).stdout.splitlines()
    assert listed[0].split() == ["ID", "STATUS", "AGENT", "CREATED", "UPDATED", "REASON"]
    assert listed[1].split()[:3] == [execution_id, "WAITING", "support_triage"]
    assert [r["id"] for r in json.loads(keel("ls", "--json", url=url).stdout)] == [execution_id]

    assert keel("approve", execution_id, "--as", "dana", url=url).stdout.startswith(
        "approved: call_3_process_refund; ")
    resumed = json.loads(keel("resume", execution_id, "--json", url=url).stdout)
    assert resumed["status"] == Status.COMPLETED.value
    assert "refunded $99.00" in resumed["output"]
    assert len(refunds()) == 1

    shown = keel("show", execution_id, url=url).stdout
    assert f"execution {execution_id}  COMPLETED  agent support_triage" in shown
    assert "handoff -> billing_specialist" in shown
    assert "approved process_refund  by dana" in shown
    assert "tokens:" in shown
    events = keel("events", execution_id, "--after", "5", "--json", url=url).stdout
    assert [json.loads(line)["seq"] for line in events.splitlines()][0] == 6
    followed = keel("events", execution_id, "--follow", url=url).stdout.splitlines()
    assert followed[-1].split()[2] == "done"  # it replays, then stops: the run has settled


def test_a_run_with_a_budget_and_redaction_is_listed_shown_and_exported(
    sqlite_url: str
) -> None:
    ran = keel("run", AGENT, f"{TICKET} Write to bob@example.com.", "--max-tool-calls", "1",
               "--redact", "--json", url=sqlite_url, ok=False)  # FAILED: a non-zero exit
    stopped = json.loads(ran.stdout)
    exceeded = {"budget": "max_tool_calls", "limit": 1, "used": 1,
                "next_step": "the tool call process_refund"}
    assert (stopped["status"], stopped["budget_exceeded"]) == ("FAILED", exceeded)
    listed = keel("ls", url=sqlite_url).stdout.splitlines()
    assert listed[1].split()[1] == "FAILED" and listed[1].endswith("budget max_tool_calls")
    assert json.loads(keel("ls", "--json", url=sqlite_url).stdout)[0]["status_reason"] == {
        "budget_exceeded": exceeded}
    shown = keel("show", stopped["execution_id"], url=sqlite_url).stdout
    assert "; budget max_tool_calls=1" in shown
    assert "stopped by its budget: max_tool_calls=1, used 1, before the tool call " \
        "process_refund" in shown
    exported = keel("export", stopped["execution_id"], url=sqlite_url).stdout
    assert "bob@example.com" not in exported and "Write to [redacted:email]." in exported


def test_reject_then_resume_and_cancel(sqlite_url: str) -> None:
    # SQLite only, to save ~9 s: the commands reach the store as in the test above, which runs
    # on both; reject and cancel themselves run on both in tests/runtime/test_approvals.py.
    url = sqlite_url
    execution_id = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)[
        "execution_id"]
    keel("reject", execution_id, "--reason", "Needs a manager.", "--as", "lee", url=url)
    resumed = json.loads(keel("resume", execution_id, "--json", url=url).stdout)
    assert "Needs a manager." in resumed["output"]
    assert refunds() == []
    other = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)["execution_id"]
    assert keel("cancel", other, url=url).stdout.strip() == f"{other}: CANCELLED"
    # A resume can give the run a budget (it has used one tool call: the invoice lookup).
    capped = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)["execution_id"]
    keel("approve", capped, url=url)
    stopped = json.loads(keel("resume", capped, "--max-tool-calls", "1", "--json", url=url,
                              ok=False).stdout)
    assert (stopped["status"], stopped["budget_exceeded"]["next_step"]) == (
        "FAILED", "the tool call process_refund")
    assert refunds() == []


def test_show_lists_a_pipelines_stages_and_a_stage_names_its_pipeline(
    sqlite_url: str
) -> None:
    from examples.support_pipeline.cross_framework import TICKET as PIPELINE_TICKET
    from examples.support_pipeline.cross_framework import pipeline

    with AgentRuntime(sqlite_url) as runtime:
        pid = runtime.run(pipeline, PIPELINE_TICKET).execution_id
    shown = keel("show", pid, url=sqlite_url).stdout
    stages = [line.split() for line in shown.splitlines() if line.startswith("  stage ")]
    assert [(s[1], s[2], s[3]) for s in stages] == [
        (f"{pid}.0", "COMPLETED", "classifier"), (f"{pid}.1", "COMPLETED", "responder"),
        (f"{pid}.2", "COMPLETED", "escalation_checker")]
    assert f"stage of {pid}" in keel("show", f"{pid}.1", url=sqlite_url).stdout


@pytest.mark.parametrize(("args", "message"), [
    (("show", "nope"), "keel: No execution 'nope' in the store"),
    (("ls", "--since", "2x"), "keel: --since takes a duration like 90s"),
    (("run", "examples.nowhere:agent", "hi"), "keel: Cannot load the agent "
     "'examples.nowhere:agent' (No module named 'examples.nowhere'). Name it as module:attr"),
    (("ls", "--db", "keel.db"), "keel: 'keel.db' is not a database URL. Write sqlite:///"),
    (("ls", "--since=-5m"), "keel: --since takes a duration like 90s"),
    (("decisions", "--since", "nanh"), "keel: --since takes a duration like 90s"),
    (("prune", "--older-than=-30d"), "keel: --older-than takes a duration like 90s"),
])
def test_errors_are_one_line_and_a_failing_exit(
    database_url: str, args: tuple[str, ...], message: str
) -> None:
    AgentRuntime(database_url).close()  # a store, for the commands that need one to exist
    failed = keel(*args, url=database_url, ok=False)
    assert failed.stderr.startswith(message) and len(failed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (("ls", "--status", "complete"), "invalid choice: 'COMPLETE' (choose from 'QUEUED', 'RUN"),
    (("resume", "x", "--max-steps", "abc"), "--max-steps: a limit is a positive number, not abc"),
    (("run", AGENT, "hi", "--max-seconds", "inf"), "a limit is a positive number, not inf"),
    (("ls", "--limit", "-1"), "--limit: a limit is a positive number up to 10000, not -1"),
    (("ls", "--limit", "100000"), "--limit: a limit is a positive number up to 10000, not 100000"),
    (("decisions", "--limit", "0"), "--limit: a limit is a positive number up to 10000, not 0"),
    (("serve", "--port", "99999"), "--port: a port is a positive number up to 65535, not 99999"),
])
def test_an_option_value_it_cannot_take_names_what_it_takes(
    sqlite_url: str, args: tuple[str, ...], message: str
) -> None:
    assert message in keel(*args, url=sqlite_url, ok=False).stderr


@pytest.mark.parametrize("args", [("ls",), ("show", "x"), ("events", "x"), ("export", "x"),
                                  ("decisions",), ("approve", "x"), ("prune", "--older-than",
                                                                     "1d")])
def test_a_store_that_is_not_there_is_an_error_not_made(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo" / "keel.db"
    failed = keel(*args, url=f"sqlite:///{missing}", ok=False)
    assert failed.stderr.startswith(f"keel: No keel database at {missing}: check --db")
    assert not missing.parent.exists()


def test_an_output_read_only_in_part_ends_quietly(sqlite_url: str) -> None:
    execution_id = json.loads(keel("run", AGENT, TICKET, "--json", url=sqlite_url).stdout)[
        "execution_id"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEEL_DATABASE_URL": sqlite_url}
    for args in (["ls", "--json"], ["export", execution_id], ["events", execution_id, "--json"],
                 ["show", execution_id]):
        # As `keel ... | head -1` does: the reader is gone before keel has printed it all.
        reader_left = subprocess.Popen([KEEL, *args], env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        assert reader_left.stdout is not None and reader_left.stderr is not None
        reader_left.stdout.close()
        assert (reader_left.wait(timeout=60), reader_left.stderr.read()) == (1, "")
        reader_left.stderr.close()


def test_decisions_lists_every_decision_unless_limited(database_url: str) -> None:
    from examples.support_triage.agents import triage_agent
    from sqlalchemy import insert

    from keel.runtime._store import APPROVALS

    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(triage_agent, TICKET)
        runtime.handle(waiting.execution_id).approve(reviewer="dana")
        (decided,) = runtime.store.approvals(waiting.execution_id)
        with runtime.store.transaction() as conn:  # 200 more, as if from 200 calls
            conn.execute(insert(APPROVALS), [{**decided.model_dump(), "id": f"copy{n}",
                                              "call_id": f"call_{n}"} for n in range(200)])
    assert len(json.loads(keel("decisions", "--json", url=database_url).stdout)) == 201
    newest = json.loads(keel("decisions", "--limit", "3", "--json", url=database_url).stdout)
    assert len(newest) == 3


def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    failed = keel("ls", url="postgresql+psycopg://nobody@127.0.0.1:9/none", ok=False)
    assert failed.stderr.startswith("keel: Could not use the database at ")


def test_export_test_prints_a_pytest_module(sqlite_url: str) -> None:
    # One store is enough: export_test reads runs from both in tests/testing/test_export.py.
    url = sqlite_url
    execution_id = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)[
        "execution_id"]
    source = keel("export-test", execution_id, url=url).stdout
    assert "from examples.support_triage.agents import triage_agent" in source
    assert "MockEvent.waiting()" in source
    as_json = json.loads(keel("export-test", execution_id, "--json", url=url).stdout)
    assert as_json == {"execution_id": execution_id, "path": None, "source": source}


@contextmanager
def serving(*args: str, url: str, cwd: Path) -> Iterator[tuple[str, int]]:
    """`keel serve ARGS` on a free port: its banner line and the port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEEL_DATABASE_URL": url}
    env.pop("KEEL_API_TOKEN", None)
    server = subprocess.Popen([KEEL, "serve", "--port", str(port), *args], env=env, text=True,
                              cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        yield server.stdout.readline(), port
    finally:
        server.terminate()
        server.communicate(timeout=10)  # and closes its pipes


def answer(url: str, token: str | None = None) -> tuple[int, Any]:
    """The status and JSON body of GET `url`, once the server answers."""
    import time
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as page:
                return page.status, json.loads(page.read())
        except urllib.error.HTTPError as refused:  # an answer too
            return refused.code, json.loads(refused.read())
        except OSError:
            assert time.monotonic() < deadline, "keel serve never answered"
            time.sleep(0.1)


def test_serve_prints_a_token_and_answers_and_refuses_open_hosts_without_one(
    tmp_path: Path, database_url: str
) -> None:
    refused = keel("serve", "--host", "0.0.0.0", url=database_url, ok=False)
    assert refused.stderr.startswith("keel: keel serve binds 0.0.0.0")
    with serving(url=database_url, cwd=tmp_path) as (banner, port):
        token = banner.rsplit(": ", 1)[1].strip().rstrip(")")
        assert banner.startswith(f"keel serve: http://127.0.0.1:{port}/") and len(token) > 20
        # Made on the first serve and kept, so a later serve here uses the same one.
        assert (tmp_path / ".keel" / "api-token").read_text().strip() == token
        assert (tmp_path / ".keel" / "api-token").stat().st_mode & 0o077 == 0
        assert answer(f"http://127.0.0.1:{port}/api/executions") == (200, [])


def test_serve_beyond_loopback_needs_the_token_to_read(tmp_path: Path, sqlite_url: str) -> None:
    AgentRuntime(sqlite_url).close()
    with serving("--host", "0.0.0.0", "--token", "s3cret-token", url=sqlite_url,
                 cwd=tmp_path) as (banner, port):
        assert "the API token, for reads, approvals and new runs" in banner
        status, body = answer(f"http://127.0.0.1:{port}/api/executions")
        assert status == 401 and "Bearer <token>" in body["error"]
        assert answer(f"http://127.0.0.1:{port}/api/executions", "s3cret-token") == (200, [])


def test_a_running_server_carries_on_runs_decided_from_the_terminal(
    tmp_path: Path, sqlite_url: str
) -> None:
    # One store is enough: the server's pickup runs on both in tests/server/test_api.py.
    url = sqlite_url
    approved, rejected = (json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)[
        "execution_id"] for _ in range(2))
    with serving(url=url, cwd=tmp_path) as (_, port):
        assert answer(f"http://127.0.0.1:{port}/api/executions")[0] == 200  # it is up
        said = keel("approve", approved, url=url).stdout.strip()
        keel("reject", rejected, "--reason", "Needs a manager.", url=url)
        with AgentRuntime(url, auto_resume=False) as runtime:  # no keel resume: it waits
            done = [runtime.handle(i).join(timeout=30) for i in (approved, rejected)]
    assert [d.status for d in done] == [Status.COMPLETED, Status.COMPLETED]
    assert "refunded $99.00" in str(done[0].output) and "Needs a manager." in str(
        done[1].output)
    assert len(refunds()) == 1
    assert said == (f"approved: call_3_process_refund; {approved} is queued: a running keel "
                    f"serve, a keel worker serving its agent or the process that started it "
                    f"carries it on, else keel resume {approved}")


def test_demo_runs_the_support_ticket_from_a_checkout(tmp_path: Path, sqlite_url: str) -> None:
    # One store is enough: the demo runs on both in tests/examples/test_support_triage.py.
    ran = keel("demo", url=sqlite_url)  # no terminal: it approves
    assert "refunded $99.00 for invoice INV-8821" in ran.stdout
    assert "keel demo approve <id>" in ran.stdout  # its hints name the command that ran it
    elsewhere = subprocess.run([KEEL, "demo"], capture_output=True, text=True, cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": ""}, timeout=60)
    assert elsewhere.returncode == 1
    assert elsewhere.stderr.startswith("keel: keel demo needs the support-triage example")


def test_an_in_doubt_run_is_listed_shown_and_resolved(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keel.db"
    execution_id = in_doubt_execution(url)
    assert execution_id in keel("ls", "--status", "in_doubt", url=url).stdout
    shown = keel("show", execution_id, url=url).stdout
    assert "in_doubt wire_refund has unsafe side effects and was cut off mid-call" in shown
    bad = keel("resolve", execution_id, "--record", "{not json", url=url, ok=False)
    assert bad.stderr.startswith("keel: --record takes the call's result as JSON")
    done = keel("resolve", execution_id, "--record", '"wired INV-8821"', "--as", "ana", url=url)
    assert done.stdout.startswith(f"record: w1; {execution_id} is queued: a running keel serve")
    again = keel("resolve", execution_id, "--retry", url=url, ok=False)
    assert "is QUEUED, not IN_DOUBT" in again.stderr
    with AgentRuntime(url) as runtime:
        result = runtime.resume(execution_id)
    assert result.output == "Refund: wired INV-8821" and REFUNDS == ["INV-8821"]


def test_export_decisions_prune_and_the_kill_switch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keel.db"
    first = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)["execution_id"]
    second = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)["execution_id"]
    keel("approve", first, "--as", "dana", url=url)
    keel("resume", first, url=url)

    exported = keel("export", first, url=url).stdout.splitlines()
    records = [json.loads(line) for line in exported]
    assert records[0]["record"] == "execution" and records[0]["status"] == "COMPLETED"
    assert {r["record"] for r in records} == {"execution", "event", "approval", "step"}
    out = tmp_path / "audit.jsonl"
    keel("export", first, "--format", "jsonl", "-o", str(out), url=url)
    assert out.read_text().splitlines() == exported

    decided = keel("decisions", "--since", "1h", url=url).stdout
    assert "dana" in decided and "approved" in decided and "process_refund" in decided
    assert json.loads(keel("decisions", "--reviewer", "ben", "--json", url=url).stdout) == []

    cancelled = keel("cancel", "--agent", "support_triage", "--reason", "incident", url=url)
    assert f"{second}: CANCELLED" in cancelled.stdout
    assert "1 unfinished execution(s) of support_triage cancelled" in cancelled.stdout
    assert "one of them" in keel("cancel", url=url, ok=False).stderr

    would = keel("prune", "--older-than", "0s", "--dry-run", url=url).stdout
    assert would.startswith("would delete 2 execution(s)")
    assert "deleted 2 execution(s)" in keel("prune", "--older-than", "0s", url=url).stdout
    assert keel("ls", "--json", url=url).stdout.strip() == "[]"
    bad = keel("prune", "--older-than", "soon", url=url, ok=False)
    assert "--older-than takes a duration" in bad.stderr


@pytest.mark.parametrize("reason", ["", "   "])
def test_reject_refuses_a_reason_that_says_nothing(
    sqlite_url: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from examples.support_triage.agents import triage_agent

    from keel.cli import main

    with AgentRuntime(sqlite_url, auto_resume=False) as runtime:
        execution_id = runtime.run(triage_agent, TICKET).execution_id
    assert main(["reject", execution_id, "--reason", reason, "--db", sqlite_url]) == 1
    error = capsys.readouterr().err
    assert error.startswith("keel: keel reject needs a reason that says something")
    assert len(error.splitlines()) == 1
    with AgentRuntime(sqlite_url, auto_resume=False) as runtime:
        assert [a.status for a in runtime.store.approvals(execution_id)] == ["pending"]


@pytest.mark.parametrize(("made", "says"), [
    ("another app's", "is not a keel database (it has no keel tables, and keel leaves it"),
    ("empty", "is not a keel database (it has no keel tables, and keel leaves it"),
    ("text", "is not a keel database (file is not a database)"),
    ("directory", "is a directory, not a keel database"),
])
def test_a_file_that_is_not_a_keel_store_is_refused_and_left_as_it_was(
    tmp_path: Path, made: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from keel.cli import main

    path = tmp_path / "app.db"
    if made == "another app's":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE users (id INTEGER)")
        db.close()
    elif made == "directory":
        path.mkdir()
    else:
        path.write_text("" if made == "empty" else "not a database\n")
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    assert main(["ls", "--db", f"sqlite:///{path}"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"keel: {path} {says}") and len(error.splitlines()) == 1
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before


def test_a_server_left_to_workers_queues_every_run_and_a_worker_carries_them_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    import time
    import urllib.request

    url = sqlite_url
    decided = json.loads(keel("run", AGENT, TICKET, "--json", url=url).stdout)["execution_id"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEEL_DATABASE_URL": url}
    with serving("--workers", url=url, cwd=tmp_path) as (banner, port), \
            AgentRuntime(url, auto_resume=False) as runtime:
        token = banner.rsplit(": ", 1)[1].strip().rstrip(")")
        assert answer(f"http://127.0.0.1:{port}/api/executions")[0] == 200  # it is up
        keel("approve", decided, url=url)
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/api/executions", method="POST",
                data=json.dumps({"agent": AGENT, "input": TICKET}).encode(),
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"})) as page:
            started = json.loads(page.read())["execution_id"]
        time.sleep(1)  # ten of the server's poll intervals
        # The server ran neither: the decided run and the new one wait for a worker.
        assert [runtime.store.execution(i).status for i in (decided, started)] == [
            "QUEUED", "QUEUED"]
        assert refunds() == []
        worker = subprocess.Popen([KEEL, "worker", AGENT], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert "refunded $99.00" in str(runtime.handle(decided).join(timeout=30).output)
            waiting = runtime.handle(started).join(timeout=30)  # its refund waits in turn
            assert waiting.status is Status.WAITING
            runtime.handle(started).approve()
            assert "refunded $99.00" in str(runtime.handle(started).join(timeout=30).output)
        finally:
            worker.terminate()
            worker.communicate(timeout=10)
    assert len(refunds()) == 2


def test_respond_answers_a_pause_that_asks_for_a_value(sqlite_url: str) -> None:
    from adk_workflows import reply_flow

    with AgentRuntime(sqlite_url, auto_resume=False) as runtime:
        execution_id = runtime.run(reply_flow, "late order").execution_id
    bad = keel("respond", execution_id, "looks good", url=sqlite_url, ok=False)
    assert bad.stderr.startswith("keel: keel respond takes the answer as JSON")
    assert "quote plain text as '\"text\"'" in bad.stderr
    said = keel("respond", execution_id, '"looks good"', "--as", "dana", url=sqlite_url)
    assert said.stdout.startswith(
        f"responded: request_input:reply@1/review@1; {execution_id} is queued")
    with AgentRuntime(sqlite_url, auto_resume=False) as runtime:
        assert runtime.resume(execution_id, reply_flow).output == "sent after looks good"
