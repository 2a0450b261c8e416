"""Crash recovery with real processes: SIGKILL at chosen points, then resume in a new process.

Every run here happens in a child process (tests/programs/run_support.py) that imports the SDK
and keel afresh, so nothing survives a kill but what keel committed to the store and what the
tools wrote to their fsynced ledgers. The crash agents (tests/programs/crash_agents.py) mirror
examples/support_triage and carry the kill points in the model and the tools, never in keel.

What the files record, per process id:
    model_calls.txt   one line per call that reached the scripted model (SUPPORT_MODEL_CALLS)
    tool_runs.jsonl   one line per tool run, with keel.current_call() (KEEL_TEST_TOOL_LEDGER)
    refunds.jsonl     one line per refund the backend issued (SUPPORT_LEDGER)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from examples.support_triage.agents import triage_agent

from keel import AgentResult, AgentRuntime, Status

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "programs"
RUNNER = PROGRAMS / "run_support.py"
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
CRASH_AGENT = "crash_agents:triage_agent"
GATED_CRASH_AGENT = "crash_agents:gated_triage_agent"
SUPPORT_AGENT = "examples.support_triage.agents:triage_agent"
CHILD_TIMEOUT = 45.0  # a child imports the SDK in ~2 s; a hung resume must fail, not block CI
RETRY_TIMEOUT = 15.0  # a healthy retry finishes in ~3 s; the buggy one never does
KILLED = -signal.SIGKILL

# The journal (kind:name per step) of an uninterrupted crash-agents run, in order: triage asks
# for the handoff, which is performed; billing looks the invoice up, asks for the refund, and
# answers. A run killed midway has journaled a prefix of it.
TRIAGE, HANDOFF = "model:support_triage", "handoff:billing_specialist"
BILLING, INVOICE, REFUND = "model:billing_specialist", "tool:get_invoice", "tool:process_refund"
STEPS = (TRIAGE, HANDOFF, BILLING, INVOICE, BILLING, REFUND, BILLING)
# With its completion, a run journals the conversation so far (`result.to_input_list()`).
CONVERSATION = "conversation:billing_specialist"


# -- child processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """A finished child process and what it printed."""

    args: tuple[str, ...]
    pid: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def outcome(self) -> dict[str, Any]:
        """The last JSON line the child printed."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert lines, f"the child printed no outcome\n{self}"
        return dict(json.loads(lines[-1]))

    def __str__(self) -> str:
        return (f"child {' '.join(self.args)} (pid {self.pid}, exit {self.returncode})\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}")


class Workspace:
    """One store plus the ledger files that its child processes share."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.refund_ledger = root / "refunds.jsonl"
        self.model_call_log = root / "model_calls.txt"
        self.tool_run_ledger = root / "tool_runs.jsonl"

    # launching

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(RUNNER), *args], cwd=self.root, env=self._env(env), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def finish(self, proc: subprocess.Popen[str], timeout: float = CHILD_TIMEOUT) -> Child:
        args = tuple(str(a) for a in proc.args)[2:]  # type: ignore[union-attr]
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(f"the child hung: killed after {timeout} s\n"
                        f"{Child(args, proc.pid, proc.returncode, stdout, stderr)}")
        return Child(args, proc.pid, proc.returncode, stdout, stderr)

    def run(self, *args: str, killed: bool = False, **env: str) -> Child:
        """Run a child to its end; it must exit 0, or die of SIGKILL when `killed`."""
        child = self.finish(self.spawn(*args, **env))
        assert child.returncode == (KILLED if killed else 0), str(child)
        return child

    def start(self, agent: str, key: str, *, killed: bool = False, **env: str) -> Child:
        return self.run("start", self.url, agent, TICKET, key, killed=killed, **env)

    def resume(self, execution_id: str, *, killed: bool = False, **env: str) -> Child:
        return self.run("resume", self.url, execution_id, killed=killed, **env)

    def decide(self, verb: str, execution_id: str, *args: str) -> Child:
        return self.run(verb, self.url, execution_id, *args)

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KEEL_TEST_", "SUPPORT_", "OPENAI_API_KEY"))}
        path = [str(ROOT), str(PROGRAMS), env.get("PYTHONPATH", "")]
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in path if p),
            OPENAI_AGENTS_DISABLE_TRACING="1",
            SUPPORT_LEDGER=str(self.refund_ledger),
            SUPPORT_MODEL_CALLS=str(self.model_call_log),
            KEEL_TEST_TOOL_LEDGER=str(self.tool_run_ledger),
            **extra,
        )
        return env

    # what the children left behind

    def refunds(self) -> list[dict[str, Any]]:
        return _json_lines(self.refund_ledger)

    def tool_runs(self, pid: int | None = None) -> list[dict[str, Any]]:
        runs = _json_lines(self.tool_run_ledger)
        return [r for r in runs if pid is None or r["pid"] == pid]

    def model_calls(self) -> Counter[int]:
        if not self.model_call_log.exists():
            return Counter()
        return Counter(int(line) for line in self.model_call_log.read_text().split())

    def result(self, execution_id: str) -> AgentResult:
        with AgentRuntime(self.url, auto_resume=False) as runtime:
            return runtime.result(execution_id)

    def execution_for(self, key: str) -> str:
        """The id of the execution admitted with idempotency key `key` (its process may be dead)."""
        with AgentRuntime(self.url, auto_resume=False) as runtime:
            found = runtime.store.find_by_idempotency_key(key)
        assert found is not None, f"no execution was admitted with key {key!r}"
        return found

    def journal(self, execution_id: str) -> dict[str, list[str]]:
        """The journal's `kind:name` steps by status ("done" or "intent"), sorted."""
        with AgentRuntime(self.url, auto_resume=False) as runtime:
            steps = runtime.store.steps(execution_id).values()
        by_status: dict[str, list[str]] = {}
        for step in steps:
            by_status.setdefault(step.status, []).append(f"{step.kind}:{step.name}")
        return {status: sorted(names) for status, names in by_status.items()}

    def status(self, execution_id: str) -> str:
        with AgentRuntime(self.url, auto_resume=False) as runtime:
            return runtime.store.execution(execution_id).status


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a ledger (one that a live process appends to may end mid-line)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1]]


def wait_until(condition: Callable[[], bool], what: str, *procs: subprocess.Popen[str]) -> None:
    """Poll `condition`; fail if it stays false or a process it depends on exits first."""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                stdout, stderr = proc.communicate()
                pytest.fail(f"a child exited (code {proc.returncode}) before {what}\n"
                            f"--- stdout\n{stdout}--- stderr\n{stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> Workspace:
    return Workspace(tmp_path, database_url)


# -- the uninterrupted reference run ----------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    child: Child
    output: str
    event_types: list[str]
    tool_calls: list[tuple[str, Any, Any]]  # name, args, result
    model_calls: Counter[int]
    tool_runs: list[str]
    refunds: int
    journal: dict[str, list[str]]


def run_reference(ws: Workspace) -> Reference:
    """The crash agents' run with no kill, in a child process of its own."""
    child = ws.start(CRASH_AGENT, "reference")
    result = ws.result(child.outcome["execution_id"])
    return Reference(
        child=child,
        output=child.outcome["output"],
        event_types=[e.type for e in result.events],
        tool_calls=[(c.name, c.args, c.result) for c in result.tool_calls],
        model_calls=ws.model_calls(),
        tool_runs=[r["tool"] for r in ws.tool_runs()],
        refunds=len(ws.refunds()),
        journal=ws.journal(result.execution_id),
    )


# -- SIGKILL at chosen points, resume in a new process ----------------------------------------


@dataclass(frozen=True)
class KillPoint:
    at: str
    """The KEEL_TEST_KILL_AT (or, for an external kill, KEEL_TEST_HANG_AT) value."""
    journaled: tuple[str, ...]
    """The journal's finished steps when the process died: exactly what keel committed."""
    crashed_model_calls: int
    crashed_tools: tuple[str, ...]
    resumed_model_calls: int
    """Only the turns missing from the journal reach the model again."""
    resumed_tools: tuple[str, ...]
    """Only tools whose results are missing from the journal run again."""
    external: bool = False
    """The parent kills the child, having seen the refund in the ledger; else it kills itself."""


AFTER_REFUND_EFFECT = "tool:process_refund:after_effect"
BOTH_TOOLS = ("get_invoice", "process_refund")
KILL_POINTS = {
    "first-model-call-answered-not-journaled": KillPoint(
        "model:1:after", journaled=(),
        crashed_model_calls=1, crashed_tools=(),
        resumed_model_calls=4, resumed_tools=BOTH_TOOLS,
    ),
    # The triage turn asks for no tool, so it commits with its handoff: a crash in between
    # asks the model again (and nothing else).
    "inside-handoff-callback": KillPoint(
        "handoff:billing_specialist", journaled=(),
        crashed_model_calls=1, crashed_tools=(),
        resumed_model_calls=4, resumed_tools=BOTH_TOOLS,
    ),
    "model-call-answered-not-journaled": KillPoint(
        "model:2:after", journaled=STEPS[:2],
        crashed_model_calls=2, crashed_tools=(),
        resumed_model_calls=3, resumed_tools=BOTH_TOOLS,
    ),
    "tool-result-journaled-before-next-model-call": KillPoint(
        "model:3:before", journaled=STEPS[:4],
        crashed_model_calls=2, crashed_tools=("get_invoice",),
        resumed_model_calls=2, resumed_tools=("process_refund",),
    ),
    "inside-tool-after-side-effect": KillPoint(
        AFTER_REFUND_EFFECT, journaled=STEPS[:5],
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=("process_refund",),
    ),
    "final-answer-not-journaled": KillPoint(
        "model:4:after", journaled=STEPS[:6],
        crashed_model_calls=4, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=(),
    ),
    "external-kill-seen-through-ledger": KillPoint(
        AFTER_REFUND_EFFECT, journaled=STEPS[:5],
        crashed_model_calls=3, crashed_tools=BOTH_TOOLS,
        resumed_model_calls=1, resumed_tools=("process_refund",), external=True,
    ),
}


@dataclass(frozen=True)
class Recovery:
    """One kill point's story: the killed process, then the process that resumed its run."""

    ws: Workspace
    execution_id: str
    crashed: Child
    resumed: Child


def crash(ws: Workspace, point: KillPoint, key: str) -> Child:
    """Run the crash agents until `point`, where the process dies of SIGKILL."""
    if not point.external:
        return ws.start(CRASH_AGENT, key, killed=True, KEEL_TEST_KILL_AT=point.at)
    proc = ws.spawn("start", ws.url, CRASH_AGENT, TICKET, key, KEEL_TEST_HANG_AT=point.at)
    # The refund is in the backend's ledger and the tool's own line (its last act before it
    # blocks) is written: the process is inside the tool, past its side effect.
    wait_until(lambda: len(ws.refunds()) == 1
               and tuple(r["tool"] for r in ws.tool_runs()) == BOTH_TOOLS,
               "the refund was seen in the ledgers", proc)
    os.kill(proc.pid, signal.SIGKILL)
    child = ws.finish(proc)
    assert child.returncode == KILLED, str(child)
    return child


def crash_and_resume(ws: Workspace, point: KillPoint) -> Recovery:
    crashed = crash(ws, point, key="crash")
    execution_id = ws.execution_for("crash")
    # What survived is exactly what keel had committed, and the run is left RUNNING for its
    # dead owner: nothing marked it finished or failed.
    assert ws.status(execution_id) == Status.RUNNING.value, str(crashed)
    assert ws.journal(execution_id).get("done", []) == sorted(point.journaled), str(crashed)
    return Recovery(ws, execution_id, crashed, ws.resume(execution_id))


def crash_and_retry(ws: Workspace) -> Recovery:
    """Kill a run, then send the same request again with the same idempotency key."""
    crashed = ws.start(CRASH_AGENT, "retry", killed=True, KEEL_TEST_KILL_AT="model:2:after")
    execution_id = ws.execution_for("retry")
    retry = ws.spawn("start", ws.url, CRASH_AGENT, TICKET, "retry")
    return Recovery(ws, execution_id, crashed, ws.finish(retry, timeout=RETRY_TIMEOUT))


@dataclass(frozen=True)
class GatedRecovery:
    ws: Workspace
    execution_id: str
    first: Child  # ran until the refund waited for approval
    killed: Child  # resumed after the approval, killed inside the refund
    finished: Child  # resumed again, to the end


def approve_then_crash_in_tool(ws: Workspace) -> GatedRecovery:
    """Wait for approval, approve, die inside the approved refund, resume again."""
    first = ws.start(GATED_CRASH_AGENT, "gated")
    assert first.outcome["status"] == Status.WAITING.value, str(first)
    execution_id = first.outcome["execution_id"]
    ws.decide("approve", execution_id, "dana")
    killed = ws.resume(execution_id, killed=True, KEEL_TEST_KILL_AT=AFTER_REFUND_EFFECT)
    # The approval was committed before the intent, and the intent has no result.
    journal = ws.journal(execution_id)
    assert journal == {"done": sorted(STEPS[:5]), "intent": [REFUND]}, f"{journal}\n{killed}"
    assert ws.status(execution_id) == Status.RUNNING.value, str(killed)
    return GatedRecovery(ws, execution_id, first, killed, ws.resume(execution_id))


@dataclass
class CrashRuns:
    """The reference runs and the selected crash scenarios, running side by side.

    Each child spends ~2 s importing the SDK, so the scenarios run concurrently in the
    background (one per core) and each test waits for its own; an assertion that fails in a
    scenario is raised by the test that waits for it. Each is keyed by its store's kind.
    """

    references: dict[str, Future[Reference]] = field(default_factory=dict)
    recoveries: dict[tuple[str, KillPoint], Future[Recovery]] = field(default_factory=dict)
    gated: dict[str, Future[GatedRecovery]] = field(default_factory=dict)
    retries: dict[str, Future[Recovery]] = field(default_factory=dict)


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# On PostgreSQL, besides the reference run and the approved call killed mid-call: a turn
# answered but not committed, and a process killed from outside, its connections open, after
# a tool's side effect and before its result was committed. The other five kill points leave
# the store as these do, with a shorter or longer committed prefix of the journal; running
# them there too would add ~20 s to the suite.
ON_POSTGRES = ("model-call-answered-not-journaled", "external-kill-seen-through-ledger")
KILLS = [pytest.param("sqlite", point, id=f"sqlite-{name}")
         for name, point in KILL_POINTS.items()] + [
    pytest.param("postgres", KILL_POINTS[name], id=f"postgres-{name}",
                 marks=pytest.mark.postgres) for name in ON_POSTGRES]


@pytest.fixture(scope="module")
def crash_runs(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    new_postgres_url: Callable[[], str],
) -> Iterator[CrashRuns]:
    # Only what the selected tests of this module need (pytest -k runs one scenario, say).
    tests = [i for i in request.session.items if i.path == request.path]

    def selected(test: Callable[..., None]) -> list[dict[str, Any]]:
        """The parameters of the selected runs of `test`."""
        return [i.callspec.params for i in tests  # type: ignore[attr-defined]
                if getattr(i, "originalname", None) == test.__name__]

    kills = {(p["store"], p["point"]) for p in selected(
        test_sigkill_then_resume_in_new_process_finishes_like_reference)}
    retries = {p["store"] for p in selected(
        test_retrying_run_with_its_idempotency_key_after_a_crash_finishes_it)}
    gated = {p["store"] for p in selected(
        test_approved_tool_killed_mid_call_runs_again_with_same_key_next_attempt)}
    references = {p["store"] for p in selected(
        test_reference_run_makes_the_calls_the_kill_points_assume)}
    references |= {store for store, _ in kills} | retries | gated
    runs = CrashRuns()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:

        def submit(scenario: Callable[..., Any], name: str, store: str, *args: Any) -> Future[Any]:
            root = tmp_path_factory.mktemp(f"{name}-{store}")
            try:
                url = new_postgres_url() if store == "postgres" else f"sqlite:///{root}/keel.db"
            except (pytest.skip.Exception, pytest.fail.Exception) as outcome:
                # No PostgreSQL server: only the tests that wait for this skip (fail in CI).
                failed: Future[Any] = Future()
                failed.set_exception(outcome)
                return failed
            return pool.submit(scenario, Workspace(root, url), *args)

        for store in ("sqlite", "postgres"):
            if store in references:
                runs.references[store] = submit(run_reference, "reference", store)
        for store in ("sqlite", "postgres"):
            for i, point in enumerate(KILL_POINTS.values()):
                if (store, point) in kills:
                    runs.recoveries[store, point] = submit(crash_and_resume, f"kill{i}", store,
                                                           point)
        # While keel has the bug, the retry sits out its whole timeout, in the background while
        # the tests below run: the tests that wait for these two come last in the file.
        for store in ("sqlite", "postgres"):
            if store in retries:
                runs.retries[store] = submit(crash_and_retry, "retry", store)
            if store in gated:
                runs.gated[store] = submit(approve_then_crash_in_tool, "gated", store)
        yield runs
        pool.shutdown(cancel_futures=True)


@pytest.fixture
def reference(crash_runs: CrashRuns, store: str) -> Reference:
    return crash_runs.references[store].result()


@pytest.mark.parametrize("store", STORES)
def test_reference_run_makes_the_calls_the_kill_points_assume(reference: Reference) -> None:
    # The expectations in KILL_POINTS count on this shape; if the scripted model changes, this
    # fails first and says why.
    pid = reference.child.pid
    assert reference.child.outcome["status"] == Status.COMPLETED.value, str(reference.child)
    assert "INV-8821" in reference.output
    assert reference.model_calls == Counter({pid: 4})
    assert reference.tool_runs == ["get_invoice", "process_refund"]
    assert reference.refunds == 1
    assert reference.journal == {"done": sorted([*STEPS, CONVERSATION])}
    assert "resumed" not in reference.event_types


@pytest.mark.parametrize(("store", "point"), KILLS)
def test_sigkill_then_resume_in_new_process_finishes_like_reference(
    store: str, point: KillPoint, crash_runs: CrashRuns, reference: Reference
) -> None:
    recovery = crash_runs.recoveries[store, point].result()
    ws, crashed, resumed = recovery.ws, recovery.crashed, recovery.resumed
    report = f"{crashed}\n{resumed}"
    outcome = resumed.outcome
    assert outcome["status"] == Status.COMPLETED.value, report
    assert outcome["output"] == reference.output, report
    # keel imported the agent by the reference it recorded; the resuming process had not.
    assert outcome["agent_modules_preloaded"] == [], report

    # Journaled turns are answered from the journal, in the crashed and the resumed process.
    calls = ws.model_calls()
    assert calls == Counter({crashed.pid: point.crashed_model_calls,
                             resumed.pid: point.resumed_model_calls}), report
    # Journaled tool results are replayed; the tool that died mid-call runs again.
    assert [r["tool"] for r in ws.tool_runs(crashed.pid)] == list(point.crashed_tools), report
    assert [r["tool"] for r in ws.tool_runs(resumed.pid)] == list(point.resumed_tools), report

    result = ws.result(recovery.execution_id)
    assert [(c.name, c.args, c.result) for c in result.tool_calls] == reference.tool_calls
    # Each journaled step's events were written once, with the step; the resume adds one event.
    types = [e.type for e in result.events]
    assert types.count("resumed") == 1, types
    assert [t for t in types if t != "resumed"] == reference.event_types
    (resumed_event,) = [e for e in result.events if e.type == "resumed"]
    assert "previous owner stopped" in str(resumed_event.reason), resumed_event
    assert_stable_idempotency_keys(ws, result)


def assert_stable_idempotency_keys(ws: Workspace, result: AgentResult) -> None:
    """Every run of a tool call, in any process, saw the key `<execution id>:<call id>`."""
    call_ids = {c.name: c.call_id for c in result.tool_calls}
    expected = {name: f"{result.execution_id}:{call_id}" for name, call_id in call_ids.items()}
    runs = ws.tool_runs()
    assert runs, "no tool ran at all"
    for run in runs:
        assert run["call_id"] == call_ids[run["tool"]], run
        assert run["idempotency_key"] == expected[run["tool"]], run
    refunds = ws.refunds()
    assert len(refunds) == sum(r["tool"] == "process_refund" for r in runs)
    assert {r["idempotency_key"] for r in refunds} == {expected["process_refund"]}, refunds


# -- approvals across processes ---------------------------------------------------------------


def wait_for_refund_approval(ws: Workspace, key: str) -> tuple[Child, str, str]:
    """Process A: run the example's triage agent until it waits; returns (child, id, call id)."""
    child = ws.start(SUPPORT_AGENT, key)
    assert child.outcome["status"] == Status.WAITING.value, str(child)
    execution_id = child.outcome["execution_id"]
    pending = ws.result(execution_id).pending_approvals
    assert [p.tool_name for p in pending] == ["process_refund"], str(child)
    assert ws.refunds() == [], "the gated refund ran before anyone approved it"
    return child, execution_id, pending[0].call_id


def test_approve_in_another_process_then_resume_in_a_third(
    tmp_path: Path, database_url: str
) -> None:
    ws = Workspace(tmp_path, database_url)
    waited, execution_id, call_id = wait_for_refund_approval(ws, "approve")

    approver = ws.decide("approve", execution_id, "dana")
    assert approver.outcome == {"ok": True, "decided": [call_id]}, str(approver)
    assert ws.status(execution_id) == Status.QUEUED.value

    resumed = ws.resume(execution_id)
    report = f"{waited}\n{approver}\n{resumed}"
    output = resumed.outcome["output"]
    assert resumed.outcome["status"] == Status.COMPLETED.value, report
    assert "refunded" in output and "INV-8821" in output, report
    refunds = ws.refunds()
    assert len(refunds) == 1, refunds
    assert refunds[0]["idempotency_key"] == f"{execution_id}:{call_id}"
    assert refunds[0]["pid"] == resumed.pid
    # The three journaled turns of process A are not asked again; only the answer is.
    assert ws.model_calls() == Counter({waited.pid: 3, resumed.pid: 1}), report
    with AgentRuntime(ws.url, auto_resume=False) as runtime:
        decisions = [(a.status, a.reviewer) for a in runtime.store.approvals(execution_id)]
    assert decisions == [("approved", "dana")]


# SQLite only, to save ~7 s: approving from another process (above) runs on both stores, and
# a rejection reaches the model on both in tests/runtime/test_approvals.py.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reject_in_another_process_then_resume_in_a_third(workspace: Workspace) -> None:
    ws = workspace
    reason = "Refunds need a second reviewer this week"
    waited, execution_id, call_id = wait_for_refund_approval(ws, "reject")

    rejecter = ws.decide("reject", execution_id, "lee", reason)
    assert rejecter.outcome == {"ok": True, "decided": [call_id]}, str(rejecter)

    resumed = ws.resume(execution_id)
    report = f"{waited}\n{rejecter}\n{resumed}"
    assert resumed.outcome["status"] == Status.COMPLETED.value, report
    # The scripted model answers from the conversation alone: the reason reached it.
    assert reason in resumed.outcome["output"], report
    assert not ws.refund_ledger.exists(), ws.refunds()
    assert ws.model_calls() == Counter({waited.pid: 3, resumed.pid: 1}), report
    refund = [c for c in ws.result(execution_id).tool_calls if c.name == "process_refund"]
    assert [c.status for c in refund] == ["rejected"]
    assert reason in str(refund[0].result)


def test_two_processes_approving_at_once_exactly_one_wins(
    tmp_path: Path, database_url: str
) -> None:
    ws = Workspace(tmp_path, database_url)
    # The run to decide on is made here, in the test process: the deciders are what is tested.
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(triage_agent, TICKET)
    assert waiting.status is Status.WAITING, waiting.error
    execution_id = waiting.execution_id
    (call_id,) = [p.call_id for p in waiting.pending_approvals]

    go = tmp_path / "go"
    reviewers = ("ana", "ben")
    ready = [tmp_path / f"ready-{r}" for r in reviewers]
    procs = [ws.spawn("approve", ws.url, execution_id, reviewer, "--ready", str(flag),
                      "--go", str(go)) for reviewer, flag in zip(reviewers, ready, strict=True)]
    # Both have imported keel and opened the store; release them together.
    wait_until(lambda: all(flag.exists() for flag in ready), "both approvers are ready", *procs)
    go.touch()
    approvers = [ws.finish(proc) for proc in procs]
    report = "\n".join(map(str, approvers))
    assert all(a.returncode == 0 for a in approvers), report

    outcomes = {reviewer: a.outcome for reviewer, a in zip(reviewers, approvers, strict=True)}
    winners = [r for r, o in outcomes.items() if o["ok"]]
    assert len(winners) == 1, report
    (loser,) = set(reviewers) - set(winners)
    assert outcomes[winners[0]]["decided"] == [call_id], report
    assert outcomes[loser]["error"] in {"AlreadyDecidedError", "NotWaitingError"}, report

    with AgentRuntime(ws.url, auto_resume=False) as runtime:
        decisions = [(a.status, a.reviewer) for a in runtime.store.approvals(execution_id)]
    assert decisions == [("approved", winners[0])]
    events = [e.type for e in ws.result(execution_id).events]
    assert events.count("approved") == 1, events
    assert ws.status(execution_id) == Status.QUEUED.value


# -- a crash inside an approved call ----------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_approved_tool_killed_mid_call_runs_again_with_same_key_next_attempt(
    store: str, crash_runs: CrashRuns, reference: Reference
) -> None:
    """A gated call writes an intent row once approved; a crash inside it counts the attempt."""
    run = crash_runs.gated[store].result()
    ws, first, killed, finished = run.ws, run.first, run.killed, run.finished
    report = f"{first}\n{killed}\n{finished}"
    assert finished.outcome["status"] == Status.COMPLETED.value, report
    assert finished.outcome["output"] == reference.output, report
    runs = [(r["tool"], r["pid"], r["attempt"]) for r in ws.tool_runs()]
    assert runs == [("get_invoice", first.pid, 1), ("process_refund", killed.pid, 1),
                    ("process_refund", finished.pid, 2)], report
    assert ws.model_calls() == Counter({first.pid: 3, finished.pid: 1}), report
    assert_stable_idempotency_keys(ws, ws.result(run.execution_id))


# -- retrying a crashed request ---------------------------------------------------------------


# SQLite only, to save ~5 s: a taken idempotency key and a dead owner's lease are met on
# PostgreSQL by tests/runtime/test_store.py and the kill points above.
@pytest.mark.parametrize("store", ["sqlite"])
def test_retrying_run_with_its_idempotency_key_after_a_crash_finishes_it(
    store: str, crash_runs: CrashRuns, reference: Reference
) -> None:
    """The usual answer to a crashed request is to send it again with the same key."""
    recovery = crash_runs.retries[store].result()
    ws, crashed, retried = recovery.ws, recovery.crashed, recovery.resumed
    report = f"{crashed}\n{retried}"
    assert retried.returncode == 0, report
    assert retried.outcome["status"] == Status.COMPLETED.value, report
    assert retried.outcome["output"] == reference.output, report
    # The same execution, carried on from its journal: the triage turn is not asked again.
    assert retried.outcome["execution_id"] == recovery.execution_id, report
    assert ws.model_calls() == Counter({crashed.pid: 2, retried.pid: 3}), report
    assert_stable_idempotency_keys(ws, ws.result(recovery.execution_id))
