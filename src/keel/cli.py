"""The `keel` command: run agents and operate executions from a terminal, on any keel store.

    keel run MODULE:ATTR "input" [--follow] [--max-steps N ...] [--redact]
                                                  start a run (and watch its events)
    keel ls [--status S] [--agent A] [--since 2h] executions, newest first
    keel show ID                                  the timeline of one execution
    keel events ID [--follow] [--after N]         its events (and new ones as they come)
    keel approve ID [--call C] [--reason R] [--as NAME]
    keel reject ID --reason R [--call C] [--as NAME]
    keel respond ID JSON [--call C] [--as NAME]   answer a pause that asks for a value
    keel resolve ID (--record JSON | --retry | --fail REASON) [--as NAME]
                                                  decide an IN_DOUBT execution's cut-off call
    keel resume ID
    keel cancel ID | keel cancel --agent NAME     stop one execution, or all of an agent's
    keel export ID [--format jsonl] [-o FILE]     an execution's whole record, for audits
    keel decisions [--since 7d] [--reviewer R] [--limit N]
                                                  who approved or rejected what, and when
    keel prune --older-than 30d [--dry-run]       delete executions that finished before
    keel export-test ID [-o FILE]                 a pytest file that replays the execution
    keel serve [--host H] [--port P] [--token T] [--workers]
                                                  the HTTP API and dashboard (keel[server])
    keel worker MODULE:ATTR [...] [--concurrency N] [--lease S]
                                                  run queued executions of these agents
    keel demo [...]                               the support-triage demo (make demo's)

The store is `--db URL`, else `$KEEL_DATABASE_URL`, else `.keel/keel.db`; the commands that only
read it (ls, show, events, export, decisions, export-test) read a SQLite one they cannot write
(a copy, a read-only mount) read-only, writing nothing. `--json` prints JSON for scripts.
Errors are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ._errors import KeelError, StoreError
from .runtime._budget import Budget
from .runtime._events import Status
from .runtime._family import ancestors
from .runtime._handle import AgentHandle
from .runtime._json import jsonable, loads
from .runtime._references import load_agent
from .runtime._result import AgentResult
from .runtime._runtime import AgentRuntime
from .runtime._store import (
    connect_read_only,
    default_database_url,
    reading_url,
    sqlite_file,
    store_url,
)
from .runtime._trace import describe, short

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not args.creates:
            _existing(args.db)
        url = reading_url(args.db or default_database_url()) if args.reads else args.db
        # Only a long-lived server resumes runs once their approvals are decided.
        with AgentRuntime(url, auto_resume=args.command is _serve,
                          workers=getattr(args, "workers", False),
                          redact=getattr(args, "redact", False)) as runtime:
            code = int(args.command(runtime, args) or 0)
            sys.stdout.flush()  # a reader that went away shows here, not at exit
            return code
    except KeelError as exc:
        print(f"keel: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Printing into a pipe whose reader left (keel ls | head): stop quietly, as Python's
        # docs advise, with stdout on devnull so that the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _existing(url: str | None) -> None:
    """Commands on stored executions never make a store: a mistyped path is an error, not an
    empty database, and another application's database (or any other file) is not one that
    keel's tables are added to. Looked at read-only, so that a refused file stays as it was."""
    path = sqlite_file(store_url(url or default_database_url()))
    if path is None:
        return
    check = "check --db or $KEEL_DATABASE_URL"
    if not path.exists():
        raise StoreError(f"No keel database at {path}: {check} (keel run makes one).")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a keel database: {check}.")
    try:
        with closing(connect_read_only(path)) as db:
            keel = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                              "'keel_executions'").fetchone()
    except sqlite3.DatabaseError as exc:  # not SQLite at all, or unreadable
        raise StoreError(f"{path} is not a keel database ({exc}): {check}.") from None
    if keel is None:
        raise StoreError(f"{path} is not a keel database (it has no keel tables, and keel "
                         f"leaves it as it is): {check}.")


# -- commands ---------------------------------------------------------------------------------


def _run(runtime: AgentRuntime, args: argparse.Namespace) -> int:
    agent = load_agent(args.agent)
    budget = _budget(args)
    if args.follow:
        stream = runtime.stream(agent, args.input, budget=budget)
        for event in stream:
            _print_event(event, args.json)
        result = stream.get_result()
    else:
        with _spinner(f"running {args.agent}"):
            result = runtime.run(agent, args.input, budget=budget)
    _print_result(result, args.json)
    return 0 if result.status in (Status.COMPLETED, Status.WAITING) else 1


def _ls(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    rows = runtime.store.executions(
        status=args.status, agent=args.agent,
        since=time.time() - _seconds(args.since) if args.since else None, limit=args.limit)
    if args.json:
        _print_json([{"id": r.id, "status": r.status, "agent": r.agent_name,
                      "created_at": r.created_at, "updated_at": r.updated_at,
                      "status_reason": loads(r.status_reason)} for r in rows])
        return
    _table(["ID", "STATUS", "AGENT", "CREATED", "UPDATED", "REASON"],
           [[r.id, r.status, r.agent_name, _when(r.created_at), _when(r.updated_at),
             _reason(r.status_reason)] for r in rows])


def _show(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    result = runtime.result(args.id)
    if args.json:
        _print_json(result.to_json())
        return
    row = runtime.store.execution(args.id)
    print(f"execution {result.execution_id}  {result.status.value}  agent {result.agent}")
    print(f"started {_when(row.created_at)}"
          + (f", finished {_when(row.finished_at)} ({row.finished_at - row.created_at:.1f} s)"
             if row.finished_at else ""))
    if row.parent_id:
        print(f"stage of {row.parent_id} (keel show {row.parent_id})")
    for stage in reversed(runtime.store.executions(parent=args.id, limit=10_000)):
        print(f"  stage {stage.id}  {stage.status}  {stage.agent_name} ({stage.framework})")
    for event in result.events:
        print(f"  {event.ts - row.created_at:7.2f}s  {event.agent or '-':<20}  {describe(event)}"
              + _decision(event))
    for pending in result.pending_approvals:
        print(f"  waiting: {pending.tool_name}({short(pending.args)}) call {pending.call_id} "
              f"({pending.rule})")
    if result.token_usage:
        usage = result.token_usage
        print(f"tokens: {usage.input_tokens} in, {usage.output_tokens} out, "
              f"{usage.requests} requests")
    limits = ", ".join(f"{name}={limit:g}" for name, limit in (loads(row.budget) or {}).items())
    print(f"ran {row.run_seconds:.1f} s" + (f"; budget {limits}" if limits else ""))
    if result.budget_exceeded:
        exceeded = result.budget_exceeded
        print(f"stopped by its budget: {exceeded.budget}={exceeded.limit:g}, used "
              f"{exceeded.used:g}, before {exceeded.next_step}")
    if result.error:
        print(f"error: {result.error}")


def _events(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    handle = AgentHandle(args.id, runtime=runtime)
    runtime.store.execution(args.id)  # an unknown id is an error, not an empty stream
    if args.follow:  # replays, then follows until the execution settles
        for event in handle.stream(after=args.after):
            _print_event(event, args.json)
        return
    for event in runtime.store.events(args.id, after=args.after):
        _print_event(event, args.json)


def _approve(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    decided = AgentHandle(args.id, runtime=runtime).approve(
        args.call, reviewer=args.reviewer, reason=args.reason)
    _print_decision("approved", decided, runtime, args)


def _reject(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    reason = args.reason.strip()
    if not reason:  # as the HTTP API: the model would hear nothing
        raise KeelError("keel reject needs a reason that says something (--reason \"...\"): "
                        "the model hears it instead of the tool's result.")
    decided = AgentHandle(args.id, runtime=runtime).reject(
        reason, call_id=args.call, reviewer=args.reviewer)
    _print_decision("rejected", decided, runtime, args)


def _respond(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    value = _json_argument(args.value, "keel respond takes the answer")
    decided = AgentHandle(args.id, runtime=runtime).respond(
        value, call_id=args.call, reviewer=args.reviewer)
    _print_decision("responded", decided, runtime, args)


def _resolve(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    if args.record is not None:
        result = _json_argument(args.record, "--record takes the call's result")
        action, details = "record", {"result": result}
    else:
        action, details = ("retry", {}) if args.retry else ("fail", {"reason": args.fail})
    resolved = AgentHandle(args.id, runtime=runtime).resolve(
        action, reviewer=args.reviewer, **details)  # type: ignore[arg-type]
    if args.json:
        _print_json({"resolved": resolved, "action": action})
    else:
        print(f"{action}: {', '.join(resolved)}; {_what_next(runtime, args.id)}")


def _json_argument(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeelError(f"{what} as JSON ({exc}); quote plain text as '\"text\"'.") from None


def _resume(runtime: AgentRuntime, args: argparse.Namespace) -> int:
    with _spinner(f"resuming {args.id}"):
        result = runtime.resume(args.id, budget=_budget(args))
    _print_result(result, args.json)
    return 0 if result.status in (Status.COMPLETED, Status.WAITING) else 1


def _cancel(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    if (args.id is None) == (args.agent is None):
        raise KeelError("keel cancel takes an execution id or --agent NAME (one of them).")
    if args.agent is not None:
        statuses = runtime.cancel_agent(args.agent, reason=args.reason)
    else:
        statuses = {args.id: AgentHandle(args.id, runtime=runtime).cancel(args.reason)}
    if args.json:
        _print_json([{"execution_id": i, "status": s.value} for i, s in statuses.items()])
        return
    for execution_id, status in statuses.items():
        print(f"{execution_id}: {status.value}"
              + (" (stops at its next step)" if status is Status.RUNNING else ""))
    if args.agent is not None:
        print(f"{len(statuses)} unfinished execution(s) of {args.agent} cancelled")


def _export(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    from .runtime._audit import export_records

    lines = (json.dumps(record) + "\n" for record in export_records(runtime.store, args.id))
    if args.output is None:
        sys.stdout.writelines(lines)
        return
    with open(args.output, "w") as out:
        out.writelines(lines)
    print(f"wrote {args.output}", file=sys.stderr)


def _decisions(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    from .runtime._audit import decisions

    rows = decisions(runtime.store, reviewer=args.reviewer, agent=args.agent,
                     since=time.time() - _seconds(args.since) if args.since else None,
                     limit=args.limit)
    if args.json:
        _print_json(rows)
        return
    _table(["DECIDED", "REVIEWER", "DECISION", "TOOL", "ARGS", "EXECUTION", "REASON"],
           [[_when(r["decided_at"]), r["reviewer"] or "-", r["status"], r["tool_name"],
             short(r["args"]), r["execution_id"], r["reason"] or ""] for r in rows])


def _prune(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    from .runtime._audit import prune

    pruned = prune(runtime.store, older_than=_seconds(args.older_than, "--older-than"),
                   dry_run=args.dry_run)
    if args.json:
        _print_json({"pruned": pruned, "dry_run": args.dry_run})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {len(pruned)} execution(s) that finished more than {args.older_than} "
              "ago")


def _export_test(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    from .testing import export_test

    source = export_test(args.id, args.output, runtime=runtime)
    if args.json:  # the test's source in a JSON document, with where it was written
        _print_json({"execution_id": args.id, "path": args.output, "source": source})
    elif args.output is None:
        print(source, end="")
    else:
        print(f"wrote {args.output}")


def _demo(runtime: AgentRuntime, args: argparse.Namespace) -> int:
    """The support-triage demo: examples/ of a checkout, else the copy a wheel ships."""
    os.environ.setdefault("KEEL_DEMO_COMMAND", "keel demo")  # before its module reads it
    for module in ("examples.support_triage.__main__", "keel._demo.support_triage.__main__"):
        try:
            demo = importlib.import_module(module)
            break
        except ImportError:
            continue
    else:
        raise KeelError("keel demo needs the support-triage example: run it in a keel "
                        "checkout (examples/support_triage), or install keel from a wheel.")
    if args.db:
        os.environ["KEEL_DATABASE_URL"] = args.db
    return int(demo.main(args.demo_args))


def _serve(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from .server import create_app
    except ImportError as exc:
        from ._errors import MissingExtraError

        raise MissingExtraError(f"keel serve needs the server extra ({exc}). Install it with: "
                                "pip install 'keel[server]'") from exc
    token = args.token or os.environ.get("KEEL_API_TOKEN")
    beyond = args.host not in ("127.0.0.1", "localhost", "::1")  # reachable from elsewhere
    if token is None:
        if beyond:
            raise KeelError(f"keel serve binds {args.host}, beyond this machine, only with a "
                            "token: pass --token or set KEEL_API_TOKEN.")
        token = _local_token()
    needed = "reads, approvals and new runs" if beyond else "approvals and new runs"
    print(f"keel serve: http://{args.host}:{args.port}/ (the API token, for {needed}: "
          f"{token})", flush=True)
    if args.workers:
        print("Runs started or decided here are queued for keel workers; this server runs "
              "no agent.", flush=True)
    uvicorn.run(create_app(runtime, token=token, guard_reads=beyond), host=args.host,
                port=args.port, log_level="warning")


def _worker(runtime: AgentRuntime, args: argparse.Namespace) -> None:
    """Serve the agents named; an AgentRuntime among them configures the worker (its store,
    approval rules and lease) instead of --db."""
    import logging
    import signal

    from .runtime._worker import Worker

    found = [load_agent(reference) for reference in args.agents]
    runtime = next((o for o in found if isinstance(o, AgentRuntime)), runtime)
    agents = [o for o in found if not isinstance(o, AgentRuntime)]
    if args.lease is not None:
        runtime.lease_seconds = args.lease
    worker = Worker(runtime, agents, concurrency=args.concurrency)
    logging.basicConfig(level=logging.INFO, format="keel worker: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    print(f"keel worker: serving {', '.join(args.agents)} from {runtime.store.safe_url} "
          f"({args.concurrency} at a time); Ctrl-C stops after the running ones",
          file=sys.stderr, flush=True)
    worker.run()


def _local_token() -> str:
    """The token of this directory's server: made on the first `keel serve`, then kept in
    .keel/api-token (readable by its owner only), so approvers need it once."""
    path = Path(".keel/api-token")
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


# -- output -----------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(jsonable(value), indent=2))


def _print_event(event: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event.model_dump(mode="json")), flush=True)
    else:
        print(f"{event.seq:>4}  {event.agent or '-':<20}  {describe(event)}", flush=True)


def _print_result(result: AgentResult, as_json: bool) -> None:
    if as_json:
        _print_json(result.to_json())
        return
    result.print_result()
    if result.status is Status.WAITING:
        print(f"approve: keel approve {result.execution_id}   reject: keel reject "
              f"{result.execution_id} --reason '...'")
    elif result.status is Status.IN_DOUBT:
        print(f"resolve: keel resolve {result.execution_id} --record JSON | --retry | "
              "--fail REASON")


def _print_decision(verb: str, decided: list[str], runtime: AgentRuntime,
                    args: argparse.Namespace) -> None:
    if args.json:
        _print_json({verb: decided})
    else:
        print(f"{verb}: {', '.join(decided)}; {_what_next(runtime, args.id)}")


def _what_next(runtime: AgentRuntime, execution_id: str) -> str:
    """What becomes of an execution just decided or resolved here: this command does not
    resume it (a long-lived process does, or keel resume), so it says which."""
    with runtime.store.reading() as conn:  # a stage goes on as its outermost pipeline does
        chain = ancestors(conn, execution_id)
    top = chain[-1][0] if chain else execution_id
    status = runtime.store.execution(top).status
    if status == Status.QUEUED.value:
        return (f"{top} is queued: a running keel serve, a keel worker serving its agent or "
                f"the process that started it carries it on, else keel resume {top}")
    if status == Status.WAITING.value:
        return f"{top} still waits for other decisions (keel show {top})"
    return f"{top} is {status}"


def _reason(status_reason: str | None) -> str:
    """A stored status reason, in a word: the budget that stopped the run."""
    exceeded = (loads(status_reason) or {}).get("budget_exceeded")
    return f"budget {exceeded['budget']}" if exceeded else ""


def _decision(event: Any) -> str:
    if event.type in ("approved", "rejected") and event.reviewer:
        return f"  by {event.reviewer}"
    return ""


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows,
                                                                       strict=False)]
    for line in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths,
                                                                        strict=True)).rstrip())


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _seconds(text: str, option: str = "--since") -> float:
    """`90s`, `15m`, `2h`, `3d` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        seconds = math.nan
    if not 0 <= seconds < math.inf:  # -30d would reach into the future; nan matches nothing
        raise KeelError(f"{option} takes a duration like 90s, 15m, 2h or 3d, not {text!r}.")
    return seconds


def _positive(kind: type[float], most: float = math.inf,
              what: str = "a limit") -> Callable[[str], float]:
    """An argparse type: a positive number of `kind`, finite (inf would mean no limit), at
    most `most`."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
            if 0 < value <= most and math.isfinite(value):
                return value
        except ValueError:
            pass
        up_to = "" if most == math.inf else f" up to {most}"
        raise argparse.ArgumentTypeError(f"{what} is a positive number{up_to}, not {text}")

    return parse


_rows = _positive(int, most=10_000)  # as the HTTP API's limit=


@contextmanager
def _spinner(what: str, out: TextIO = sys.stderr) -> Iterator[None]:
    """A spinner on stderr while a long operation runs, when stderr is a terminal."""
    if not out.isatty():
        yield
        return
    import threading

    done = threading.Event()

    def spin() -> None:
        frames, turn = "|/-\\", 0
        while not done.wait(0.1):
            out.write(f"\r{frames[turn % 4]} {what}")
            out.flush()
            turn += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        out.write("\r" + " " * (len(what) + 2) + "\r")


# -- arguments --------------------------------------------------------------------------------


def _budget_arguments(command: argparse.ArgumentParser) -> None:
    for limit, kind, what in (("steps", int, "model and tool calls"),
                              ("seconds", float, "seconds of running time"),
                              ("tool-calls", int, "tool calls"), ("tokens", int, "tokens")):
        command.add_argument(f"--max-{limit}", type=_positive(kind),
                             help=f"stop the run past this many {what}")


def _budget(args: argparse.Namespace) -> Budget | None:
    budget = Budget(max_steps=args.max_steps, max_seconds=args.max_seconds,
                    max_tool_calls=args.max_tool_calls, max_tokens=args.max_tokens)
    return budget if budget.to_json() else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="the store's URL (default: $KEEL_DATABASE_URL, else "
                                     ".keel/keel.db)")
    common.add_argument("--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., Any], help: str, creates: bool = False,
                reads: bool = False) -> argparse.ArgumentParser:
        """`creates`: the command may make the store; the others need it to exist. `reads`:
        it only reads it."""
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(command=handler, creates=creates, reads=reads)
        return sub

    run = command("run", _run, "run an agent given as module:attribute on an input",
                  creates=True)
    run.add_argument("agent", help="module:attribute")
    run.add_argument("input")
    run.add_argument("--follow", action="store_true", help="print events as they happen")
    _budget_arguments(run)
    run.add_argument("--redact", action="store_true",
                     help="store e-mail addresses, API keys, tokens and card numbers redacted")
    ls = command("ls", _ls, "list executions, newest first", reads=True)
    ls.add_argument("--status", type=str.upper, choices=[s.value for s in Status],
                    help="RUNNING, WAITING, COMPLETED, FAILED, ... (any case)")
    ls.add_argument("--agent", help="the agent's name")
    ls.add_argument("--since", help="created in the last 90s, 15m, 2h, 3d ...")
    ls.add_argument("--limit", type=_rows, default=50, help="at most this many (default 50)")
    command("show", _show, "the timeline of one execution", reads=True).add_argument("id")
    resume = command("resume", _resume, "continue a decided or crashed execution (--max-* "
                                         "replace its budget's limits)")
    resume.add_argument("id")
    _budget_arguments(resume)
    cancel = command("cancel", _cancel, "stop an execution (or all of an agent's) at its next "
                                        "step")
    cancel.add_argument("id", nargs="?")
    cancel.add_argument("--agent", help="cancel every unfinished execution of this agent")
    cancel.add_argument("--reason")
    export_audit = command("export", _export, "an execution's whole record: the execution, "
                                              "events, approvals and journal", reads=True)
    export_audit.add_argument("id")
    export_audit.add_argument("--format", choices=["jsonl"], default="jsonl",
                              help="one JSON object per line (the default and only one)")
    export_audit.add_argument("-o", "--output", help="write it here instead of printing it")
    decided = command("decisions", _decisions, "who approved or rejected what, and when",
                      reads=True)
    decided.add_argument("--since", help="decided in the last 90s, 15m, 2h, 3d ...")
    decided.add_argument("--reviewer")
    decided.add_argument("--agent", help="the agent's name")
    decided.add_argument("--limit", type=_rows, help="only the newest N (default: all)")
    prune = command("prune", _prune, "delete executions that finished long enough ago")
    prune.add_argument("--older-than", required=True, help="e.g. 30d, 12h")
    prune.add_argument("--dry-run", action="store_true", help="only say what would go")
    events = command("events", _events, "an execution's events", reads=True)
    events.add_argument("id")
    events.add_argument("--follow", action="store_true",
                        help="then wait for new ones until the execution settles")
    events.add_argument("--after", type=int, default=0, help="only events after this seq")
    approve = command("approve", _approve, "approve pending calls of a waiting execution")
    reject = command("reject", _reject, "reject pending calls; the model hears the reason")
    for sub, reason_required in ((approve, False), (reject, True)):
        sub.add_argument("id")
        sub.add_argument("--call", help="one pending call id (default: all)")
        sub.add_argument("--reason", required=reason_required)
        sub.add_argument("--as", dest="reviewer", help="who decides")
    respond = command("respond", _respond, "answer a pause that asks for a value (a "
                                           "LangGraph interrupt(), an ADK RequestInput)")
    respond.add_argument("id")
    respond.add_argument("value", metavar="JSON", help="the answer, as JSON")
    respond.add_argument("--call", help="one pending call id (default: all)")
    respond.add_argument("--as", dest="reviewer", help="who answers")
    resolve = command("resolve", _resolve,
                      "decide what became of an IN_DOUBT execution's cut-off unsafe call")
    resolve.add_argument("id")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--record", metavar="JSON", help="it took effect, with this result")
    how.add_argument("--retry", action="store_true", help="run it again")
    how.add_argument("--fail", metavar="REASON", help="fail the execution")
    resolve.add_argument("--as", dest="reviewer", help="who decides")
    export = command("export-test", _export_test,
                     "a pytest file that replays an execution with mock_run", reads=True)
    export.add_argument("id")
    export.add_argument("-o", "--output", help="write it here instead of printing it")
    demo = command("demo", _demo, "run the support-triage demo (a keel checkout's examples)",
                   creates=True)
    demo.add_argument("demo_args", nargs=argparse.REMAINDER,
                      help="the demo's own arguments, e.g. --reject 'Needs a manager'")
    serve = command("serve", _serve, "the HTTP API and dashboard on this store", creates=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive(int, most=65_535, what="a port"), default=8000)
    serve.add_argument("--token", help="the bearer token for changes, and for reads beyond "
                                       "loopback (default: $KEEL_API_TOKEN, else a new one, "
                                       "printed)")
    serve.add_argument("--workers", action="store_true",
                       help="leave every run to keel worker processes: runs started here "
                            "are queued for them, and decided ones are not carried on here")
    worker = command("worker", _worker, "claim and run queued executions of these agents",
                     creates=True)
    worker.add_argument("agents", nargs="+", metavar="MODULE:ATTR",
                        help="the agents to serve (an AgentRuntime here configures the worker)")
    worker.add_argument("--concurrency", type=int, default=4,
                        help="executions at a time (default 4)")
    worker.add_argument("--lease", type=float, help="seconds after which another worker takes "
                                                    "over the runs of a stopped one (default 10)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
