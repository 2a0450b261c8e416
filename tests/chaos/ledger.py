"""The side-effect ledger: what the tools did, fsynced, counted across killed processes.

Every tool appends a `run` line when it starts. The fake external APIs of the idempotent-keyed
tools append a `request` line per request and apply a key once (`applied`); an unsafe tool
appends an `effect` line and dedups nothing. Lines carry the call as keel described it
(`keel.current_call()`), the process id and the time, and are appended under a file lock and
fsynced before the tool goes on, so a process killed right after an effect has recorded it.

The file is `$CHAOS_LEDGER`; without it the tools run and record nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import keel

__all__ = ["LEDGER_ENV", "effect", "read", "request", "run"]

LEDGER_ENV = "CHAOS_LEDGER"


def run(tool: str) -> None:
    """Note that `tool` started (in this process, for the call keel is running)."""
    with _locked() as ledger:
        if ledger is not None:
            _append(ledger, "run", tool)


def request(tool: str, result: dict[str, Any]) -> dict[str, Any]:
    """A request to a fake external API that deduplicates on the call's idempotency key: the
    first request with a key is applied and answers `result`; later ones answer what the
    first one did."""
    with _locked() as ledger:
        if ledger is None:
            return result
        key = _call_fields()["key"]
        first = next((line for line in _lines(ledger)
                      if line["kind"] == "request" and line["applied"] and line["key"] == key),
                     None)
        answer = result if first is None else first["result"]
        _append(ledger, "request", tool, applied=first is None, result=answer)
        return answer


def effect(tool: str, result: dict[str, Any]) -> dict[str, Any]:
    """An effect nothing deduplicates (an email sent, a line appended elsewhere)."""
    with _locked() as ledger:
        if ledger is not None:
            _append(ledger, "effect", tool, result=result)
    return result


def read(path: Path) -> list[dict[str, Any]]:
    """The ledger's complete lines."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1]]


@contextmanager
def _locked() -> Iterator[IO[str] | None]:
    path = os.environ.get(LEDGER_ENV)
    if not path:
        yield None
        return
    with open(path, "a+") as ledger:
        fcntl.flock(ledger, fcntl.LOCK_EX)
        yield ledger


def _lines(ledger: IO[str]) -> list[dict[str, Any]]:
    ledger.seek(0)
    return [json.loads(line) for line in ledger.read().split("\n")[:-1]]


def _append(ledger: IO[str], kind: str, tool: str, **fields: Any) -> None:
    line = {"kind": kind, "tool": tool, **_call_fields(), "pid": os.getpid(),
            "ts": time.time(), **fields}
    ledger.write(json.dumps(line) + "\n")
    ledger.flush()
    os.fsync(ledger.fileno())


def _call_fields() -> dict[str, Any]:
    call = keel.current_call()
    if call is None:
        return {"call_id": None, "key": None, "attempt": None}
    return {"call_id": call.call_id, "key": call.idempotency_key, "attempt": call.attempt}
