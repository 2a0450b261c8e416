"""The support-triage demo: stream a ticket, pause for the refund approval, resume, finish.

    python -m examples.support_triage                   # run the ticket (asks you, or approves)
    python -m examples.support_triage --reject "Needs a manager"
    python -m examples.support_triage --wait            # leave it waiting and exit
    python -m examples.support_triage approve ID        # decide from another terminal
    python -m examples.support_triage reject ID "reason"
    python -m examples.support_triage resume ID         # continue a decided or crashed run
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from keel import AgentHandle, AgentRuntime, Event, KeelError

from .agents import triage_agent

TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
# How the user started the demo, for the hints it prints (`keel demo` sets it).
ME = os.environ.get("KEEL_DEMO_COMMAND", "python -m examples.support_triage")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except KeelError as exc:  # one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    with AgentRuntime() as runtime:
        if args.command == "approve":
            AgentHandle(args.id, runtime=runtime).approve(reviewer=_reviewer())
            print(f"Approved. Resume it with: {ME} resume {args.id}")
        elif args.command == "reject":
            AgentHandle(args.id, runtime=runtime).reject(args.reason, reviewer=_reviewer())
            print(f"Rejected. Resume it with: {ME} resume {args.id}")
        elif args.command == "resume":
            runtime.resume(args.id).print_result()
        else:
            return _run_ticket(runtime, args)
    return 0


def _run_ticket(runtime: AgentRuntime, args: argparse.Namespace) -> int:
    model = "a real model" if os.environ.get("OPENAI_API_KEY") else "the offline scripted model"
    print(f"Ticket: {args.ticket}\n(running on {model}; store: {runtime.database_url})\n")
    stream = runtime.stream(triage_agent, args.ticket)
    for event in stream:
        _show(event)
    handle = AgentHandle(stream.execution_id, runtime=runtime)
    result = handle.result()
    if result.pending_approvals:
        if args.wait:
            print(f"\nLeft waiting. Execution id: {handle.execution_id}")
            print(f"Approve from another terminal: {ME} approve {handle.execution_id}")
            print(f"             or reject it with: {ME} reject {handle.execution_id} 'reason'")
            print(f"     then continue it with: {ME} resume {handle.execution_id}")
            return 0
        _decide(handle, args)
        for event in handle.stream(after=stream.events[-1].seq):  # the background resumes it
            _show(event)
        result = handle.result()
    print()
    result.print_result()
    print(f"Execution id: {result.execution_id}")
    print("To approve from another terminal instead:")
    print(f"  {ME} --wait            # here: runs the ticket and leaves it waiting")
    print(f"  {ME} approve <id>      # in any other terminal (or: reject <id> 'reason')")
    print(f"  {ME} resume <id>       # anywhere: finishes the run")
    return 0 if result.is_success else 1


def _decide(handle: AgentHandle, args: argparse.Namespace) -> None:
    pending = handle.result().pending_approvals
    if args.reject is not None:
        handle.reject(args.reject, reviewer=_reviewer())
        print(f"\nRejected ({args.reject}), as --reject asked.")
    elif args.approve or not sys.stdin.isatty():
        handle.approve(reviewer=_reviewer())
        why = "as --approve asked" if args.approve else "because stdin is not a terminal"
        print(f"\nApproved automatically, {why} (use --reject REASON or --wait to choose).")
    else:
        for call in pending:
            print(f"\n{call.tool_name}({_args(call.args)}) needs your approval.")
        answer = input("Approve? [y/N] ").strip().lower()
        if answer in ("y", "yes"):
            handle.approve(reviewer=_reviewer())
        else:
            handle.reject(input("Reason for the customer: ").strip() or "Declined by reviewer",
                          reviewer=_reviewer())


def _show(event: Event) -> None:
    who = f"[{event.agent}] " if event.agent else ""
    if event.type == "handoff":
        print(f"  → {who}hands off to {event.target}")
    elif event.type == "tool_call":
        print(f"  → {who}calls {event.tool_name}({_args(event.args)})")
    elif event.type == "tool_result":
        print(f"  ← {event.tool_name} returned {event.result}")
    elif event.type == "waiting":
        print(f"  ⏸ waiting for approval of {event.tool_name}({_args(event.args)}) "
              f"[rule: {event.reason}]")
    elif event.type in ("approved", "rejected"):
        reason = f": {event.reason}" if event.reason else ""
        print(f"  ✓ {event.tool_name} {event.type} by {event.reviewer}{reason}")
    elif event.type == "resumed":
        print(f"  ↻ resumed ({event.reason})")
    elif event.type == "message":
        print(f"  💬 {who}{event.content}")
    elif event.type == "done":
        print("  ✔ done")
    elif event.type == "error":
        print(f"  ✘ {event.content}")


def _args(args: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _reviewer() -> str:
    return os.environ.get("USER") or "reviewer"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=ME, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticket", default=TICKET, help="the customer's message")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--approve", action="store_true", help="approve without asking")
    choice.add_argument("--reject", metavar="REASON", help="reject with this reason")
    choice.add_argument("--wait", action="store_true", help="leave the run waiting and exit")
    parser.set_defaults(command="run")
    commands = parser.add_subparsers(dest="command")
    approve = commands.add_parser("approve", help="approve a waiting execution")
    approve.add_argument("id")
    reject = commands.add_parser("reject", help="reject a waiting execution")
    reject.add_argument("id")
    reject.add_argument("reason")
    resume = commands.add_parser("resume", help="continue a decided or crashed execution")
    resume.add_argument("id")
    return parser


if __name__ == "__main__":
    sys.exit(main())
