"""A fork server for the suite's processes: workers, approvers and enqueuers start in
milliseconds instead of the seconds it takes to import three agent frameworks.

`python -m chaos.launcher` imports keel, the frameworks and the order-desk agents once, while it
is still single-threaded and holds no connection, then forks a child per request. A child sets
its environment (read by keel when it first needs it: the fault plan, the lease owner), sends its
output to a log file and calls `module:function(argv)`, as a fresh process would. Children die
with the launcher (PR_SET_PDEATHSIG), and the launcher exits when its stdin closes.

`Launcher` is the parent's end: JSON lines over the launcher's stdin and stdout.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

__all__ = ["Launcher", "enqueue"]

PRELOAD = (
    "keel", "keel.cli", "keel.runtime._worker", "keel.runtime._listen",
    "keel.adapters.openai", "keel.adapters.langgraph", "keel.adapters.adk",
    "chaos.agents_openai", "chaos.agents_graph", "chaos.agents_adk",
    "psycopg", "sqlalchemy.dialects.postgresql.psycopg", "sqlalchemy.dialects.sqlite.pysqlite",
)
TESTS = Path(__file__).resolve().parents[1]


class Launcher:
    """The parent's handle on a fork server; safe to share between threads."""

    def __init__(self, log: Path) -> None:
        path = [str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "CHAOS_"))}
        env.update(PYTHONPATH=os.pathsep.join(p for p in path if p),
                   OPENAI_AGENTS_DISABLE_TRACING="1", LANGSMITH_TRACING="false")
        env.pop("OPENAI_API_KEY", None)
        self._log = log.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "chaos.launcher"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self._lock = threading.Lock()
        ready = self._reply()
        if ready.get("ready") is not True:
            self.close()
            raise RuntimeError(f"the chaos launcher did not start: {ready}; see {log}")

    def spawn(self, target: str, argv: list[str], *, env: dict[str, str], log: Path,
              cwd: Path) -> int:
        """Fork a child that runs `target` ("module:function") with `argv`; its pid."""
        return int(self._ask(op="spawn", target=target, argv=argv, env=env, log=str(log),
                             cwd=str(cwd))["pid"])

    def exit_code(self, pid: int) -> int | None:
        """How a child ended (negative: the signal that killed it), or None while it lives."""
        code = self._ask(op="exit", pid=pid)["exit"]
        return None if code is None else int(code)

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()

    def _ask(self, **request: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        with self._lock:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            return self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the chaos launcher exited; see its log")
        return dict(json.loads(line))


# -- the launcher process ---------------------------------------------------------------------


def enqueue(argv: list[str]) -> int:
    """Child target: queue a run of `agent` on `ticket` for the workers, print its id.
    argv: URL MODULE:ATTR TICKET KEY."""
    from keel import AgentRuntime
    from keel.runtime._references import load_agent

    url, reference, ticket, key = argv
    with AgentRuntime(url, workers=True) as runtime:
        handle = runtime.start(load_agent(reference), ticket, idempotency_key=key)
    print(json.dumps({"execution_id": handle.execution_id}), flush=True)
    return 0


def _serve() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    if threading.active_count() != 1:  # forking would copy their locks mid-use
        _reply({"ready": False, "threads": [t.name for t in threading.enumerate()]})
        return
    exits: dict[int, int] = {}
    children: set[int] = set()

    def reap(*_: Any) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exits[pid] = os.waitstatus_to_exitcode(status)
            children.discard(pid)

    signal.signal(signal.SIGCHLD, reap)
    _reply({"ready": True})
    while line := sys.stdin.readline():
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = _fork(request)
            children.add(pid)
            _reply({"pid": pid})
        else:
            reap()
            _reply({"exit": exits.get(request["pid"])})
    for pid in list(children):  # the parent is gone: so are the trials
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _fork(request: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the launcher
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        faulthandler.register(signal.SIGUSR1)  # a stuck child's stacks, for its log
        module, _, function = request["target"].partition(":")
        code = int(getattr(importlib.import_module(module), function)(request["argv"]) or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _serve()
