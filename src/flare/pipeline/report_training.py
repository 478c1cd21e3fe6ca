"""Moved to flare.results.training (figures: flare.results.plot); this name stays for old imports."""

from flare.results.plot import plot_curves
from flare.results.render import write_training_files
from flare.results.training import (
    BUDGET_COLUMNS, BUDGET_CSV, budget_markdown, budget_rows, curve_file, learning_warnings, reference_markdown,
    reference_rows, run_fields, training_sections, warnings_markdown,
)
from flare.results.training import tuning_markdown as selection_markdown

__all__ = [
    "BUDGET_COLUMNS", "BUDGET_CSV", "budget_markdown", "budget_rows", "curve_file", "learning_warnings",
    "plot_curves", "reference_markdown", "reference_rows", "run_fields", "selection_markdown",
    "training_sections", "warnings_markdown", "write_training_files",
]
