"""The report of one experiment: a :class:`Report` built from ``run_dir/results`` for one metric
and split (:func:`build_report`), and written as tables, CSV files and figures
(:func:`write_report`; the files are listed in :mod:`flare.results.render`).

One report describes one (task, model): if the files name several, the most common pair is
reported (ties: alphabetical) and the other files are skipped with a warning.  A run without a
finite number for the reported ``split``/``metric`` is left out of the table (its timings still
count), with a warning.  Warnings go to the ``flare.results`` loggers and to
:attr:`Report.warnings`; bad files are skipped (:mod:`flare.results.schema`), never fatal.
Aggregation and units: :mod:`flare.results.aggregate`; variants and ``select_on``:
:mod:`flare.results.selection`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flare.errors import DataError
from flare.results.aggregate import Cell, ReportRow, aggregate, long_rows, majority, scale_for, timing_rows
from flare.results.render import ReportText, largest_n
from flare.results.schema import AVG, RunResult, load_results
from flare.results.selection import Selection, apply_selection, post_hoc_variants, select_variants

logger = logging.getLogger(__name__)


@dataclass
class Report(ReportText):
    """The aggregated results of one experiment for one metric and split.

    ``rows`` holds one :class:`ReportRow` per method in display order; ``columns`` the table
    header (``method``, the languages, ``avg``).  Values are in the JSON files' units;
    ``scale`` (100 or 1) turns them into the percentages shown.  The text and file methods
    (``table_markdown``, ``write``, ``plot`` ...) come from :class:`flare.results.render.ReportText`.
    """

    run_dir: Path
    task: str | None
    model: str | None
    metric: str
    split: str
    scale: float
    languages: list[str]
    rows: list[ReportRow]
    seeds: list[int]
    english_sides: dict[str, list[str]]  # english_side value -> methods using it
    runs: list[RunResult]
    warnings: list[str]
    csv_rows: list[dict[str, Any]]
    timing_rows: list[dict[str, Any]]
    decimals: int = 1
    selection: Selection | None = None  # --select-on: the variant chosen per base method
    post_hoc: dict[str, str] = field(default_factory=dict)  # variant -> base, not chosen on validation
    variant_rows: list[ReportRow] = field(default_factory=list)  # --select-on: every variant, unselected
    # every other metric of the split (QA: exact_match beside f1): metric -> (languages, rows, scale)
    other_metrics: dict[str, tuple[list[str], list[ReportRow], float]] = field(default_factory=dict)

    # ------------------------------------------------------------------ lookups
    @property
    def methods(self) -> list[str]:
        return [row.method for row in self.rows]

    @property
    def columns(self) -> list[str]:
        return ["method", *self.languages, AVG]

    def row(self, method: str) -> ReportRow:
        for row in self.rows:
            if row.method == method:
                return row
        raise KeyError(f"no results for method {method!r}; methods: {', '.join(self.methods)}")

    def cell(self, method: str, column: str) -> Cell | None:
        """The cell of a method and a language (or ``avg``); None when there is none."""
        return self.row(method).cell(column)

    def best(self, column: str) -> set[str]:
        """Methods with the best (highest) mean in a column, compared as displayed.

        Empty when fewer than two methods have a value there (nothing to compare).  In the avg
        column only methods covering all the report's languages compete (when any does): an
        avg over fewer languages (†) is not comparable.
        """
        rows = self.rows
        if column == AVG and any(row.covers_all_languages for row in rows):
            rows = [row for row in rows if row.covers_all_languages]
        shown = {
            row.method: round(cell.mean * self.scale, self.decimals)
            for row in rows
            if (cell := row.cell(column)) is not None
        }
        if len(shown) < 2:
            return set()
        top = max(shown.values())
        return {method for method, value in shown.items() if value == top}

    @property
    def max_n(self) -> int:
        return largest_n(self.rows, [*self.languages, AVG])


def build_report(
    run_dir: str | os.PathLike,
    metric: str | None = None,
    split: str = "test",
    select_on: str | None = None,
    per_language: bool = False,
) -> Report:
    """Read ``run_dir/results`` and aggregate ``metric`` (default: the runs' primary metric).

    ``select_on`` (e.g. ``"validation"``): of every base method run under several names, report
    only the variant with the best ``select_on`` score, under the base method's name
    (:func:`select_variants`; ``per_language`` chooses per language).  Without it, such variants
    are labelled post-hoc in a report of any split but validation.

    Raises :class:`DataError` when there is no results folder, no readable results file, or
    no run with a value for ``split``/``metric``; a bad file alone only adds a warning.
    """
    run_dir = Path(run_dir)
    runs, warnings = load_results(run_dir)

    def warn(message: str) -> None:
        logger.warning("%s", message)
        warnings.append(message)

    superseded = sorted((run_dir / "superseded").glob("*/results/*/*/seed-*.json"))
    retrained = [p for p in superseded if p.parents[3].name.startswith("stage1-")]
    if retrained:  # pipeline.runner: built on a stage-1 model that a retrain replaced
        warn(f"{len(retrained)} result files under superseded/ are not in these tables: they were built on "
             "stage-1 models that were later retrained into different ones (stage1_mismatch=continue)")
    if len(superseded) > len(retrained):  # pipeline.runner: trained at a point a widened grid no longer chooses
        warn(f"{len(superseded) - len(retrained)} result files under superseded/ are not in these tables: they "
             "were trained at a grid point their method no longer chose once its grid was widened (run again)")

    results_dir = run_dir / "results"
    if not runs:
        raise DataError(
            "no readable results file" + (f" ({len(warnings)} skipped, see the warnings)" if warnings else ""),
            path=results_dir,
            hint="expected results/<method>/<language>/seed-<seed>.json written by finished runs",
        )

    # One (task, model) per report.
    task, model = majority((run.task, run.model) for run in runs)
    if len({(run.task, run.model) for run in runs}) > 1:
        kept = []
        for run in runs:
            if (run.task, run.model) == (task, model):
                kept.append(run)
            else:
                warn(
                    f"{run.path}: skipped, task/model {run.task}/{run.model} differs from the "
                    f"report's {task}/{model}"
                )
        runs = kept

    if metric is None:
        primaries = [run.primary_metric for run in runs if run.primary_metric]
        metric = majority(primaries)
        if metric is None:
            raise DataError(
                "no run names a primary_metric", path=results_dir, hint="pass the metric to report"
            )
        if len(set(primaries)) > 1:
            warn(
                f"runs name different primary metrics ({', '.join(sorted(set(primaries)))}); "
                f"reporting {metric!r}"
            )

    selection, variant_rows, post_hoc = None, [], {}
    if select_on is not None:
        selection, variant_rows, runs = _select(runs, split, metric, select_on, per_language, warn)
    elif split != "validation":
        post_hoc = post_hoc_variants(runs)

    missing = [run for run in runs if run.value(split, metric) is None]
    if len(missing) == len(runs):
        available = sorted({m for run in runs for m in run.metrics.get(split, {})})
        splits = sorted({s for run in runs for s in run.metrics})
        raise DataError(
            f"no run has a {split}/{metric} value",
            path=results_dir,
            hint=f"metrics of split {split!r}: {', '.join(available) or 'none'}; "
            f"splits: {', '.join(splits) or 'none'}",
        )
    # A method none of whose runs has the value (zero-shot has no validation score) is one
    # warning, not one per file; a run missing what its siblings have is named by its path.
    absent_methods = {run.method for run in missing} - {
        run.method for run in runs if run.value(split, metric) is not None
    }
    for method in sorted(absent_methods):
        count = sum(run.method == method for run in runs)
        warn(f"{method}: none of its {count} runs has a {split}/{metric} value; left out of the table")
    for run in missing:
        if run.method not in absent_methods:
            found = run.metrics.get(split, {}).get(metric, "nothing")
            warn(f"{run.path}: no numeric {split}/{metric} (found {found!r}); left out of the table")

    languages, rows = aggregate(runs, split, metric)
    scale = scale_for(
        metric, [v for run in runs if (v := run.value(split, metric)) is not None], warn
    )

    # Every metric of the split for the CSV, the reported one first.
    other_metrics = sorted(
        {m for run in runs for m in run.metrics.get(split, {}) if m != metric}
    )
    csv_rows = long_rows(task, model, split, metric, rows, languages)
    others = {}
    for other in other_metrics:
        other_languages, other_rows = aggregate(runs, split, other)
        csv_rows += long_rows(task, model, split, other, other_rows, other_languages)
        values = [v for run in runs if (v := run.value(split, other)) is not None]
        others[other] = (other_languages, other_rows, scale_for(other, values, warn))

    english_sides: dict[str, list[str]] = {}
    for row in rows:
        sides = sorted({run.english_side for run in runs if run.method == row.method and run.english_side})
        for side in sides:
            english_sides.setdefault(side, []).append(row.method)

    seeds = sorted({seed for row in rows for cell in row.cells.values() for seed in cell.seeds})
    return Report(
        run_dir=run_dir,
        task=task,
        model=model,
        metric=metric,
        split=split,
        scale=scale,
        languages=languages,
        rows=rows,
        seeds=seeds,
        english_sides=english_sides,
        runs=runs,
        warnings=warnings,
        csv_rows=csv_rows,
        timing_rows=timing_rows(runs),
        selection=selection,
        post_hoc=post_hoc,
        variant_rows=variant_rows,
        other_metrics=others,
    )


def write_report(
    run_dir: str | os.PathLike,
    metric: str | None = None,
    split: str = "test",
    out_dir: str | os.PathLike | None = None,
    select_on: str | None = None,
    per_language: bool = False,
) -> list[Path]:
    """Build the report and write it to ``out_dir`` (default ``run_dir/report``).

    Returns the paths written: results.csv, results.md, comparison.png, timings.csv (and
    selection.csv with ``select_on``).
    """
    report = build_report(run_dir, metric=metric, split=split, select_on=select_on, per_language=per_language)
    return report.write(Path(run_dir) / "report" if out_dir is None else out_dir)


def _select(runs: Sequence[RunResult], split: str, metric: str, select_on: str, per_language: bool,
            warn) -> tuple[Selection, list[ReportRow], list[RunResult]]:
    """build_report's --select-on: the selection, every variant's row (unselected), the selected runs."""
    if select_on == split:
        raise DataError(f"--select-on {select_on} would choose on the split it reports",
                        path=runs[0].path.parents[2], hint=f"report the test split, choosing on {select_on}")
    selection = select_variants(runs, metric, select_on, per_language, warn)
    if not selection.choices:
        warn(f"--select-on {select_on}: no method ran under several names (the runs' base_method), "
             "so there is nothing to choose; the table is the plain report")
    variants = {name for choice in selection.choices for name in choice.variants}
    variant_rows = [row for row in aggregate(runs, split, metric)[1] if row.method in variants]
    return selection, variant_rows, apply_selection(runs, selection)
