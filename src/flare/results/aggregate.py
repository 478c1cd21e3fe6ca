"""Means and standard deviations over seeds, and the tables as data (rows of numbers, no text).

* Cell (method, language): mean and *sample* standard deviation (n - 1 in the denominator) of
  the metric over the seeds that have a result; ``n`` seeds.  With n = 1 the std is undefined
  (NaN; the table shows the mean alone, the CSV an empty std).
* ``avg`` column: for each seed, the mean over the languages *that method* has results for; then
  mean ± sample std of those per-seed averages over seeds.  Only seeds with a result for every
  one of the method's languages enter the average (so that each per-seed value averages the
  same languages); ``n`` of the avg counts those seeds.  When a method covers fewer languages
  than the union over all methods, its avg is over a different language set than the others and
  is not directly comparable (``covers_all_languages`` is False; the table marks it with †).

Units: the CSV rows hold the values in the units of the JSON files, at full precision.  The
Markdown table and the plot show percentages (:func:`scale_for`): a metric whose values all lie in
[0, 1] is taken to be a fraction and multiplied by 100 (the same factor for every cell, std
included); QA metrics (``exact_match``, ``f1``) and any metric with a value above 1 are taken as
already 0-100 and shown as stored.  When a non-QA metric mixes values in (0, 1] with values above
1, a warning says so (a run stored as fractions next to one stored as percentages).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flare.results.schema import AVG, RunResult, method_sort_key

#: Metrics stored on a 0-100 scale whatever their values (SQuAD-style QA).
PERCENT_METRICS = frozenset({"exact_match", "f1"})


@dataclass(frozen=True)
class Cell:
    """Mean and sample std of one metric over seeds (values in the JSON files' units)."""

    mean: float
    std: float  # NaN when n < 2
    n: int
    seeds: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, by_seed: dict[int, float]) -> Cell:
        seeds = tuple(sorted(by_seed))
        values = tuple(by_seed[s] for s in seeds)
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        return cls(mean=mean, std=std, n=len(values), seeds=seeds, values=values)


@dataclass(frozen=True)
class ReportRow:
    """One method: a cell per language it has results for, and its average over languages."""

    method: str
    cells: dict[str, Cell]  # language -> cell; languages without results are absent
    avg: Cell | None  # None when no seed covers all of the method's languages
    avg_languages: tuple[str, ...]  # the languages the avg is over
    covers_all_languages: bool  # False: avg over a subset of the report's languages (†)

    def cell(self, column: str) -> Cell | None:
        return self.avg if column == AVG else self.cells.get(column)


def aggregate(runs: Sequence[RunResult], split: str, metric: str) -> tuple[list[str], list[ReportRow]]:
    """Rows (in method order) and the sorted union of languages, for the runs with the metric."""
    values: dict[str, dict[str, dict[int, float]]] = {}
    for run in runs:
        value = run.value(split, metric)
        if value is not None:
            values.setdefault(run.method, {}).setdefault(run.language, {})[run.seed] = value
    languages = sorted({lang for by_lang in values.values() for lang in by_lang})
    rows = []
    for method in sorted(values, key=method_sort_key):
        by_lang = values[method]
        own = tuple(sorted(by_lang))
        cells = {lang: Cell.of(by_lang[lang]) for lang in own}
        complete = set.intersection(*(set(by_lang[lang]) for lang in own))
        avg = None
        if complete:
            avg = Cell.of({s: statistics.fmean(by_lang[lang][s] for lang in own) for s in complete})
        rows.append(
            ReportRow(
                method=method,
                cells=cells,
                avg=avg,
                avg_languages=own,
                covers_all_languages=len(own) == len(languages),
            )
        )
    return languages, rows


def majority(values: Iterable[Any]) -> Any:
    """The most common value (ties: the first as text); None for no values."""
    counts = Counter(values)
    if not counts:
        return None
    return min(counts, key=lambda v: (-counts[v], str(v)))


def scale_for(metric: str, values: Sequence[float], warn) -> float:
    """100 for a metric stored as fractions, 1 for one stored as percentages (module docstring)."""
    if metric in PERCENT_METRICS or not values:
        return 1.0
    if all(0.0 <= v <= 1.0 for v in values):
        return 100.0
    if any(0.0 < v <= 1.0 for v in values) and any(v > 1.0 for v in values):
        warn(
            f"metric {metric!r} has values in (0, 1] and above 1: are some runs stored as "
            "fractions and others as percentages? Shown unscaled."
        )
    return 1.0


def fmt_number(value: float) -> str:
    """A number at full precision, for the CSV files."""
    return repr(float(value))


def long_rows(task, model, split, metric, rows: Sequence[ReportRow], languages) -> list[dict[str, Any]]:
    """results.csv rows: one per (method, language) and one per method with language ``avg``."""
    out = []
    for row in rows:
        for col in [*languages, AVG]:
            cell = row.cell(col)
            if cell is None:
                continue
            out.append(
                {
                    "task": task or "",
                    "model": model or "",
                    "method": row.method,
                    "language": col,
                    "metric": metric,
                    "split": split,
                    "mean": fmt_number(cell.mean),
                    "std": "" if math.isnan(cell.std) else fmt_number(cell.std),
                    "n": cell.n,
                    "seeds": ";".join(str(s) for s in cell.seeds),
                }
            )
    return out


def timing_rows(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """timings.csv rows: per method, its runs and the mean of each timing over the runs reporting it."""
    keys = {key for run in runs for key in run.timings}
    ordered = [k for k in ("train_seconds", "eval_seconds") if k in keys]
    ordered += sorted(keys - set(ordered))
    if not ordered:
        ordered = ["train_seconds", "eval_seconds"]
    by_method: dict[str, list[RunResult]] = {}
    for run in runs:
        by_method.setdefault(run.method, []).append(run)
    rows = []
    for method in sorted(by_method, key=method_sort_key):
        method_runs = by_method[method]
        row: dict[str, Any] = {"method": method, "runs": len(method_runs)}
        for key in ordered:
            found = [run.timings[key] for run in method_runs if key in run.timings]
            row[f"{key}_mean"] = fmt_number(statistics.fmean(found)) if found else ""
        rows.append(row)
    return rows
