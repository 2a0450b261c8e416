"""The reviewers' query over the archive: every reply the agent sent or drafted with a
confidence in a range, e.g. the borderline ones, which are the next training examples.

    python -m examples.ticket_automation.review archive/ --between 0.85 0.92
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Reply:
    ticket: str
    tool: str  # send_reply or draft_reply
    confidence: float
    text: str
    outcome: str  # what the tool returned, or why keel refused it


def replies(archive: Path, low: float = 0.0, high: float = 1.0) -> list[Reply]:
    found = []
    for path in sorted(archive.glob("*.jsonl")):
        events = [json.loads(line) for line in path.read_text().splitlines()]
        results = {e["call_id"]: e["result"] for e in events if e["type"] == "tool_result"}
        for e in events:
            if e["type"] != "tool_call" or e["tool_name"] not in ("send_reply", "draft_reply"):
                continue
            confidence = float(e["args"].get("confidence", -1))
            if low <= confidence <= high:
                found.append(Reply(path.stem, e["tool_name"], confidence, e["args"]["text"],
                                   str(results.get(e["call_id"], "(no result yet)"))))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.ticket_automation.review")
    parser.add_argument("archive", type=Path)
    parser.add_argument("--between", nargs=2, type=float, default=(0.0, 1.0),
                        metavar=("LOW", "HIGH"))
    args = parser.parse_args(argv)
    for reply in replies(args.archive, *args.between):
        print(f"{reply.ticket}  {reply.tool:<11} confidence {reply.confidence:.2f}  "
              f"{reply.outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
