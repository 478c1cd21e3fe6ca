"""Results: the result-file schema (writer and reader), and what ``flare report`` and ``flare
compare`` make of the files.

    schema     RESULT_SCHEMA, write_json, load_results / RunResult, the method display order
    aggregate  means and std over seeds, the tables as data
    selection  variants of a base method and --select-on validation
    report     Report, build_report, write_report
    render     the Markdown / CSV text of a report and the writer of its files
    plot       the figures (comparison bar chart, learning curves)
    training   budget table, tuning grids, majority / chance rows, "learned nothing" warnings
    compare    paired bootstrap comparisons of two methods (flare compare)
    stats      bootstrap tests and p-value corrections

The names below are imported when first used, so ``import flare.results`` stays cheap.
"""

from flare.lazy import lazy_exports

_EXPORTS = {
    "RESULT_SCHEMA": "flare.results.schema",
    "RunResult": "flare.results.schema",
    "load_results": "flare.results.schema",
    "write_json": "flare.results.schema",
    "Report": "flare.results.report",
    "build_report": "flare.results.report",
    "write_report": "flare.results.report",
    "select_variants": "flare.results.selection",
    "apply_selection": "flare.results.selection",
    "compare_family": "flare.results.compare",
    "paired_bootstrap": "flare.results.stats",
    "hierarchical_bootstrap": "flare.results.stats",
    "adjust_p_values": "flare.results.stats",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
