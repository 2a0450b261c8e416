"""The support pipeline across three frameworks: stream a ticket through the classifier (OpenAI
Agents SDK), the responder (LangGraph) and the escalation checker (Google ADK).

    python -m examples.support_pipeline                  # run the example ticket
    python -m examples.support_pipeline "ticket text"
    python -m examples.support_pipeline --resume ID      # finish a run that was cut off
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from keel import AgentRuntime, Event, KeelError

from .cross_framework import TICKET, pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ticket", nargs="?", default=TICKET)
    parser.add_argument("--resume", metavar="ID", help="resume the pipeline execution ID")
    args = parser.parse_args(argv)
    try:
        with AgentRuntime() as runtime:
            if args.resume:
                result = runtime.resume(args.resume)
            else:
                print(f"Pipeline: {pipeline.name}\n")
                stream = runtime.stream(pipeline, args.ticket)
                for event in stream:
                    _show(event)
                result = stream.get_result()
            print()
            result.print_result()
            return 0 if result.is_success else 1
    except KeelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _show(event: Event) -> None:
    if event.type == "handoff":
        print(f"  [{event.agent}] hands off to {event.target}")
    elif event.type == "tool_call":
        print(f"  [{event.agent}] calls {event.tool_name}({event.args})")
    elif event.type == "message":
        print(f"  [{event.agent}] says: {event.content}")
    elif event.type == "waiting":
        print(f"  [{event.agent}] waits for approval of {event.tool_name}")


if __name__ == "__main__":
    sys.exit(main())
