"""The public surface: names, no framework imports, error hierarchy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keel


def test_import_keel_imports_no_framework() -> None:
    code = (
        "import sys, keel, keel.runtime, keel.adapters, keel.testing\n"
        "loaded = [m for m in ('agents', 'openai', 'langgraph', 'langchain_core', 'google.adk',"
        " 'google.genai') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_exported_name_exists_and_all_is_sorted() -> None:
    assert list(keel.__all__) == sorted(keel.__all__)
    for name in keel.__all__:
        assert getattr(keel, name) is not None


def test_the_names_users_port_from_the_reference_system() -> None:
    for name in ("AgentRuntime", "AgentHandle", "AgentResult", "Status", "tool", "run", "start",
                 "stream", "run_async"):
        assert name in keel.__all__
    from keel import testing

    assert list(testing.__all__) == sorted(testing.__all__)
    reference_kit = ("mock_run", "MockEvent", "expect", "assert_tool_used",
                     "assert_tool_not_used", "assert_tool_called_with", "assert_tool_call_order",
                     "assert_tools_used_exactly", "assert_output_contains",
                     "assert_output_matches", "assert_output_type", "assert_status",
                     "assert_no_errors", "assert_events_contain", "assert_event_sequence",
                     "assert_handoff_to", "assert_agent_ran", "assert_guardrail_passed",
                     "assert_guardrail_failed", "assert_max_turns")
    for name in reference_kit:
        assert getattr(testing, name) is not None, name


def test_errors_share_one_root() -> None:
    errors = [getattr(keel, n) for n in keel.__all__ if n.endswith("Error")]
    assert len(errors) >= 12
    assert all(issubclass(e, keel.KeelError) for e in errors)
    from keel._errors import _Cancelled, _Suspended

    assert not issubclass(_Suspended, Exception) and not issubclass(_Cancelled, Exception)


def test_resuming_without_the_framework_names_the_extra(database_url: str) -> None:
    from examples.support_triage.agents import triage_agent

    from keel import AgentRuntime

    with AgentRuntime(database_url, auto_resume=False) as runtime:
        waiting = runtime.run(triage_agent, "I was charged twice for INV-8821, refund please")
        runtime.handle(waiting.execution_id).approve()  # QUEUED: ready to resume
    code = (
        "import sys\n"
        "sys.modules['agents'] = None  # as if the openai extra were not installed\n"
        "from keel import AgentRuntime, MissingExtraError\n"
        "try:\n"
        f"    AgentRuntime({database_url!r}).resume({waiting.execution_id!r})\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'keel[openai]'" in out.stdout, out.stderr


def test_keel_run_in_a_running_loop_names_keel_run_async_and_makes_no_store(
        tmp_path: Path) -> None:
    code = (
        "import asyncio, keel\n"
        "from examples.support_triage.agents import triage_agent\n"
        "async def main():\n"
        "    try:\n"
        "        keel.run(triage_agent, 'hi')\n"
        "    except keel.KeelError as exc:\n"
        "        print(exc)\n"
        "asyncio.run(main())\n"
    )
    store = tmp_path / "default" / "keel.db"
    env = {**os.environ, "KEEL_DATABASE_URL": f"sqlite:///{store}",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, cwd=tmp_path)
    assert "use `await keel.run_async(...)` instead" in out.stdout, out.stderr
    assert not store.parent.exists()
