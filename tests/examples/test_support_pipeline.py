"""The cross-framework support pipeline example, run as its README line runs it: a process of
its own, on the offline scripted models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from examples.support_pipeline.cross_framework import Classification, classify

ROOT = Path(__file__).parents[2]


def test_the_pipeline_example_streams_three_frameworks_and_escalates(
    tmp_path: Path, database_url: str
) -> None:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "KEEL_DATABASE_URL": database_url, "PYTHONPATH": path}
    for key in ("OPENAI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(key, None)
    run = subprocess.run([sys.executable, "-m", "examples.support_pipeline"], cwd=tmp_path,
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    order = ["Pipeline: classifier >> responder >> escalation_checker",
             '[classifier] says: {"customer":"David Park, Acme Logistics","priority":"P1"',
             "[classifier] hands off to responder",
             "[responder] calls check_service_status({'region': 'us-east'})",
             "[responder] says: Hi David", "us-east has been degraded",
             "[responder] hands off to escalation_checker",
             "[escalation_checker] calls add_internal_note", "[escalation_checker] says: "
             "Escalate: yes", "status COMPLETED", "output: Escalate: yes"]
    positions = [out.find(text) for text in order]
    assert -1 not in positions, out
    assert positions == sorted(positions), out


def test_the_classifier_model_reads_the_ticket() -> None:
    calm = "From: Ana Ruiz <ana@example.com>\nThe export button is misaligned on Safari."
    assert classify(calm) == Classification(customer="Ana Ruiz", priority="P3",
                                            category="bug", product_area="web app",
                                            sentiment="neutral")
