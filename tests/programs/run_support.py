"""One step of a support run in its own process, for tests/test_crash_recovery.py.

    run_support.py start   URL MODULE:AGENT TICKET KEY   runtime.run(..., idempotency_key=KEY)
    run_support.py enqueue URL MODULE:AGENT TICKET KEY   the same, queued for `keel worker`s
    run_support.py resume  URL EXECUTION_ID          AgentRuntime(URL).resume(id), no agent given
    run_support.py approve URL EXECUTION_ID REVIEWER [--ready FILE --go FILE]
    run_support.py reject  URL EXECUTION_ID REVIEWER REASON

`$KEEL_TEST_LEASE_SECONDS` sets the lease of the runs `start` drives (default 10 s).
Each prints one JSON object per line on stdout; the last line is the outcome. `--ready/--go`
make concurrent deciders start their transactions together: touch READY, wait for GO.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import keel
from keel import AgentHandle, AgentResult, AgentRuntime


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("start", "enqueue"):
        return _start(args.url, args.agent, args.ticket, args.key,
                      workers=args.command == "enqueue")
    if args.command == "resume":
        return _resume(args.url, args.execution_id)
    return _decide(args)


def _start(url: str, reference: str, ticket: str, key: str, *, workers: bool) -> int:
    # The agent is looked up here and never bound to a global of this script, so keel records
    # the agent module's own `module:attribute` for the resuming process to import. A process
    # that dies mid-run prints nothing: the parent finds its execution by the idempotency key.
    module, _, attribute = reference.partition(":")
    agent = getattr(importlib.import_module(module), attribute)
    lease = float(os.environ.get("KEEL_TEST_LEASE_SECONDS", 10))
    with AgentRuntime(url, workers=workers, lease_seconds=lease) as runtime:
        if workers:
            handle = runtime.start(agent, ticket, idempotency_key=key)
            _emit({"execution_id": handle.execution_id, "status": handle.status().value})
        else:
            _emit(_summary(runtime.run(agent, ticket, idempotency_key=key)))
    return 0


def _resume(url: str, execution_id: str) -> int:
    preloaded = sorted(m for m in ("crash_agents", "crash_graph", "crash_adk",
                                   "examples.support_triage.agents")
                       if m in sys.modules)
    with AgentRuntime(url) as runtime:
        result = runtime.resume(execution_id)
        _emit({**_summary(result), "agent_modules_preloaded": preloaded})
    return 0


def _decide(args: argparse.Namespace) -> int:
    with AgentRuntime(args.url) as runtime:
        handle = AgentHandle(args.execution_id, runtime=runtime)
        if args.ready:
            _wait_for_go(Path(args.ready), Path(args.go))
        try:
            if args.command == "approve":
                decided = handle.approve(reviewer=args.reviewer)
            else:
                decided = handle.reject(args.reason, reviewer=args.reviewer)
        except keel.KeelError as exc:
            _emit({"ok": False, "error": type(exc).__name__, "message": str(exc)})
        else:
            _emit({"ok": True, "decided": decided})
    return 0


def _wait_for_go(ready: Path, go: Path) -> None:
    ready.touch()
    deadline = time.monotonic() + 30
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{go} never appeared")
        time.sleep(0.005)


def _summary(result: AgentResult) -> dict[str, Any]:
    return {
        "execution_id": result.execution_id,
        "status": result.status.value,
        "output": result.output,
        "error": result.error,
    }


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "enqueue"):
        start = commands.add_parser(name)
        start.add_argument("url")
        start.add_argument("agent")
        start.add_argument("ticket")
        start.add_argument("key")
    resume = commands.add_parser("resume")
    resume.add_argument("url")
    resume.add_argument("execution_id")
    for name in ("approve", "reject"):
        decide = commands.add_parser(name)
        decide.add_argument("url")
        decide.add_argument("execution_id")
        decide.add_argument("reviewer")
        if name == "reject":
            decide.add_argument("reason")
        decide.add_argument("--ready")
        decide.add_argument("--go")
    return parser


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
