"""The table of trials and the summary of a batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from chaos.invariants import CHECKS
from chaos.trial import TrialResult

__all__ = ["HEADER", "row", "summary"]

_COLUMNS = (("seed", 10), ("framework", 9), ("fault point", 25), ("fault", 10),
            ("store", 8), ("failed", 9), ("outcome", 27), *((c, 9) for c in CHECKS),
            ("secs", 5))
HEADER = "  ".join(name.ljust(width) for name, width in _COLUMNS).rstrip()


def row(result: TrialResult) -> str:
    """One line: the trial's choices, how the run ended, and each invariant's verdict."""
    plan, fault, obs = result.plan, result.fault, result.obs
    point = f"{fault.point}#{fault.nth}" if fault else plan.point
    cells = [str(plan.seed), plan.framework, point, fault.label if fault else "-", plan.store,
             obs.faulted or "-", _outcome(result)]
    cells += [_verdict(result.verdicts.get(name), result.error) for name in CHECKS]
    cells.append(f"{obs.seconds:.1f}")
    return "  ".join(cell.ljust(width) for cell, (_, width) in
                     zip(cells, _COLUMNS, strict=True)).rstrip()


def _outcome(result: TrialResult) -> str:
    if result.error is not None:
        return "ERROR"
    obs = result.obs
    via = [s for s in obs.path if s == "IN_DOUBT"]
    how = f" via IN_DOUBT ({', '.join(r.split()[0] for r in obs.resolutions)})" if via else ""
    return f"{obs.status}{how}"


def _verdict(violations: list[str] | None, error: str | None) -> str:
    if error is not None or violations is None:
        return "-"
    return "FAIL" if violations else "PASS"


def summary(results: Sequence[TrialResult], seconds: float) -> str:
    """Totals, each invariant's count of failures, and every violation with its seed."""
    lines = [f"{len(results)} trials in {seconds:.0f} s: "
             f"{sum(r.ok for r in results)} passed, {sum(not r.ok for r in results)} failed"]
    fired = sum(1 for r in results if r.obs.faulted)
    lines.append(f"faults fired in {fired} trials; "
                 + ", ".join(f"{k}: {n}" for k, n in sorted(Counter(
                     r.plan.framework for r in results).items()))
                 + "; " + ", ".join(f"{k}: {n}" for k, n in sorted(Counter(
                     r.fault.kind if r.fault else "none" for r in results).items()))
                 + "; " + ", ".join(f"{k}: {n}" for k, n in sorted(Counter(
                     r.plan.store for r in results).items())))
    outcomes = Counter(_outcome(r) for r in results)
    lines.append("outcomes: " + ", ".join(f"{k} {n}" for k, n in outcomes.most_common()))
    unclaimed = sorted(r.obs.longest_unclaimed for r in results)
    if unclaimed:
        lines.append(f"longest a run sat unclaimed (queued, or on a lapsed lease): median "
                     f"{unclaimed[len(unclaimed) // 2]:.2f} s, max {unclaimed[-1]:.2f} s")
    points = Counter(r.fault.point for r in results if r.fault and r.obs.faulted)
    lines.append("fault points that fired: " + ", ".join(
        f"{point} {n}" for point, n in sorted(points.items())))
    for name in CHECKS:
        verdicts = [r.verdicts.get(name) for r in results if r.error is None]
        failed = sum(1 for v in verdicts if v)
        lines.append(f"  {name:<10} {'PASS' if not failed else 'FAIL'}"
                     f" ({failed} of {len(verdicts)} trials failed)")
    for result in results:
        for violation in result.violations():
            lines.append(f"  seed {result.plan.seed}: {violation}")
        for problem in result.obs.problems:
            lines.append(f"  seed {result.plan.seed} (note): {problem}")
    return "\n".join(lines)
