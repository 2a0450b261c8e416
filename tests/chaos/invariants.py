"""What must hold after every trial, checked against the ledger, the store and the reference.

Each check returns the violations it found (empty: it holds).

    lost       no lost executions: the run ends COMPLETED, FAILED, WAITING or IN_DOUBT, and is
               never left unclaimed longer than its lease plus a poll
    rerun      no journaled step executed again: no tool runs after its result committed
    approval   no gated tool executed without an approval committed first
    keyed      an idempotent-keyed call always sends the same key, and is applied at most once
    unsafe     no silent duplicate of an unsafe tool: at most one effect per call, and a call
               cut off between its intent and its result leaves the run IN_DOUBT
    reference  the final answer and the tool calls equal the crash-free reference run's
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from chaos.observation import Observation
from chaos.workload import GATED, KEYED
from keel import Status

__all__ = ["CHECKS", "check"]

CHECKS = ("lost", "rerun", "approval", "keyed", "unsafe", "reference")
ENDINGS = {Status.COMPLETED.value, Status.FAILED.value, Status.WAITING.value,
           Status.IN_DOUBT.value}


def check(obs: Observation, reference: Observation) -> dict[str, list[str]]:
    return {
        "lost": _lost(obs),
        "rerun": _rerun(obs),
        "approval": _approval(obs),
        "keyed": _keyed(obs),
        "unsafe": _unsafe(obs),
        "reference": _reference(obs, reference),
    }


def _lost(obs: Observation) -> list[str]:
    found = list(obs.lost)
    if obs.status not in ENDINGS:
        found.append(f"ended {obs.status or 'unadmitted'}")
    return found


def _rerun(obs: Observation) -> list[str]:
    found = []
    for key, step in obs.steps.items():
        if step.kind != "tool" or step.status != "done" or step.finished_at is None:
            continue
        call_id = key.removeprefix("tool:")
        for run in _lines(obs, "run", call_id):
            if run["ts"] > step.finished_at:
                found.append(f"{step.name} {call_id} ran again {run['ts'] - step.finished_at:.3f}"
                             f" s after its result committed (pid {run['pid']})")
    return found


def _approval(obs: Observation) -> list[str]:
    decided = {a.call_id: a for a in obs.approvals}
    found = []
    for run in obs.ledger:
        if run["kind"] != "run" or run["tool"] not in GATED:
            continue
        approval = decided.get(run["call_id"])
        if approval is None or approval.status != "approved" or approval.decided_at is None:
            state = "no approval" if approval is None else f"approval {approval.status}"
            found.append(f"{run['tool']} {run['call_id']} ran with {state}")
        elif approval.decided_at >= run["ts"]:
            found.append(f"{run['tool']} {run['call_id']} ran "
                         f"{approval.decided_at - run['ts']:.3f} s before its approval")
    for key, step in obs.steps.items():
        approval = decided.get(key.removeprefix("tool:"))
        if step.name in GATED and approval is not None and approval.decided_at is not None \
                and approval.decided_at > step.started_at:
            found.append(f"{step.name}'s intent row predates its approval")
    return found


def _keyed(obs: Observation) -> list[str]:
    found = []
    for call_id in sorted({r["call_id"] for r in obs.ledger if r["tool"] in KEYED}):
        requests = _lines(obs, "request", call_id)
        keys = {r["key"] for r in requests}
        applied = sum(1 for r in requests if r["applied"])
        if len(keys) > 1:
            found.append(f"{call_id} sent {len(keys)} different idempotency keys")
        if applied > 1:
            found.append(f"{call_id} was applied {applied} times")
    return found


def _unsafe(obs: Observation) -> list[str]:
    found = []
    effects = Counter(r["call_id"] for r in obs.ledger if r["kind"] == "effect")
    for call_id, count in sorted(effects.items()):
        if count > 1:
            found.append(f"{call_id} had its effect {count} times")
    in_doubt = {e.call_id for e in obs.events if e.type == "in_doubt"}
    for call_id in obs.crash_intents:
        if call_id not in in_doubt:
            found.append(f"{call_id} was cut off after its intent, yet the run never went "
                         "IN_DOUBT about it")
    return found


def _reference(obs: Observation, reference: Observation) -> list[str]:
    found = []
    if obs.status != Status.COMPLETED.value:
        found.append(f"ended {obs.status}, the reference {reference.status}")
    elif answer(obs.output) != answer(reference.output):
        found.append(f"answered {answer(obs.output)!r}, the reference "
                     f"{answer(reference.output)!r}")
    calls, expected = tool_calls(obs), tool_calls(reference)
    if calls != expected:
        found.append(f"journaled the tool calls {calls}, the reference {expected}")
    done = sum(1 for e in obs.events if e.type == "done")
    if obs.status == Status.COMPLETED.value and done != 1:
        found.append(f"{done} done events")
    return found


def answer(output: Any) -> str:
    """The final answer: a graph's output is its state, the other frameworks' the answer."""
    if isinstance(output, dict) and "messages" in output:
        return str(output["messages"][-1]["content"])
    return str(output)


def tool_calls(obs: Observation) -> list[str]:
    """The journaled tool calls, `name(args)` by call id (the results show in the answer)."""
    return [f"{step.name}({json.loads(step.payload or '{}').get('args')})"
            for _, step in sorted(obs.steps.items()) if step.kind == "tool"]


def _lines(obs: Observation, kind: str, call_id: str) -> list[dict[str, Any]]:
    return [line for line in obs.ledger if line["kind"] == kind and line["call_id"] == call_id]
