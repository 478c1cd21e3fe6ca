"""Moved to flare.results (report, schema, aggregate, selection, render); this name stays for old imports."""
# ruff: noqa: F401  (re-exports for old imports)

from flare.methods import method_names
from flare.results.aggregate import PERCENT_METRICS, Cell, ReportRow
from flare.results.render import (
    COMPARISON_PNG, CSV_COLUMNS, RESULTS_CSV, RESULTS_MD, SELECTION_COLUMNS, SELECTION_CSV, TIMINGS_CSV,
    selection_markdown,
)
from flare.results.report import Report, build_report, write_report
from flare.results.schema import AVG, RESULT_SCHEMA as SCHEMA, RunResult, load_results, method_sort_key
from flare.results.selection import (
    Candidate, Selection, VariantChoice, apply_selection, post_hoc_variants, select_variants, variant_groups,
)

METHOD_ORDER = method_names()  # the method table's order when this was imported (flare.methods)

__all__ = [
    "AVG", "METHOD_ORDER", "Cell", "Report", "ReportRow", "RunResult", "Selection", "apply_selection",
    "build_report", "load_results", "method_sort_key", "select_variants", "selection_markdown",
    "variant_groups", "write_report",
]
