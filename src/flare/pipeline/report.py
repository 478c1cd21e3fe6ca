"""``flare report``: result tables and plots from the per-run JSON files of an experiment.

Input
-----
An experiment directory ``run_dir`` holds one JSON file per (method, language, seed) run::

    <run_dir>/results/<method>/<language>/seed-<seed>.json

Schema 1 (the only one this module reads)::

    {
      "schema": 1,                         # required, must be 1
      "task": "nusax",                     # task name
      "model": "e5-small",                 # model name
      "method": "flare",                   # required, must equal the <method> folder
      "language": "jav",                   # required, must equal the <language> folder
      "seed": 1,                           # required integer, must equal <seed> in the file name
      "metrics": {                         # required: split -> metric name -> number
        "test":       {"accuracy": 0.78, "macro_f1": 0.76},
        "validation": {"accuracy": 0.80, "macro_f1": 0.79}
      },
      "primary_metric": "macro_f1",        # the metric reported when none is asked for
      "timings": {"train_seconds": 123.4, "eval_seconds": 5.6},   # seconds (other keys allowed)
      "english_side": "human translation", # or "machine translation (<model>)"; may be null
      "config": {...},                     # the run's configuration (not read here)
      "finished": "2026-11-24T01:02:03Z"   # UTC time the run ended
    }

Other fields (the runner also writes ``base_method``, ``training``, ``predictions`` -- per-example
``ids``/``predicted``/``gold``, the input of :func:`flare.pipeline.stats.paired_bootstrap` --
and ``environment``) are ignored here.

Metric units: classification metrics (accuracy, macro_f1) may be stored as 0-1 fractions or, as
:mod:`flare.tasks.metrics` computes them, 0-100; QA metrics (exact_match, f1) as 0-100 (SQuAD
style).  See "Units" below for how they are shown.

Bad files never stop a report: a file that cannot be read, is not valid JSON (e.g. a run killed
while writing it), is not a JSON object, has a schema other than 1, lacks a required field, or
whose method/language/seed contradicts its path is skipped with a warning naming the file.  A run
without a finite number for the reported ``split``/``metric`` is left out of the table (its
timings still count), also with a warning.  Files elsewhere under ``results/`` that do not follow
the layout are skipped with a warning.  Warnings go to the ``flare.pipeline.report`` logger and
to :attr:`Report.warnings`.

One report describes one (task, model): if the files name several, the most common pair is
reported (ties: alphabetical) and the other files are skipped with a warning.

Aggregation
-----------
* Cell (method, language): mean and *sample* standard deviation (n - 1 in the denominator) of
  the metric over the seeds that have a result; ``n`` seeds.  With n = 1 the std is undefined
  (NaN; the table shows the mean alone, the CSV an empty std).
* ``avg`` column: for each seed, the mean over the languages *that method* has results for; then
  mean ± sample std of those per-seed averages over seeds.  Only seeds with a result for every
  one of the method's languages enter the average (so that each per-seed value averages the
  same languages); ``n`` of the avg counts those seeds.  When a method covers fewer languages
  than the union over all methods, its avg is over a different language set than the others and
  is not directly comparable: the table marks it with a dagger (†) and a note names its
  languages.

Units
-----
The CSV files hold the values in the units of the JSON files, at full precision.  The Markdown
table and the plot show percentages: a metric whose values all lie in [0, 1] is taken to be a
fraction and multiplied by 100 (the same factor for every cell, std included); QA metrics
(``exact_match``, ``f1``) and any metric with a value above 1 are taken as already 0-100 (as
:mod:`flare.tasks.metrics` computes every metric) and shown as stored.  When a
non-QA metric mixes values in (0, 1] with values above 1, a warning says so (a run stored as
fractions next to one stored as percentages).

Outputs (``write_report``), in ``<run_dir>/report/``
---------------------------------------------------
``results.csv``    long format, one row per (metric, method, language) plus one per
                   (metric, method) with language ``avg``; every metric of the split, the
                   reported metric first.  Columns: task, model, method, language, metric,
                   split, mean, std, n, seeds (seeds joined with ``;``).
``results.md``     header (task, model, metric, split, seeds, English side), the table (rows =
                   methods, columns = languages + avg, cells ``78.3 ± 1.2``, best mean of each
                   column in bold -- every method whose mean rounds to the best shown value; in
                   the avg column only among methods covering all languages),
                   notes, and the warnings.
``comparison.png`` grouped bar chart: languages (and avg) on x, one bar per method, error bars
                   = std.
``timings.csv``    per method: runs, and the mean of each timing (``train_seconds_mean``,
                   ``eval_seconds_mean``, then any other timing key) over the runs reporting it.
``budget.csv``, ``curves-<method>.png``  the budget table and the learning curves
                   (:mod:`flare.pipeline.report_training`, which also adds the majority-class /
                   chance rows, the budget, the tuning grids and the "learned nothing" warnings
                   to results.md).
``selection.csv``  with ``select_on`` only: every candidate variant, its score on the selection
                   split and whether it was chosen.

Variants (several method names with one ``base_method``): without ``select_on`` their rows in a
report of any split but validation are labelled ``(post-hoc)``; with ``select_on="validation"``
only the variant with the best validation score is reported, under the base name
(:func:`select_variants`, which reads the selection split only).

Method order: zero-shot, translate-test, lora, input-fusion, xmixup, flare, flare-mt; a variant
``<base>-<suffix>`` (``flare-k0``, ``flare-add``) comes right after its base (longest matching
base, variants alphabetically); unknown methods come last, alphabetically.  Languages are sorted
alphabetically.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flare.errors import ConfigError, DataError
from flare.io import write_text_atomic

__all__ = [
    "AVG",
    "METHOD_ORDER",
    "Cell",
    "Report",
    "ReportRow",
    "RunResult",
    "Selection",
    "apply_selection",
    "build_report",
    "load_results",
    "method_sort_key",
    "select_variants",
    "selection_markdown",
    "variant_groups",
    "write_report",
]

logger = logging.getLogger(__name__)

SCHEMA = 1
AVG = "avg"
METHOD_ORDER = ("zero-shot", "translate-test", "lora", "input-fusion", "xmixup", "flare", "flare-mt")
#: Metrics stored on a 0-100 scale whatever their values (SQuAD-style QA).
PERCENT_METRICS = frozenset({"exact_match", "f1"})
_SEED_FILE = re.compile(r"^seed-(-?\d+)\.json$")
_DAGGER = "†"
_MISSING = "–"

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
COMPARISON_PNG = "comparison.png"
TIMINGS_CSV = "timings.csv"
CSV_COLUMNS = ("task", "model", "method", "language", "metric", "split", "mean", "std", "n", "seeds")


# ============================================================================ data
@dataclass(frozen=True)
class RunResult:
    """One results file, validated."""

    path: Path
    task: str | None
    model: str | None
    method: str
    language: str
    seed: int
    metrics: dict[str, dict[str, Any]]  # split -> metric -> value (as stored)
    primary_metric: str | None
    timings: dict[str, float]
    english_side: str | None
    finished: str | None
    config: dict[str, Any] = field(default_factory=dict)
    base_method: str | None = None  # the method the run trained (variants share it); None: not stored
    weights_from: str | None = None  # a row scoring another run's weights (flare-no-english): that method

    def value(self, split: str, metric: str) -> float | None:
        """The metric as a float, or None when absent or not a finite number."""
        value = self.metrics.get(split, {}).get(metric)
        return _finite(value)


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


# ============================================================================ loading
class _BadFile(Exception):
    pass


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _parse_run(path: Path, method: str, language: str, seed: int) -> RunResult:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _BadFile(f"cannot be read ({err})") from err
    if not text.strip():
        raise _BadFile("is empty (a run that did not finish writing it?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise _BadFile(
            f"is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}; "
            "partially written?)"
        ) from err
    if not isinstance(data, dict):
        raise _BadFile(f"holds a JSON {type(data).__name__}, not an object")
    if "schema" not in data:
        raise _BadFile(f"has no 'schema' field (expected schema {SCHEMA})")
    if data["schema"] != SCHEMA or isinstance(data["schema"], bool):
        raise _BadFile(f"has schema {data['schema']!r}; this flare reads schema {SCHEMA}")

    for key in ("method", "language"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _BadFile(f"has no '{key}' string")
    if data["method"] != method:
        raise _BadFile(f"says method {data['method']!r} but lies in the folder of {method!r}")
    if data["language"] != language:
        raise _BadFile(f"says language {data['language']!r} but lies in the folder of {language!r}")
    file_seed = data.get("seed")
    if isinstance(file_seed, bool) or not isinstance(file_seed, int):
        raise _BadFile(f"has no integer 'seed' (found {file_seed!r})")
    if file_seed != seed:
        raise _BadFile(f"says seed {file_seed} but is named for seed {seed}")

    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise _BadFile("has no 'metrics' object of the form {split: {metric: value}}")

    timings_raw = data.get("timings")
    timings: dict[str, float] = {}
    if isinstance(timings_raw, dict):
        for key, value in timings_raw.items():
            number = _finite(value)
            if number is not None:
                timings[str(key)] = number

    def optional_str(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    config = data.get("config")
    return RunResult(
        path=path,
        task=optional_str("task"),
        model=optional_str("model"),
        method=method,
        language=language,
        seed=seed,
        metrics={str(k): dict(v) for k, v in metrics.items()},
        primary_metric=optional_str("primary_metric"),
        timings=timings,
        english_side=optional_str("english_side"),
        finished=optional_str("finished"),
        config=config if isinstance(config, dict) else {},
        base_method=optional_str("base_method"),
        weights_from=optional_str("weights_from"),
    )


def load_results(run_dir: str | os.PathLike) -> tuple[list[RunResult], list[str]]:
    """Every valid results file under ``run_dir/results`` and the warnings about the others.

    Raises :class:`DataError` only when ``run_dir/results`` does not exist.
    """
    results_dir = Path(run_dir) / "results"
    if not results_dir.is_dir():
        raise DataError(
            "no results folder",
            path=results_dir,
            hint="pass the experiment directory whose runs wrote results/<method>/<language>/seed-<seed>.json",
        )
    runs: list[RunResult] = []
    warnings: list[str] = []

    def warn(message: str) -> None:
        logger.warning("%s", message)
        warnings.append(message)

    for path in sorted(results_dir.rglob("*.json")):
        parts = path.relative_to(results_dir).parts
        match = _SEED_FILE.match(path.name)
        if len(parts) != 3 or match is None:
            warn(f"{path}: skipped, not a results/<method>/<language>/seed-<seed>.json file")
            continue
        try:
            runs.append(_parse_run(path, parts[0], parts[1], int(match.group(1))))
        except _BadFile as err:
            warn(f"{path}: skipped, {err}")
    return runs, warnings


# ============================================================================ aggregation
def method_sort_key(method: str) -> tuple[int, int, str]:
    """Sort key: the display order of METHOD_ORDER, variants right after their base."""
    base_index = None
    for i, base in enumerate(METHOD_ORDER):
        if method == base or method.startswith(base + "-"):
            if base_index is None or len(base) > len(METHOD_ORDER[base_index]):
                base_index = i
    if base_index is None:
        return (len(METHOD_ORDER), 1, method)
    return (base_index, 0 if method == METHOD_ORDER[base_index] else 1, method)


def _aggregate(runs: Sequence[RunResult], split: str, metric: str) -> tuple[list[str], list[ReportRow]]:
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


def _majority(values: Iterable[Any]) -> Any:
    counts = Counter(values)
    if not counts:
        return None
    return min(counts, key=lambda v: (-counts[v], str(v)))


def _scale_for(metric: str, values: Sequence[float], warn) -> float:
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


def _fmt_number(value: float) -> str:
    return repr(float(value))


# ============================================================================ selection
@dataclass(frozen=True)
class Candidate:
    """One variant of a base method and its score on the selection split (JSON units)."""

    method: str
    score: float | None  # mean over the scored languages of the mean over seeds; None: no value
    languages: tuple[str, ...]  # the languages the score is over


@dataclass(frozen=True)
class VariantChoice:
    """The variant chosen for one base method, on the selection split only."""

    base_method: str
    variants: tuple[str, ...]  # every name the base method ran under
    candidates: dict[str, tuple[Candidate, ...]]  # AVG (across languages) or a language -> candidates
    chosen: dict[str, str]  # AVG or a language -> the chosen variant

    def variant_for(self, language: str) -> str | None:
        return self.chosen.get(AVG, self.chosen.get(language))


@dataclass(frozen=True)
class Selection:
    """``flare report --select-on SPLIT``: one variant per base method, chosen on ``split``."""

    split: str
    metric: str
    per_language: bool
    choices: tuple[VariantChoice, ...]

    def choice(self, base_method: str) -> VariantChoice | None:
        return next((c for c in self.choices if c.base_method == base_method), None)


def variant_groups(runs: Iterable[RunResult]) -> dict[str, list[str]]:
    """Base methods run under several names (``flare-add``, ``flare-mul``) -> those names.

    The base is the run's stored ``base_method`` (the method it trained); a run that does not
    store one is its own base, so it is never grouped.  A row that scores another run's weights
    (``weights_from``, e.g. ``flare-add-no-english``) is not a variant: it follows its weights.
    """
    names: dict[str, set[str]] = {}
    for run in runs:
        if run.weights_from is None:
            names.setdefault(run.base_method or run.method, set()).add(run.method)
    return {base: sorted(found, key=method_sort_key) for base, found in names.items() if len(found) > 1}


def _split_means(runs: Iterable[RunResult], split: str, metric: str) -> dict[str, dict[str, float]]:
    """method -> language -> mean over seeds of ``split``/``metric`` (only runs with a value)."""
    values: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        value = run.value(split, metric)
        if value is not None:
            values.setdefault(run.method, {}).setdefault(run.language, []).append(value)
    return {m: {lang: statistics.fmean(v) for lang, v in by_lang.items()} for m, by_lang in values.items()}


def _best(candidates: Sequence[Candidate]) -> str:
    """Highest score; ties go to the variant first in the method order."""
    scored = [c for c in candidates if c.score is not None]
    return min(scored, key=lambda c: (-c.score, method_sort_key(c.method))).method


def select_variants(
    runs: Sequence[RunResult], metric: str, split: str = "validation", per_language: bool = False,
    warn=None,
) -> Selection:
    """For every base method with several variants, the variant with the best ``split`` score.

    Reads ``split``/``metric`` and nothing else of the runs (never the reported test scores).
    Across languages (the default), a variant's score is the mean over the languages every
    scored variant of the group has, of its mean over seeds; ``per_language`` chooses in each
    language on its mean over seeds there.  Raises :class:`DataError` when a group has no
    variant with a ``split`` score, or its variants share no scored language.
    """
    if split == "test":
        raise ConfigError("choosing variants on the test split is the post-hoc choice --select-on avoids; "
                          "select on validation")
    warn = warn or (lambda message: logger.warning("%s", message))
    means = _split_means(runs, split, metric)
    choices = []
    for base, variants in sorted(variant_groups(runs).items(), key=lambda item: method_sort_key(item[0])):
        scored = [v for v in variants if means.get(v)]
        for variant in sorted(set(variants) - set(scored), key=method_sort_key):
            warn(f"{variant}: no {split}/{metric} value, so it cannot be chosen for {base}; left out")
        if not scored:
            raise DataError(
                f"{base}: none of its variants ({', '.join(variants)}) has a {split}/{metric} value to "
                "choose on", path=runs[0].path.parents[2],
                hint=f"report without --select-on, or rerun the variants so that they store {split} scores")
        if per_language:
            candidates, chosen = {}, {}
            for language in sorted({lang for v in scored for lang in means[v]}):
                found = tuple(Candidate(v, means[v].get(language), (language,)) for v in scored)
                candidates[language], chosen[language] = found, _best(found)
            unscored = sorted({run.language for run in runs if run.method in variants} - set(chosen))
            if unscored:
                warn(f"{base}: no variant has a {split}/{metric} value in {', '.join(unscored)}; "
                     f"{base} is left out there")
        else:
            common = tuple(sorted(set.intersection(*(set(means[v]) for v in scored))))
            if not common:
                raise DataError(
                    f"{base}: its variants {', '.join(scored)} share no language with a {split}/{metric} "
                    "value, so their scores cannot be compared", path=runs[0].path.parents[2],
                    hint="choose per language (--per-language) or run the variants on the same languages")
            if any(set(means[v]) != set(common) for v in scored):
                warn(f"{base}: variants scored on the languages they all have ({', '.join(common)})")
            found = tuple(Candidate(v, statistics.fmean(means[v][lang] for lang in common), common)
                          for v in scored)
            candidates, chosen = {AVG: found}, {AVG: _best(found)}
        choices.append(VariantChoice(base_method=base, variants=tuple(variants), candidates=candidates,
                                     chosen=chosen))
    return Selection(split=split, metric=metric, per_language=per_language, choices=tuple(choices))


def apply_selection(runs: Iterable[RunResult], selection: Selection) -> list[RunResult]:
    """The runs with each group's variants replaced by the chosen one, renamed to the base method.

    Runs of methods outside every group are kept as they are; in a per-language selection a
    language without a choice loses the group's runs.  A row scoring a variant's weights
    (``weights_from``) goes with that variant: ``flare-add-no-english`` becomes
    ``flare-no-english`` when flare-add is chosen.
    """
    out = []
    for run in runs:
        owner = run.weights_from or run.method  # the trained variant whose weights the row scores
        choice = selection.choice(run.base_method or run.method)
        if choice is None or owner not in choice.variants:
            out.append(run)
        elif choice.variant_for(run.language) == owner:
            suffix = run.method[len(owner):] if run.method.startswith(owner) else f"-{run.method}"
            out.append(replace(run, method=choice.base_method + suffix))
    return out


def post_hoc_variants(runs: Sequence[RunResult]) -> dict[str, str]:
    """Every variant of a base method run under several names, and the rows scoring its weights -> the base."""
    post_hoc = {name: base for base, names in variant_groups(runs).items() for name in names}
    for run in runs:
        if run.weights_from in post_hoc:
            post_hoc[run.method] = post_hoc[run.weights_from]
    return post_hoc


SELECTION_CSV = "selection.csv"
SELECTION_COLUMNS = ("base_method", "language", "candidate", "split", "metric", "score", "chosen")
_POST_HOC = "(post-hoc)"


def _method_label(report: Report, method: str, markdown: bool) -> str:
    """The method cell of a table: the name, and whether it is post-hoc or chosen on validation."""
    text = _md_escape(method) if markdown else method
    if method in report.post_hoc:
        return f"{text} {_POST_HOC}"
    if report.selection is not None and report.selection.choice(method) is not None:
        return f"{text} (chosen on {report.selection.split})"
    return text


def _selection_notes(report: Report) -> list[str]:
    notes = []
    groups: dict[str, list[str]] = {}
    for method, base in report.post_hoc.items():
        groups.setdefault(base, []).append(method)
    for base, variants in groups.items():
        notes.append(
            f"{_POST_HOC} {_md_escape(', '.join(sorted(variants, key=method_sort_key)))}: variants of "
            f"{_md_escape(base)} not chosen on validation; the best of them on this table is chosen on the "
            f"{report.split} set and overstates it (`flare report --select-on validation` chooses one).")
    selection = report.selection
    for choice in selection.choices if selection else ():
        notes.append(f"{_md_escape(choice.base_method)} (chosen on {selection.split}): "
                     f"{_choice_text(choice, selection)}; candidates and their scores: "
                     f"results.md, \"Selection on {selection.split}\".")
    return notes


def _choice_text(choice: VariantChoice, selection: Selection) -> str:
    what = f"{selection.split} {selection.metric}"
    if AVG in choice.chosen:
        scored = choice.candidates[AVG][0].languages
        return (f"{choice.chosen[AVG]}, the variant with the best mean {what} over {', '.join(scored)} "
                f"(mean over seeds, then over languages; test scores not read)")
    per = ", ".join(f"{lang} {variant}" for lang, variant in choice.chosen.items())
    return f"per language the variant with the best mean {what} over seeds ({per}; test scores not read)"


def selection_markdown(report: Report) -> str:
    """The "Selection on <split>" section of results.md: every group's candidates and scores ("" if none)."""
    selection = report.selection
    if selection is None or not selection.choices:
        return ""
    d, scale = report.decimals, report.scale
    variant_avg = {row.method: row.avg for row in report.variant_rows}
    lines = ["", f"## Selection on {selection.split}", ""]
    for choice in selection.choices:
        columns = list(choice.candidates)
        lines += [f"{_md_escape(choice.base_method)}: {_choice_text(choice, selection)}.", ""]
        header = [f"{choice.base_method} candidate",
                  *(f"{selection.split} {selection.metric} ({'mean' if c == AVG else c})" for c in columns),
                  f"{report.split} {AVG} {_POST_HOC}"]
        lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
        for variant in choice.variants:
            cells = [_md_escape(variant)]
            for column in columns:
                found = next((c for c in choice.candidates[column] if c.method == variant), None)
                text = _MISSING if found is None or found.score is None else f"{found.score * scale:.{d}f}"
                cells.append(f"**{text}** ✓" if choice.chosen[column] == variant else text)
            avg = variant_avg.get(variant)
            cells.append(_MISSING if avg is None else f"{avg.mean * scale:.{d}f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"✓: chosen. The {report.split} column is shown after the choice, which did not read it; "
                 "choosing on it instead would be post-hoc.")
    return "\n".join(lines) + "\n"


def _selection_csv_rows(selection: Selection) -> list[dict[str, Any]]:
    rows = []
    for choice in selection.choices:
        for column, candidates in choice.candidates.items():
            for candidate in candidates:
                rows.append({
                    "base_method": choice.base_method, "language": column, "candidate": candidate.method,
                    "split": selection.split, "metric": selection.metric,
                    "score": "" if candidate.score is None else _fmt_number(candidate.score),
                    "chosen": choice.chosen[column] == candidate.method,
                })
    return rows


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
    variant_rows = [row for row in _aggregate(runs, split, metric)[1] if row.method in variants]
    return selection, variant_rows, apply_selection(runs, selection)


def _write_selection(report: Report, out: Path) -> list[Path]:
    if report.selection is None:
        return []
    path = out / SELECTION_CSV
    _atomic_write_text(path, _csv_text(SELECTION_COLUMNS, _selection_csv_rows(report.selection)))
    return [path]


# ============================================================================ report
@dataclass
class Report:
    """The aggregated results of one experiment for one metric and split.

    ``rows`` holds one :class:`ReportRow` per method in display order; ``columns`` the table
    header (``method``, the languages, ``avg``).  Values are in the JSON files' units;
    ``scale`` (100 or 1) turns them into the percentages shown.
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
        return max(
            (cell.n for row in self.rows for col in [*self.languages, AVG] if (cell := row.cell(col))),
            default=0,
        )

    # ------------------------------------------------------------------ formatting
    def format_cell(self, cell: Cell | None) -> str:
        """``78.3 ± 1.2`` (scaled); the mean alone when n = 1; ``–`` for no results."""
        if cell is None:
            return _MISSING
        d = self.decimals
        text = f"{cell.mean * self.scale:.{d}f}"
        if not math.isnan(cell.std):
            text += f" ± {cell.std * self.scale:.{d}f}"
        return text

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
                    if cell.n < max_n:
                        text += f" (n={cell.n})"
                    if col == AVG and not row.covers_all_languages:
                        text += f" {_DAGGER}"
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
                    f"{_DAGGER} {_md_escape(row.method)}: avg over {', '.join(row.avg_languages)} only "
                    f"(not all of {', '.join(self.languages)}); not directly comparable."
                )
        return notes + _selection_notes(self)

    def table_markdown(self, header: bool = True, notes: bool = True) -> str:
        """The Markdown table, with the header lines above and the notes below by default."""
        lines = []
        if header:
            lines += [self.header_line(), "", self.english_side_line(), ""]
        columns = self.columns
        lines.append("| " + " | ".join(_md_escape(c) for c in columns) + " |")
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
        from flare.pipeline import report_training  # budget, curves, tuning, majority/chance (issue 18)

        loud = report_training.warnings_markdown(self)
        text = title + "\n\n" + (loud + "\n" if loud else "") + self.table_markdown() + selection_markdown(self)
        text += "\n" + report_training.training_sections(self)
        from flare.translation.quality import quality_markdown  # stage 2's MT against the human translation

        if quality := quality_markdown(self.run_dir):
            text += "\n## Translation quality\n\n" + quality
        if self.warnings:
            text += "\n## Warnings\n\n" + "".join(f"- {_md_escape(w)}\n" for w in self.warnings)
        return text

    # ------------------------------------------------------------------ writing
    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write results.csv, results.md, comparison.png and timings.csv into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / RESULTS_CSV, out / RESULTS_MD, out / COMPARISON_PNG, out / TIMINGS_CSV]
        _atomic_write_text(paths[0], _csv_text(CSV_COLUMNS, self.csv_rows))
        _atomic_write_text(paths[1], self.markdown_document())
        self.plot(paths[2])
        timing_columns = list(self.timing_rows[0]) if self.timing_rows else ["method", "runs"]
        _atomic_write_text(paths[3], _csv_text(timing_columns, self.timing_rows))
        from flare.pipeline.report_training import write_training_files

        return paths + _write_selection(self, out) + write_training_files(self, out)

    def plot(self, path: str | os.PathLike) -> Path:
        """Grouped bar chart (Agg, no pyplot state): x = languages + avg, a bar per method."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        groups = [*self.languages, AVG]
        n_methods = max(len(self.rows), 1)
        width = 0.8 / n_methods
        fig = Figure(figsize=(max(6.0, 1.0 + len(groups) * (0.35 + 0.22 * n_methods)), 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        colors = [f"C{i % 10}" for i in range(n_methods)]
        top = 0.0
        for i, row in enumerate(self.rows):
            xs, means, errs_x, errs = [], [], [], []
            for g, col in enumerate(groups):
                cell = row.cell(col)
                if cell is None:
                    continue
                x = g - 0.4 + width * (i + 0.5)
                mean = cell.mean * self.scale
                xs.append(x)
                means.append(mean)
                top = max(top, mean)
                if not math.isnan(cell.std):
                    errs_x.append(x)
                    errs.append((mean, cell.std * self.scale))
                    top = max(top, mean + cell.std * self.scale)
            label = row.method if row.covers_all_languages else f"{row.method} {_DAGGER}"
            ax.bar(xs, means, width=width * 0.95, color=colors[i], label=label)
            if errs:
                ax.errorbar(
                    errs_x, [m for m, _ in errs], yerr=[s for _, s in errs],
                    fmt="none", ecolor="black", elinewidth=1.0, capsize=3,
                )
        labels = [
            f"{AVG}{_DAGGER}" if col == AVG and any(not r.covers_all_languages for r in self.rows) else col
            for col in groups
        ]
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(labels, rotation=45 if len(groups) > 8 else 0, ha="right" if len(groups) > 8 else "center")
        if len(groups) > 1:
            ax.axvline(len(groups) - 1.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_ylim(0, top * 1.08 if top > 0 else 1.0)
        ax.set_ylabel(f"{self.metric} ({self.split}, %)")
        ax.set_xlabel("language")
        ax.set_title(
            f"{self.task or 'unknown task'} · {self.model or 'unknown model'} · {self.metric} "
            f"({self.split}, mean ± std over seeds)"
        )
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(n_methods, 4), frameon=False,
            title=f"{_DAGGER} avg over a subset of the languages"
            if any(not r.covers_all_languages for r in self.rows) else None,
        )
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
        os.replace(tmp, path)
        return path


# ============================================================================ helpers
def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|")


def _csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


def _atomic_write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def _long_rows(task, model, split, metric, rows: Sequence[ReportRow], languages) -> list[dict[str, Any]]:
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
                    "mean": _fmt_number(cell.mean),
                    "std": "" if math.isnan(cell.std) else _fmt_number(cell.std),
                    "n": cell.n,
                    "seeds": ";".join(str(s) for s in cell.seeds),
                }
            )
    return out


def _timing_rows(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
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
            row[f"{key}_mean"] = _fmt_number(statistics.fmean(found)) if found else ""
        rows.append(row)
    return rows


# ============================================================================ API
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

    results_dir = run_dir / "results"
    if not runs:
        raise DataError(
            "no readable results file" + (f" ({len(warnings)} skipped, see the warnings)" if warnings else ""),
            path=results_dir,
            hint="expected results/<method>/<language>/seed-<seed>.json written by finished runs",
        )

    # One (task, model) per report.
    task, model = _majority((run.task, run.model) for run in runs)
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
        metric = _majority(primaries)
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

    languages, rows = _aggregate(runs, split, metric)
    scale = _scale_for(
        metric, [v for run in runs if (v := run.value(split, metric)) is not None], warn
    )

    # Every metric of the split for the CSV, the reported one first.
    other_metrics = sorted(
        {m for run in runs for m in run.metrics.get(split, {}) if m != metric}
    )
    csv_rows = _long_rows(task, model, split, metric, rows, languages)
    for other in other_metrics:
        other_languages, other_rows = _aggregate(runs, split, other)
        csv_rows += _long_rows(task, model, split, other, other_rows, other_languages)

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
        timing_rows=_timing_rows(runs),
        selection=selection,
        post_hoc=post_hoc,
        variant_rows=variant_rows,
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
