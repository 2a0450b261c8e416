"""One run of the order desk through `keel worker` processes, with a fault or without.

Two workers serve the store; a third process queues the run. The parent only watches the store
and the processes, as an operator would: it approves the gated charge from another process
(`keel approve`); it wakes a stopped process a while after another worker took its run over
(or, if none did, once the run counts as stuck); it resolves an IN_DOUBT run from the
side-effect ledger once the process that was running the call is dead or done; and it notes
any time the run sat unclaimed for longer than a poll (plus slack) after its lease ran out.
Every child shares the fault plan and the trace (keel.runtime._faults), so exactly one of them
fails, at the n-th pass of the fault point.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chaos import ledger
from chaos.launcher import Launcher
from chaos.observation import Fault, Observation, process_state, read_lines
from chaos.workload import UNSAFE, Order
from keel import AgentHandle, AgentRuntime, Status
from keel.runtime._json import loads
from keel.runtime._leases import owner_process
from keel.runtime._store import Store

__all__ = ["LEASE", "Scenario"]

LEASE = 1.5     # seconds: short, so that takeovers come quickly
SLACK = 3.0     # seconds a loaded 2-core box may add to a takeover before it counts as stuck
TIMEOUT = 90.0  # a run that has not finished by then is lost
AGENTS = {"openai": "chaos.agents_openai:agent", "langgraph": "chaos.agents_graph:agent",
          "adk": "chaos.agents_adk:agent"}
SETTLED = {Status.COMPLETED.value, Status.FAILED.value, Status.CANCELLED.value}


class Scenario:
    def __init__(self, launcher: Launcher, root: Path, url: str, *, framework: str,
                 order: Order, fault: Fault | None = None, workers: int = 2,
                 model_delay: float = 0.0) -> None:
        self.launcher, self.root, self.url = launcher, root, url
        self.framework, self.order, self.fault, self.workers = framework, order, fault, workers
        self.model_delay = model_delay
        self.poll = 0.1 if url.startswith("sqlite") else 1.0  # the workers' poll interval
        self.obs = Observation()
        self.roles: dict[int, str] = {}  # pid -> role, for every child
        self.ledger_path, self.trace = root / "ledger.jsonl", root / "trace.txt"
        self._approver: int | None = None
        self._stopped: tuple[int, float, int] | None = None  # pid, since, lease epoch then
        self._taken_over_at: float | None = None
        self._woken: tuple[int, int] | None = None  # a woken process, its log's length then
        self._in_doubt_since: float | None = None
        self._fault_pid: int | None = None
        self._fault_seen = False
        self._waiting_since: float | None = None

    def run(self) -> Observation:
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        store = Store(self.url)  # the schema exists before any child connects
        try:
            for n in range(self.workers):
                self._spawn(f"worker{n}", "keel.cli:main", [
                    "worker", AGENTS[self.framework], "--db", self.url, "--lease", str(LEASE),
                    "--concurrency", "1"])
            for pid, role in list(self.roles.items()):
                self._wait_for(lambda p=pid: "serving" in self._log(p), f"{role} serves", pid)
            enqueuer = self._spawn("enqueuer", "chaos.launcher:enqueue", [
                self.url, AGENTS[self.framework], self.order.ticket, "chaos-trial"])
            self._wait_for(lambda: self.launcher.exit_code(enqueuer) is not None,
                           "the run is queued")
            self.obs.execution_id = json.loads(self._log(enqueuer).splitlines()[-1])[
                "execution_id"]
            self._drive(store)
        finally:
            self._stop_everyone()
            self._collect(store)
            store.close()
            self.obs.seconds = time.monotonic() - started
        return self.obs

    # -- driving ----------------------------------------------------------------------------

    def _drive(self, store: Store) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            row = store.execution(self.obs.execution_id)
            if not self.obs.path or self.obs.path[-1] != row.status:
                self.obs.path.append(row.status)
            self._watch_fault(store, row)
            self._watch_progress(row)
            if row.status in SETTLED and self._stopped is None:  # a stop outlasts the lease
                return
            if row.status == Status.WAITING.value:
                self._approve()
            elif row.status == Status.IN_DOUBT.value and self._old_owner_is_done():
                self._resolve(store)
            if time.monotonic() > deadline:
                self.obs.lost.append(f"still {row.status} after {TIMEOUT:.0f} s")
                return
            time.sleep(0.03)

    def _watch_fault(self, store: Store, row: Any) -> None:
        if self.fault is None:
            return
        if self._fault_pid is None:
            fired = [line.split() for line in read_lines(self.trace) if line.startswith("! ")]
            if not fired:
                return
            self._fault_pid = int(fired[0][2])
            self.obs.faulted = self.roles.get(self._fault_pid, f"pid {self._fault_pid}")
        state = process_state(self._fault_pid)
        if not self._fault_seen and self.fault.kind == "disconnect":
            self._fault_seen = True  # the process goes on: nothing was cut off
        if not self._fault_seen and state == ("T" if self.fault.kind == "stop" else "X"):
            self._fault_seen = True
            # The failed process writes nothing more (a stopped one, nothing until it wakes):
            # if it held the run, an unsafe call with an intent and no result now was cut off
            # mid-call. (Another process failing, an approver say, cuts off nothing: the
            # run's owner may be inside such a call and finish it.)
            owner = owner_process(row.lease_owner)
            if owner is not None and owner[1] == self._fault_pid:
                self.obs.crash_intents = sorted(
                    key.removeprefix("tool:") for key, step in store.steps(row.id).items()
                    if step.kind == "tool" and step.name in UNSAFE and step.status == "intent")
            if state == "T":
                self._stopped = (self._fault_pid, time.monotonic(), row.lease_epoch)
        if self._stopped is not None:
            pid, since, epoch = self._stopped
            now = time.monotonic()
            if self._taken_over_at is None and (row.lease_epoch > epoch or row.status in SETTLED):
                self._taken_over_at = now
            woken = self._taken_over_at is not None and \
                now - self._taken_over_at >= self.fault.wake_after
            # Woken once another worker has had the run for a while, or, if none took it,
            # after the moment the progress check calls the run stuck.
            if now - since > LEASE and (woken or now - since > LEASE + self.poll + SLACK + 1):
                self._woken = (pid, len(self._log(pid)))
                os.kill(pid, signal.SIGCONT)
                self._stopped = None
                self._waiting_since = None

    def _watch_progress(self, row: Any) -> None:
        """The clock of the `lost` invariant: a run nobody owns (queued, or running on a lease
        that ran out) must be claimed within one poll, plus the slack a loaded box needs,
        unless a process stopped inside its claim holds it (and on SQLite, the store)."""
        now = time.time()
        unowned_since = None
        if row.status == Status.RUNNING.value and row.lease_expires_at is not None:
            unowned_since = row.lease_expires_at
        if row.status == Status.QUEUED.value:
            self._waiting_since = self._waiting_since or now
            unowned_since = None if self._stopped is not None else self._waiting_since
        else:
            self._waiting_since = None
        if unowned_since is None or now < unowned_since:
            return
        self.obs.longest_unclaimed = max(self.obs.longest_unclaimed, now - unowned_since)
        bound = self.poll + SLACK
        what = "queued" if row.status == Status.QUEUED.value else "running on a lapsed lease"
        note = f"{what} and unclaimed for more than {bound:.1f} s (a poll + {SLACK:.0f} s)"
        if now - unowned_since > bound and note not in self.obs.lost:
            self.obs.lost.append(note)

    def _approve(self) -> None:
        if self._approver is not None:
            code = self.launcher.exit_code(self._approver)
            if code is None:
                return
            if code not in (0, -signal.SIGKILL):
                self.obs.problems.append(f"keel approve exited {code}: "
                                         f"{self._log(self._approver)[-300:]}")
            self._approver = None
            return  # look at the status again first
        approvals = sum(1 for role in self.roles.values() if role.startswith("approver"))
        if approvals >= 5:
            if "approvals never took" not in self.obs.lost:
                self.obs.lost.append("approvals never took")
            return
        self._approver = self._spawn(f"approver{approvals}", "keel.cli:main", [
            "approve", self.obs.execution_id, "--db", self.url, "--as", "chaos-reviewer"])

    def _old_owner_is_done(self) -> bool:
        """Whether the operator may decide: a call is in doubt while the process that was
        running it may still act (stopped, or woken and not yet told it lost the run). A
        careful operator waits until it is dead or done; after 15 s this one decides anyway
        and notes it."""
        self._in_doubt_since = self._in_doubt_since or time.monotonic()
        if time.monotonic() - self._in_doubt_since > 15:
            self.obs.problems.append("decided an in-doubt call while its old owner lived on")
            return True
        if self._stopped is not None:
            return False
        if self._woken is None:
            return True
        pid, seen = self._woken
        eid = self.obs.execution_id
        said = self._log(pid)[seen:]
        done = self.launcher.exit_code(pid) is not None or any(
            marker in said for marker in (f"{eid} was taken over", f"{eid} is ",
                                          f"execution {eid} stopped", f"execution {eid} ("))
        if done:
            self._woken = None
        return done

    def _resolve(self, store: Store) -> None:
        """The operator's part: the ledger says whether the calls in doubt had their effect
        (keel resolves every call in doubt at once, with one result to record)."""
        in_doubt = [e.call_id for e in store.events(self.obs.execution_id)
                    if e.type == "in_doubt"][len(self.obs.resolutions):]
        effects = {line["call_id"]: line["result"] for line in ledger.read(self.ledger_path)
                   if line["kind"] == "effect"}
        done = [effects[call_id] for call_id in in_doubt if call_id in effects]
        with AgentRuntime(self.url, auto_resume=False) as runtime:
            handle = AgentHandle(self.obs.execution_id, runtime=runtime)
            if not done:
                handle.resolve("retry", reviewer="chaos-operator")
            elif len(done) == len(in_doubt) == 1:
                handle.resolve("record", result=done[0], reviewer="chaos-operator")
            else:
                self.obs.problems.append(f"calls {in_doubt} in doubt at once, not all alike")
                handle.resolve("fail", reason="calls in doubt at once", reviewer="chaos")
        self.obs.resolutions += [f"{'record' if done else 'retry'} {c}" for c in in_doubt]
        self._in_doubt_since = None

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, role: str, target: str, argv: list[str]) -> int:
        env = {"CHAOS_LEDGER": str(self.ledger_path), "KEEL_FAULT_TRACE": str(self.trace),
               "KEEL_DATABASE_URL": self.url, "CHAOS_MODEL_DELAY": str(self.model_delay),
               **(self.fault.env() if self.fault else {})}
        pid = self.launcher.spawn(target, argv, env=env, log=self.root / f"{role}.log",
                                  cwd=self.root)
        self.roles[pid] = role
        return pid

    def _wait_for(self, condition: Any, what: str, pid: int | None = None) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            if pid is not None and self.launcher.exit_code(pid) is not None:
                raise RuntimeError(f"{self.roles[pid]} exited before {what}: {self._log(pid)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting until {what}")
            time.sleep(0.02)

    def _stop_everyone(self) -> None:
        """Wake any stopped process, ask every live one to stop, and wait: a zombie worker's
        late effects are in the ledger before anyone reads it."""
        live = [pid for pid in self.roles if self.launcher.exit_code(pid) is None]
        for pid in live:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for pid in live:
            while self.launcher.exit_code(pid) is None:
                if time.monotonic() > deadline:
                    self.obs.problems.append(f"{self.roles[pid]} ignored SIGTERM for 20 s")
                    os.kill(pid, signal.SIGUSR1)  # its threads' stacks go to its log
                    time.sleep(0.5)
                    os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + 5
                time.sleep(0.02)

    def _collect(self, store: Store) -> None:
        obs = self.obs
        obs.ledger = ledger.read(self.ledger_path)
        obs.passes = Counter(line.split(" ", 1)[0] for line in read_lines(self.trace)
                             if not line.startswith("! "))
        for pid, role in self.roles.items():
            # A worker logs an execution that ended in an error of its own (ADK logs the
            # errors it wraps, a lost lease among them, as tracebacks of its own).
            text = self._log(pid)
            if re.search(r"execution \w+ stopped", text) or \
                    not role.startswith("worker") and "Traceback" in text:
                obs.problems.append(f"{role} logged an error (see {role}.log)")
        if not obs.execution_id:
            return
        row, obs.events, obs.approvals, obs.steps = store.snapshot(obs.execution_id)
        obs.status = row.status
        obs.output = loads(row.output) if row.output is not None else None

    def _log(self, pid: int) -> str:
        path = self.root / f"{self.roles[pid]}.log"
        return path.read_text() if path.exists() else ""

