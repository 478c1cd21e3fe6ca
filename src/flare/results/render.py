"""The text of a report: the Markdown table with its notes, results.md, the CSV files, the
"Selection on <split>" section, and the writer of every output file.

Outputs (``Report.write``, by default into ``<run_dir>/report/``):

``results.csv``    long format, one row per (metric, method, language) plus one per
                   (metric, method) with language ``avg``; every metric of the split, the
                   reported metric first.  Columns: task, model, method, language, metric,
                   split, mean, std, n, seeds (seeds joined with ``;``).
``results.md``     header (task, model, metric, split, seeds, English side), the table (rows =
                   methods, columns = languages + avg, cells ``78.3 ± 1.2``, best mean of each
                   column in bold -- every method whose mean rounds to the best shown value; in
                   the avg column only among methods covering all languages), notes, a plain
                   table of each other metric of the split (QA: exact_match beside f1), the
                   training sections (:mod:`flare.results.training`: majority-class / chance
                   rows, budget, tuning grids, "learned nothing" warnings), the translation
                   quality, and the warnings.
``comparison.png`` grouped bar chart (:mod:`flare.results.plot`): languages (and avg) on x, one
                   bar per method, error bars = std.
``timings.csv``    per method: runs, and the mean of each timing (``train_seconds_mean``,
                   ``eval_seconds_mean``, then any other timing key) over the runs reporting it;
                   ``total_seconds`` is the wall time of the process that finished a run (after a
                   resume, only its part), training time counts every process.
``budget.csv``, ``curves-<method>.png``  the budget table and the learning curves.
``score-vs-chrf.png``  with a machine-translated English side only: each method's score per
                   language against that language's MT chrF (:func:`plot.plot_score_vs_chrf`).
``selection.csv``  with ``select_on`` only: every candidate variant, its score on the selection
                   split and whether it was chosen.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flare.io import write_text_atomic
from flare.results import training
from flare.results.aggregate import fmt_number
from flare.results.plot import DAGGER, english_mt_chrf, plot_comparison, plot_curves, plot_score_vs_chrf
from flare.results.schema import AVG, method_sort_key

MISSING = "–"
POST_HOC = "(post-hoc)"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
COMPARISON_PNG = "comparison.png"
SCORE_VS_CHRF_PNG = "score-vs-chrf.png"
TIMINGS_CSV = "timings.csv"
SELECTION_CSV = "selection.csv"
CSV_COLUMNS = ("task", "model", "method", "language", "metric", "split", "mean", "std", "n", "seeds")
SELECTION_COLUMNS = ("base_method", "language", "candidate", "split", "metric", "score", "chosen")


def md_escape(text: str) -> str:
    return str(text).replace("|", r"\|")


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


def format_cell(cell, scale: float, decimals: int) -> str:
    """``78.3 ± 1.2`` (scaled); the mean alone when n = 1; ``–`` for no results."""
    if cell is None:
        return MISSING
    text = f"{cell.mean * scale:.{decimals}f}"
    if not math.isnan(cell.std):
        text += f" ± {cell.std * scale:.{decimals}f}"
    return text


def largest_n(rows, columns: Sequence[str]) -> int:
    """The most seeds behind any cell of ``rows`` (the fullest cell, against which others are marked)."""
    return max((cell.n for row in rows for col in columns if (cell := row.cell(col))), default=0)


def annotate(text: str, cell, row, column: str, max_n: int) -> str:
    """``text`` with `` (n=2)`` when the cell has fewer seeds than the fullest cell and ``†`` when it
    is an avg over a subset of the languages: the same marks in every table of a report."""
    if cell.n < max_n:
        text += f" (n={cell.n})"
    if column == AVG and not row.covers_all_languages:
        text += f" {DAGGER}"
    return text


class ReportText:
    """The text methods of :class:`flare.results.report.Report` (tables, notes, results.md, files)."""

    def format_cell(self, cell) -> str:
        return format_cell(cell, self.scale, self.decimals)

    def other_metrics_markdown(self) -> str:
        """A plain table (same cells and marks, no bold) of every other metric of the split, reported
        beside the main one: QA's exact_match beside f1, accuracy beside macro-F1."""
        parts = []
        for metric, (languages, rows, scale) in self.other_metrics.items():
            columns = [*languages, AVG]
            lines = [f"## Also: {metric} (%)", "", "| method | " + " | ".join(md_escape(c) for c in columns) + " |",
                     "|" + "|".join([":---"] + ["---:"] * len(columns)) + "|"]
            max_n = largest_n(rows, columns)
            for row in rows:
                texts = [md_escape(row.method)]
                for col in columns:
                    cell = row.cell(col)
                    text = format_cell(cell, scale, self.decimals)
                    texts.append(text if cell is None else annotate(text, cell, row, col, max_n))
                lines.append("| " + " | ".join(texts) + " |")
            parts.append("\n".join(lines) + "\n")
        return "\n".join(parts)

    def table_rows(self, markdown: bool = True) -> list[list[str]]:
        """The table body as strings, one list per method (same order as ``columns``).

        ``markdown=True`` bolds the best mean of each column with ``**``; annotations:
        `` (n=2)`` for a cell over fewer seeds than the fullest cell, ``†`` for an avg over a
        subset of the languages.
        """
        columns = [*self.languages, AVG]
        best = {col: self.best(col) for col in columns}
        max_n = self.max_n
        out = []
        for row in self.rows:
            texts = [_method_label(self, row.method, markdown)]
            for col in columns:
                cell = row.cell(col)
                text = self.format_cell(cell)
                if cell is not None:
                    if markdown and row.method in best[col]:
                        text = f"**{text}**"
                    text = annotate(text, cell, row, col, max_n)
                elif col == AVG and row.cells:
                    text += " (no seed covers all languages)"
                texts.append(text)
            out.append(texts)
        return out

    def header_line(self) -> str:
        seeds = ", ".join(str(s) for s in self.seeds) or "none"
        parts = [
            f"Task: {self.task or 'unknown'}",
            f"Model: {self.model or 'unknown'}",
            f"Metric: {self.metric} (%)",
            f"Split: {self.split}",
            f"Seeds: {seeds}",
        ]
        return " · ".join(parts)

    def english_side_line(self) -> str:
        if not self.english_sides:
            return "English side: not recorded"
        if len(self.english_sides) == 1:
            return f"English side: {next(iter(self.english_sides))}"
        parts = [f"{side} ({', '.join(methods)})" for side, methods in self.english_sides.items()]
        return "English side: " + "; ".join(parts)

    def notes(self) -> list[str]:
        notes = []
        if self.scale == 100.0:
            notes.append(f"Values are percentages (the {self.metric} fractions × 100).")
        notes.append(
            "Cells: mean ± sample standard deviation over seeds; best mean per column in bold. "
            "avg: per seed the mean over the method's languages, then mean ± std over seeds."
        )
        if any(cell.n < self.max_n for row in self.rows for cell in [*row.cells.values(), row.avg] if cell):
            notes.append("(n=k): only k seeds have results for that cell.")
        for row in self.rows:
            if not row.covers_all_languages and row.avg is not None:
                notes.append(
                    f"{DAGGER} {md_escape(row.method)}: avg over {', '.join(row.avg_languages)} only "
                    f"(not all of {', '.join(self.languages)}); not directly comparable."
                )
        return notes + _selection_notes(self)

    def table_markdown(self, header: bool = True, notes: bool = True) -> str:
        """The Markdown table, with the header lines above and the notes below by default."""
        lines = []
        if header:
            lines += [self.header_line(), "", self.english_side_line(), ""]
        columns = self.columns
        lines.append("| " + " | ".join(md_escape(c) for c in columns) + " |")
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(columns) - 1)) + "|")
        for texts in self.table_rows(markdown=True):
            lines.append("| " + " | ".join(texts) + " |")
        if notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes()]
        return "\n".join(lines) + "\n"

    def markdown_document(self) -> str:
        """``results.md``: a title, the table with header and notes, and the warnings."""
        title = f"# Results: {self.task or 'unknown task'} / {self.model or 'unknown model'}"
        loud = training.warnings_markdown(self)
        text = title + "\n\n" + (loud + "\n" if loud else "") + self.table_markdown() + selection_markdown(self)
        if self.other_metrics:
            text += "\n" + self.other_metrics_markdown()
        text += "\n" + training.training_sections(self)
        from flare.translation.quality import quality_markdown  # stage 2's MT against the human translation

        if quality := quality_markdown(self.run_dir):
            text += "\n## Translation quality\n\n" + quality
        if self.warnings:
            text += "\n## Warnings\n\n" + "".join(f"- {md_escape(w)}\n" for w in self.warnings)
        return text

    # ------------------------------------------------------------------ writing
    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write results.csv, results.md, comparison.png and timings.csv into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / RESULTS_CSV, out / RESULTS_MD, out / COMPARISON_PNG, out / TIMINGS_CSV]
        write_text_atomic(paths[0], csv_text(CSV_COLUMNS, self.csv_rows))
        write_text_atomic(paths[1], self.markdown_document())
        self.plot(paths[2])
        timing_columns = list(self.timing_rows[0]) if self.timing_rows else ["method", "runs"]
        write_text_atomic(paths[3], csv_text(timing_columns, self.timing_rows))
        return paths + _write_selection(self, out) + write_training_files(self, out) + self._write_chrf_plot(out)

    def _write_chrf_plot(self, out: Path) -> list[Path]:
        """score-vs-chrf.png when the English side of the reported split was machine-translated."""
        chrf = english_mt_chrf(self.run_dir, self.split) if self.run_dir else {}
        path = plot_score_vs_chrf(self, chrf, out / SCORE_VS_CHRF_PNG) if chrf else None
        return [path] if path else []

    def plot(self, path: str | os.PathLike) -> Path:
        """comparison.png: a grouped bar chart, x = languages + avg, a bar per method."""
        return plot_comparison(self, path)


# ============================================================================ selection
def _method_label(report, method: str, markdown: bool) -> str:
    """The method cell of a table: the name, and whether it is post-hoc or chosen on validation."""
    text = md_escape(method) if markdown else method
    if method in report.post_hoc:
        return f"{text} {POST_HOC}"
    if report.selection is not None and report.selection.choice(method) is not None:
        return f"{text} (chosen on {report.selection.split})"
    return text


def _selection_notes(report) -> list[str]:
    notes = []
    groups: dict[str, list[str]] = {}
    for method, base in report.post_hoc.items():
        groups.setdefault(base, []).append(method)
    for base, variants in groups.items():
        notes.append(
            f"{POST_HOC} {md_escape(', '.join(sorted(variants, key=method_sort_key)))}: variants of "
            f"{md_escape(base)} not chosen on validation; the best of them on this table is chosen on the "
            f"{report.split} set and overstates it (`flare report --select-on validation` chooses one).")
    selection = report.selection
    for choice in selection.choices if selection else ():
        notes.append(f"{md_escape(choice.base_method)} (chosen on {selection.split}): "
                     f"{_choice_text(choice, selection)}; candidates and their scores: "
                     f"results.md, \"Selection on {selection.split}\".")
    return notes


def _choice_text(choice, selection) -> str:
    what = f"{selection.split} {selection.metric}"
    if AVG in choice.chosen:
        scored = choice.candidates[AVG][0].languages
        return (f"{choice.chosen[AVG]}, the variant with the best mean {what} over {', '.join(scored)} "
                f"(mean over seeds, then over languages; test scores not read)")
    per = ", ".join(f"{lang} {variant}" for lang, variant in choice.chosen.items())
    return f"per language the variant with the best mean {what} over seeds ({per}; test scores not read)"


def selection_markdown(report) -> str:
    """The "Selection on <split>" section of results.md: every group's candidates and scores ("" if none)."""
    selection = report.selection
    if selection is None or not selection.choices:
        return ""
    d, scale = report.decimals, report.scale
    variant_avg = {row.method: row.avg for row in report.variant_rows}
    lines = ["", f"## Selection on {selection.split}", ""]
    for choice in selection.choices:
        columns = list(choice.candidates)
        lines += [f"{md_escape(choice.base_method)}: {_choice_text(choice, selection)}.", ""]
        header = [f"{choice.base_method} candidate",
                  *(f"{selection.split} {selection.metric} ({'mean' if c == AVG else c})" for c in columns),
                  f"{report.split} {AVG} {POST_HOC}"]
        lines.append("| " + " | ".join(md_escape(h) for h in header) + " |")
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
        for variant in choice.variants:
            cells = [md_escape(variant)]
            for column in columns:
                found = next((c for c in choice.candidates[column] if c.method == variant), None)
                text = MISSING if found is None or found.score is None else f"{found.score * scale:.{d}f}"
                cells.append(f"**{text}** ✓" if choice.chosen[column] == variant else text)
            avg = variant_avg.get(variant)
            cells.append(MISSING if avg is None else f"{avg.mean * scale:.{d}f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"✓: chosen. The {report.split} column is shown after the choice, which did not read it; "
                 "choosing on it instead would be post-hoc.")
    return "\n".join(lines) + "\n"


def _selection_csv_rows(selection) -> list[dict[str, Any]]:
    rows = []
    for choice in selection.choices:
        for column, candidates in choice.candidates.items():
            for candidate in candidates:
                rows.append({
                    "base_method": choice.base_method, "language": column, "candidate": candidate.method,
                    "split": selection.split, "metric": selection.metric,
                    "score": "" if candidate.score is None else fmt_number(candidate.score),
                    "chosen": choice.chosen[column] == candidate.method,
                })
    return rows


def _write_selection(report, out: Path) -> list[Path]:
    if report.selection is None:
        return []
    path = out / SELECTION_CSV
    write_text_atomic(path, csv_text(SELECTION_COLUMNS, _selection_csv_rows(report.selection)))
    return [path]


def write_training_files(report, out_dir: str | os.PathLike) -> list[Path]:
    """budget.csv and the curve PNGs."""
    out = Path(out_dir)
    path = out / training.BUDGET_CSV
    write_text_atomic(path, csv_text(training.BUDGET_COLUMNS, training.budget_rows(report)))
    return [path, *plot_curves(report, out)]
