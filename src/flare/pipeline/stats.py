"""Moved to flare.results.stats; this name stays for old imports."""

from flare.results.stats import CORRECTIONS, adjust_p_values, hierarchical_bootstrap, paired_bootstrap

__all__ = ["CORRECTIONS", "adjust_p_values", "hierarchical_bootstrap", "paired_bootstrap"]
