"""Every Python snippet in the README runs, in order, against a fresh store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def test_readme_quickstart_is_exactly_make_demo_and_make_test() -> None:
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("```")[1]
    assert quickstart.strip().splitlines() == ["make demo", "make test"]


def test_readme_snippets_run(database_url: str, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KEEL_DATABASE_URL", database_url)
    snippets = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(snippets) >= 4
    namespace: dict[str, object] = {}
    for snippet in snippets:
        exec(compile(snippet, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "refunded $99.00 for invoice INV-8821" in printed
    assert "routed to technical_specialist" in printed
    assert "WAITING" in printed
    assert "COMPLETED I've refunded $20.00 for invoice INV-1001" in printed
    assert "COMPLETED ['get_invoice', 'process_refund']" in printed  # the mock run
    assert "WAITING ['process_refund']" in printed  # the LangGraph graph
    assert "COMPLETED I've refunded $99.00 for invoice INV-8821" in printed
    assert "COMPLETED Escalate: yes" in printed  # the pipeline
    assert "[('classifier', 'responder'), ('responder', 'escalation_checker')]" in printed
    assert "WAITING ['add_internal_note']\nCOMPLETED" in printed
    assert "max_tool_calls the tool call process_refund" in printed  # a budget stopped it
    assert "Reach me at [redacted:email]; our key is [redacted:api_key]" in printed
