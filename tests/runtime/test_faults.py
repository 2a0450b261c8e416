"""Fault points (keel.runtime._faults), in child processes: a group of processes sharing a trace
fails once, at the n-th pass overall; a forked child reads its own plan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

PASS_TWICE = ("from keel.runtime._faults import fault_point\n"
              "fault_point('tool:after_effect'); fault_point('tool:after_commit')\n"
              "fault_point('tool:after_effect')\n")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_FAULT")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, text=True,
                          capture_output=True, timeout=60)


def test_processes_sharing_a_trace_fail_once_at_the_nth_pass_of_them_all(
        tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    plan = {"KEEL_FAULT_AT": "tool:after_effect#3", "KEEL_FAULT": "kill",
            "KEEL_FAULT_TRACE": str(trace)}
    first = _python(PASS_TWICE, **plan)  # passes 1 and 2
    second = _python(PASS_TWICE, **plan)  # pass 3 kills it
    third = _python(PASS_TWICE, **plan)  # passes 4 and 5: the group failed already
    assert [first.returncode, second.returncode, third.returncode] == [0, -signal.SIGKILL, 0]
    lines = trace.read_text().splitlines()
    [fired] = [line.split() for line in lines if line.startswith("! ")]
    assert fired[1] == "tool:after_effect" and fired[4] == "kill"
    assert [line.split()[0] for line in lines if not line.startswith("! ")] == [
        "tool:after_effect", "tool:after_commit", "tool:after_effect",  # first
        "tool:after_effect",  # second, killed at its first pass
        "tool:after_effect", "tool:after_commit", "tool:after_effect",  # third
    ]
    assert "keel fault: kill at tool:after_effect" in second.stderr


def test_a_trace_alone_records_the_passes_and_fails_nowhere(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    assert _python(PASS_TWICE, KEEL_FAULT_TRACE=str(trace)).returncode == 0
    assert [line.split()[0] for line in trace.read_text().splitlines()] == [
        "tool:after_effect", "tool:after_commit", "tool:after_effect"]


FORK = """
import os
from keel.runtime._faults import fault_point
fault_point("tool:after_effect")  # read the (empty) plan, as a preloading parent would
pid = os.fork()
if pid == 0:
    os.environ.update(KEEL_FAULT_AT="tool:after_effect", KEEL_FAULT="kill")
    fault_point("tool:after_effect")
    os._exit(0)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_forked_child_reads_its_own_plan() -> None:
    done = _python(FORK)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == -signal.SIGKILL  # the child's plan, set after the fork
