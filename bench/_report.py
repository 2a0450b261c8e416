"""Percentiles, goals, and the one table `python -m bench` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Check", "Row", "Timing", "render"]


@dataclass(frozen=True)
class Timing:
    """Latency samples in seconds, summarised in milliseconds."""

    samples: Sequence[float]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def p50(self) -> float:
        return _percentile(self.samples, 50.0) * 1000.0

    @property
    def p99(self) -> float:
        return _percentile(self.samples, 99.0) * 1000.0


@dataclass(frozen=True)
class Check:
    """One goal: `value <= limit` (or `>=`, for `at_least`), shown as `label`."""

    label: str
    value: float
    limit: float
    at_least: bool = False

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit


@dataclass(frozen=True)
class Row:
    """One line of the table. Timing columns are in ms; `None` prints as a dash."""

    name: str
    n: int | None
    p50: float | None
    p99: float | None
    baseline: str
    base_p50: float | None
    base_p99: float | None
    ratio: float | None
    checks: Sequence[Check] = ()
    note: str | None = None
    skipped: str | None = None

    @property
    def result(self) -> str:
        if self.skipped is not None:
            return "SKIP"
        if not self.checks:
            return "info"
        return "PASS" if all(c.passed for c in self.checks) else "MISS"

    @property
    def goal(self) -> str:
        return "; ".join(c.label for c in self.checks) or "-"


def timing_row(
    name: str,
    measured: Timing,
    baseline_name: str,
    baseline: Timing,
    checks: Sequence[Check],
    note: str | None = None,
) -> Row:
    return Row(
        name=name,
        n=measured.n,
        p50=measured.p50,
        p99=measured.p99,
        baseline=baseline_name,
        base_p50=baseline.p50,
        base_p99=baseline.p99,
        ratio=measured.p50 / baseline.p50,
        checks=checks,
        note=note,
    )


def latency_checks(
    measured: Timing, baseline: Timing, *, p50_ms: float, p99_ms: float | None, ratio: float
) -> list[Check]:
    """The usual goal set: an absolute p50 (and p99) and a ratio to the baseline's p50."""
    checks = [Check(f"p50 <= {p50_ms:g} ms", measured.p50, p50_ms)]
    if p99_ms is not None:
        checks.append(Check(f"p99 <= {p99_ms:g} ms", measured.p99, p99_ms))
    checks.append(Check(f"ratio <= {ratio:g}x", measured.p50 / baseline.p50, ratio))
    return checks


_HEADERS = (
    "measurement", "n", "p50 ms", "p99 ms", "same-run baseline", "base p50", "base p99",
    "ratio", "goal", "result",
)


def render(rows: Sequence[Row]) -> str:
    """A Markdown table, then one numbered note per row that has one."""
    lines = [_cells(_HEADERS), _cells(tuple("---" for _ in _HEADERS))]
    notes: list[str] = []
    for row in rows:
        name = row.name
        text = row.skipped or row.note
        if text:
            notes.append(text)
            name = f"{name} [{len(notes)}]"
        lines.append(_cells((
            name, _int(row.n), _ms(row.p50), _ms(row.p99), row.baseline, _ms(row.base_p50),
            _ms(row.base_p99), _ratio(row.ratio), row.goal, _result(row),
        )))
    lines.append("")
    lines.extend(f"[{i}] {text}" for i, text in enumerate(notes, start=1))
    return "\n".join(lines)


def _result(row: Row) -> str:
    missed = [c.label for c in row.checks if not c.passed]
    if row.result == "MISS" and len(row.checks) > 1:
        return f"MISS ({', '.join(missed)})"
    return row.result


def _cells(values: Sequence[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)


def _percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (no interpolation)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]
