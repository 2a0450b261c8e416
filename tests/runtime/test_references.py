"""Finding an agent again in another process by the reference recorded at admission."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from agents import Agent

from keel import AgentRuntime, Status
from keel.runtime._references import find_reference, load_agent, resolve

ROOT = Path(__file__).parents[2]

SCRIPT = textwrap.dedent('''
    import sys
    from agents import Agent
    from examples.support_triage.agents import billing_agent, technical_agent
    from keel import AgentRuntime

    desk = Agent(name="desk", model=billing_agent.model, handoffs=[billing_agent, technical_agent],
                 instructions="Route the ticket.")

    if __name__ == "__main__":
        with AgentRuntime(sys.argv[1], auto_resume=False) as runtime:
            result = runtime.run(desk, "I was charged twice for INV-8821, refund it please")
            print(result.execution_id, result.status.value)
''')


def test_an_agent_in_a_script_run_as_main_is_found_by_its_path(
    tmp_path: Path, database_url: str
) -> None:
    script = tmp_path / "desk.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script), database_url], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    execution_id, status = out[-2], out[-1]
    assert status == "WAITING"
    with AgentRuntime(database_url, auto_resume=False) as runtime:
        assert runtime.store.execution(execution_id).agent_ref == f"{script.resolve()}:desk"
        runtime.handle(execution_id).approve()
        final = runtime.resume(execution_id)  # loads desk.py by path; its main block stays off
    assert final.status is Status.COMPLETED
    assert "refunded $99.00" in final.output


def test_module_level_agents_are_found_and_loaded() -> None:
    from examples.support_triage import agents

    reference = find_reference(agents.triage_agent)
    assert reference == "examples.support_triage.agents:triage_agent"
    assert load_agent(reference) is agents.triage_agent


def test_an_agent_built_inside_a_function_has_no_reference() -> None:
    assert find_reference(Agent(name="made per request")) is None


def test_types_are_resolved_by_module_or_by_script_path(tmp_path: Path) -> None:
    script = tmp_path / "shapes.py"
    script.write_text("class Outer:\n    class Ticket:\n        pass\n")
    ticket = resolve(f"{script}:Outer.Ticket")
    assert ticket.__qualname__ == "Outer.Ticket"
    assert resolve("keel:AgentRuntime") is AgentRuntime


def test_an_agent_a_script_imports_is_found_where_it_is_defined(tmp_path: Path) -> None:
    """Not under the script's own name for it (here a loop variable, rebound at each turn),
    which another process could not load."""
    script = tmp_path / "batch.py"
    script.write_text(textwrap.dedent('''
        from examples.support_triage.agents import billing_agent, triage_agent
        from keel.runtime._references import find_reference

        for agent in [triage_agent, billing_agent]:
            print(find_reference(agent))
    '''))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["examples.support_triage.agents:triage_agent",
                   "examples.support_triage.agents:billing_agent"]


def test_a_reference_found_earlier_is_checked_before_it_is_used_again(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = types.ModuleType("desk_agents")
    module.__file__ = str(tmp_path / "desk_agents.py")
    monkeypatch.setitem(sys.modules, "desk_agents", module)
    desk = Agent(name="desk")
    module.first = desk  # type: ignore[attr-defined]
    assert find_reference(desk) == "desk_agents:first"
    del module.first  # type: ignore[attr-defined]
    module.second = desk  # type: ignore[attr-defined]
    assert find_reference(desk) == "desk_agents:second"
