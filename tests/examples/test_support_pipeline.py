"""The cross-framework support pipeline example, run as its README line runs it: a process of
its own, on the offline scripted models."""

from __future__ import annotations

from pathlib import Path

from examples.support_pipeline.cross_framework import Classification, classify

from example_process import run_example


def test_the_pipeline_example_streams_three_frameworks_and_escalates(
    tmp_path: Path, database_url: str
) -> None:
    run = run_example("examples.support_pipeline", tmp_path, database_url)
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
