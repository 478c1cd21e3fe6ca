"""Moved to flare.results.compare; this name stays for old imports."""

from flare.results.compare import (
    ALPHA, Comparison, Family, compare, compare_family, family_stem, format_comparisons, format_family,
    write_comparisons, write_family,
)

__all__ = ["ALPHA", "Comparison", "Family", "compare", "compare_family", "family_stem", "format_comparisons",
           "format_family", "write_comparisons", "write_family"]
