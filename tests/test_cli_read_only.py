"""The `keel` command on a store it cannot write (a copy, a read-only mount): the read commands
read it and write nothing, the others say that it is read-only."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from examples.support_triage.agents import triage_agent

from keel import AgentRuntime
from test_cli import AGENT, TICKET, keel


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a file or a directory) read-only for keel's processes: by its permission bits,
    or, for root, whom they do not stop, by the immutable attribute."""
    if os.getuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root, where only chattr +i makes a path read-only, and it "
                    "is not available here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with a finished run (approved by dana) and a waiting one, closed."""
    path = tmp_path / "copy" / "keel.db"
    with AgentRuntime(f"sqlite:///{path}", auto_resume=False) as runtime:
        done = runtime.run(triage_agent, TICKET).execution_id
        runtime.handle(done).approve(reviewer="dana")
        runtime.resume(done)
        runtime.run(triage_agent, TICKET)
    return path


@pytest.mark.parametrize("what", ["directory", "file"])
def test_read_commands_read_a_read_only_store_and_write_nothing(store: Path, what: str) -> None:
    url = f"sqlite:///{store}"
    before = files(store.parent)
    with read_only(store.parent if what == "directory" else store):
        listed = json.loads(keel("ls", "--json", url=url).stdout)
        assert [r["status"] for r in listed] == ["WAITING", "COMPLETED"]
        waiting, done = (r["id"] for r in listed)
        assert f"execution {waiting}  WAITING" in keel("show", waiting, url=url).stdout
        events = keel("events", done, "--json", url=url).stdout.splitlines()
        assert json.loads(events[-1])["type"] == "done"
        assert keel("export", done, url=url).stdout.count("\n") > len(events)
        decided = json.loads(keel("decisions", "--json", url=url).stdout)
        assert [(d["reviewer"], d["status"]) for d in decided] == [("dana", "approved")]
        assert "MockEvent.handoff" in keel("export-test", done, url=url).stdout
        for change in (("approve", waiting), ("resume", waiting), ("cancel", waiting),
                       ("run", AGENT, TICKET)):
            refused = keel(*change, url=url, ok=False).stderr
            assert refused.startswith(f"keel: The keel database at {store} is read-only"), \
                refused
            assert len(refused.splitlines()) == 1
    assert files(store.parent) == before


def test_a_read_only_store_that_a_process_writes_is_read_as_it_is_now(store: Path) -> None:
    url = f"sqlite:///{store}"
    # The writer's commits sit in the -wal file until a checkpoint: a reader that read the
    # database file alone (SQLite's immutable=1) would show the run still waiting.
    with AgentRuntime(url, auto_resume=False) as writer, read_only(store.parent):
        (waiting,) = (r.id for r in writer.store.executions(status="WAITING"))
        writer.handle(waiting).approve(reviewer="lee")
        shown = json.loads(keel("show", waiting, "--json", url=url).stdout)
        assert shown["status"] == "QUEUED"
