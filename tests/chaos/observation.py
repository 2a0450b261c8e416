"""What a scenario is told (`Fault`) and what it saw (`Observation`), and how the parent reads
its processes and files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from keel.runtime._events import Event
from keel.runtime._schema import ApprovalRow, StepRow

__all__ = ["Fault", "Observation", "process_state", "read_lines"]


@dataclass(frozen=True)
class Fault:
    point: str
    nth: int
    kind: Literal["kill", "stop", "disconnect"]
    wake_after: float = 0.0
    """A stopped process is woken this long after another took its run over: at once, it
    races the new owner; later, it wakes to a run that went on without it."""

    @property
    def label(self) -> str:
        return f"stop+{self.wake_after:g}s" if self.kind == "stop" else self.kind

    def env(self) -> dict[str, str]:
        return {"KEEL_FAULT_AT": f"{self.point}#{self.nth}", "KEEL_FAULT": self.kind}


@dataclass
class Observation:
    """What a scenario left behind, read after every process of it has exited."""

    execution_id: str = ""
    status: str = ""
    path: list[str] = field(default_factory=list)         # statuses seen, in order
    resolutions: list[str] = field(default_factory=list)  # "record call_5_send_receipt", ...
    faulted: str | None = None       # the role of the process that failed ("worker1", ...)
    crash_intents: list[str] = field(default_factory=list)  # unsafe calls cut off mid-call
    lost: list[str] = field(default_factory=list)       # times the run sat stuck
    longest_unclaimed: float = 0.0  # seconds the run sat queued or on a lapsed lease
    problems: list[str] = field(default_factory=list)   # the harness's own troubles
    steps: dict[str, StepRow] = field(default_factory=dict)
    approvals: list[ApprovalRow] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    passes: Counter[str] = field(default_factory=Counter)  # fault points passed, all processes
    output: Any = None
    seconds: float = 0.0


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def process_state(pid: int) -> str:
    """The process's state letter (T: stopped); X once it is dead or reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"
    return "X" if state in ("Z", "X") else state
