"""Child processes of the benchmark: their environment, and a raw LISTEN process.

Light on purpose (no keel, no agents SDK): the children that import it start fast.
`python -m bench._child listen CONNINFO` LISTENs on bench_wake and prints "ready", then one
line `PAYLOAD TIME` (time.time() on receipt) per notification.
"""

from __future__ import annotations

import os
import sys
import time
from importlib.util import find_spec
from pathlib import Path

__all__ = ["DIR_VARIABLE", "ROOT", "child_env"]

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: `bench` is importable from here."""
DIR_VARIABLE = "KEEL_BENCH_DIR"
"""Where bench._agents' tools keep their files (the benchmark's temporary directory)."""


def child_env(directory: Path | None = None) -> dict[str, str]:
    """This process's environment for a child: the keel and bench this process imports first
    on PYTHONPATH, tracing off, and (given) the bench agents' directory."""
    spec = find_spec("keel")
    if spec is None or spec.origin is None:
        raise RuntimeError("bench: keel is not importable")
    paths = [str(Path(spec.origin).resolve().parent.parent), str(ROOT)]
    inherited = os.environ.get("PYTHONPATH")
    env = dict(os.environ, OPENAI_AGENTS_DISABLE_TRACING="1")
    env["PYTHONPATH"] = os.pathsep.join([*paths, *([inherited] if inherited else [])])
    if directory is not None:
        env[DIR_VARIABLE] = str(directory)
    return env


def _listen(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("LISTEN bench_wake")
        print("ready", flush=True)
        for notification in connection.notifies():
            print(notification.payload, repr(time.time()), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["listen"]:
    _listen(sys.argv[2])
